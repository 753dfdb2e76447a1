//! Search that scales and plans that stay put: `q` finds exactly what a brute-force filter
//! finds (LIKE metacharacters, backslashes, unicode, case), and every hot statement's generic
//! plan — the one PostgreSQL settles on after five executions of a prepared statement — uses a
//! btree for equalities and the search index only for `q`.

use std::collections::BTreeSet;

use crate::common::{ns, postgres_store, refresh, sqlite_store};
use curio::{
    catalog::{Asset, AssetKind, AssetRecord, search_terms},
    store::{AssetCursor, AssetQuery, AssetSort, NamespaceScope, Store, entity::asset},
};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

const WORDS: [&str; 12] = [
    "granite",
    "Llama",
    "MISTRAL",
    "école",
    "ÉCOLE",
    "ünïcode",
    "日本語",
    "50%",
    "a_b",
    r"back\slash",
    "model",
    "Modèle",
];

/// A catalog whose names, display names and descriptions mix the words above.
fn catalog() -> Vec<AssetRecord> {
    let mut out = Vec::new();
    for i in 0..600usize {
        let word = |k: usize| WORDS[(i * 7 + k * 5) % WORDS.len()];
        let name = format!("{}-{i:04}", ["granite", "llama", "mistral", "phi"][i % 4]);
        let display = (i % 3 != 0).then(|| format!("{} {}", word(1), i % 17));
        let description = (i % 5 != 0)
            .then(|| format!("{} and {} in one line\nthen {}", word(2), word(3), word(4)));
        let kind = [AssetKind::Model, AssetKind::McpServer, AssetKind::Agent][i % 3];
        out.push(searchable(
            kind,
            name,
            format!("{}", i % 4),
            display,
            description,
        ));
    }
    out
}

/// An asset with only what `q` matches (and its key) filled in.
fn searchable(
    kind: AssetKind,
    name: String,
    version: String,
    display_name: Option<String>,
    description: Option<String>,
) -> AssetRecord {
    AssetRecord::from_asset(Asset {
        kind,
        name,
        version,
        display_name,
        description,
        provider: None,
        license: None,
        tags: vec![],
        labels: Default::default(),
        links: vec![],
        metadata: None,
        mcp: None,
        agent: None,
    })
}

/// The keys of the rows of `all` that `q` matches, by brute force: a name or display name
/// holding `q` (`fold` is the store's notion of case), or a description in which each word
/// of `q` begins a word (computed here from the description itself, not the stored terms).
fn brute_force(
    all: &[asset::Model],
    q: &str,
    fold: fn(&str) -> String,
) -> BTreeSet<(String, String, String)> {
    let needle = fold(q);
    let q_words: Vec<String> = search_terms::words(q).collect();
    all.iter()
        .filter(|row| {
            let names = [Some(row.name.as_str()), row.display_name.as_deref()]
                .into_iter()
                .flatten()
                .any(|field| fold(field).contains(&needle));
            let description_words: Vec<String> = row
                .description
                .as_deref()
                .map(|d| search_terms::words(d).collect())
                .unwrap_or_default();
            let description = !q_words.is_empty()
                && q_words
                    .iter()
                    .all(|w| description_words.iter().any(|d| d.starts_with(w.as_str())));
            names || description
        })
        .map(key)
        .collect()
}

async fn everything(
    store: &Store,
    scope: &NamespaceScope,
    query: &AssetQuery,
) -> Vec<asset::Model> {
    let mut out = Vec::new();
    let mut after: Option<AssetCursor> = None;
    loop {
        let page = store
            .list_assets(scope, query, AssetSort::Key, after.as_ref(), 500)
            .await
            .unwrap();
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

fn key(row: &asset::Model) -> (String, String, String) {
    (row.kind.clone(), row.name.clone(), row.version.clone())
}

/// Checks `q` against a brute-force filter for every query; `fold` is the store's notion of
/// case (full unicode lowercasing on PostgreSQL, ASCII on SQLite).
async fn check_search(store: &Store, queries: &[&str], fold: fn(&str) -> String) {
    let team = ns("team-a");
    refresh(store, &team, "catalog", catalog()).await;
    // Another namespace with the same words, which must never show.
    refresh(store, &ns("team-b"), "catalog", catalog()).await;
    let scope = NamespaceScope::single(team);
    let all = everything(store, &scope, &AssetQuery::default()).await;
    assert_eq!(all.len(), 600);
    for q in queries {
        let wanted = brute_force(&all, q, fold);
        let query = AssetQuery {
            text: Some((*q).to_owned()),
            ..AssetQuery::default()
        };
        let found = everything(store, &scope, &query).await;
        assert!(found.iter().all(|r| r.namespace == "team-a"));
        let found: BTreeSet<_> = found.iter().map(key).collect();
        assert_eq!(found, wanted, "q={q:?}");
    }
}

/// The same on a table where every name shares a long prefix, so searches look up only a
/// part of `q` in the index and check the rest (see `search_probe`).
#[tokio::test]
async fn a_search_that_looks_up_part_of_its_text_finds_the_same() {
    let (store, _url) = postgres_store().await;
    let team = ns("team-p");
    let records = (0..3000usize)
        .map(|i| {
            searchable(
                AssetKind::Model,
                format!("shared-prefix-model-{i:05}"),
                "1".into(),
                Some(format!("Shared prefix model {i}")),
                (i % 7 == 0).then(|| format!("Écoles 50% a_b #{i}")),
            )
        })
        .collect();
    refresh(&store, &team, "catalog", records).await;
    store
        .connection()
        .execute_unprepared("ANALYZE assets")
        .await
        .unwrap();
    let scope = NamespaceScope::single(team);
    let all = everything(&store, &scope, &AssetQuery::default()).await;
    let mut narrowed = 0;
    for q in [
        "shared-prefix-model-0123",
        "SHARED-PREFIX-MODEL-012",
        "prefix-model-02999",
        "model 2999",
        "écoles 50% a_b #14",
        "ÉCOLES 50%",
        "shared-prefix",
        "model-0",
        "-model-99999",
    ] {
        let lookup = store.search_lookup(q).await.unwrap();
        assert!(q.contains(&lookup), "{q:?} looks up {lookup:?}");
        if lookup != q {
            narrowed += 1;
        }
        let wanted = brute_force(&all, q, str::to_lowercase);
        let query = AssetQuery {
            text: Some(q.to_owned()),
            ..AssetQuery::default()
        };
        let found: BTreeSet<_> = everything(&store, &scope, &query)
            .await
            .iter()
            .map(key)
            .collect();
        assert_eq!(found, wanted, "q={q:?} (looked up {lookup:?})");
    }
    assert!(narrowed >= 4, "only {narrowed} searches looked up a part");
}

const QUERIES: [&str; 18] = [
    "granite",
    "GRANITE-00",
    "llama-01",
    "%",
    "_",
    "50%",
    "a_b",
    "a%b",
    r"\",
    r"back\s",
    "école",
    "ÉCOLE",
    "ünïcode",
    "日本",
    "model",
    "e",
    "an",
    "no-such-thing",
];

#[tokio::test]
async fn search_finds_what_a_brute_force_filter_finds_on_postgres() {
    let (store, _) = postgres_store().await;
    check_search(&store, &QUERIES, str::to_lowercase).await;
}

#[tokio::test]
async fn search_finds_what_a_brute_force_filter_finds_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    // SQLite's LIKE folds ASCII letters only.
    check_search(&store, &QUERIES, str::to_ascii_lowercase).await;
}

/// `value` as an SQL literal, for `EXECUTE name(…)`.
fn literal(value: &sea_orm::Value) -> String {
    use sea_orm::Value as V;
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match value {
        V::String(Some(s)) => quote(s),
        V::Json(Some(j)) => format!("{}::jsonb", quote(&j.to_string())),
        V::BigInt(Some(n)) => n.to_string(),
        V::Int(Some(n)) => n.to_string(),
        V::BigUnsigned(Some(n)) => n.to_string(),
        V::Unsigned(Some(n)) => n.to_string(),
        V::Bool(Some(b)) => b.to_string(),
        V::ChronoDateTimeUtc(Some(t)) => format!("{}::timestamptz", quote(&t.to_rfc3339())),
        other => panic!("no literal for {other:?}"),
    }
}

/// The plan of a prepared `statement` as PostgreSQL runs it from the sixth execution on: the
/// generic plan, or (`custom`, as searches are planned) the custom one.
/// `scoped`: run as the API's scoped reads do, as `curio_reader` under row-level security
/// with these namespaces allowed (which changes what the planner may use).
async fn plan_under(
    store: &Store,
    statement: &Statement,
    custom: bool,
    scoped: Option<&str>,
) -> String {
    let txn = store.connection().begin().await.unwrap();
    let run = |sql: String| Statement::from_string(store.backend(), sql);
    let setting = if custom {
        "force_custom_plan"
    } else {
        "force_generic_plan"
    };
    txn.execute_raw(run(format!("SET LOCAL plan_cache_mode = {setting}")))
        .await
        .unwrap();
    if let Some(namespaces) = scoped {
        txn.execute_raw(run(format!(
            "SELECT set_config('role', 'curio_reader', true), \
             set_config('curio.allowed_namespaces', '{namespaces}', true)"
        )))
        .await
        .unwrap();
    }
    txn.execute_raw(run(format!("PREPARE hot AS {}", statement.sql)))
        .await
        .unwrap();
    let arguments: Vec<String> = statement
        .values
        .iter()
        .flat_map(|values| values.0.iter())
        .map(literal)
        .collect();
    let explain = if arguments.is_empty() {
        "EXPLAIN EXECUTE hot".to_owned()
    } else {
        format!("EXPLAIN EXECUTE hot({})", arguments.join(", "))
    };
    let rows = txn.query_all_raw(run(explain)).await.unwrap();
    txn.execute_raw(run("DEALLOCATE hot".into())).await.unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn hot_statements_keep_their_btree_plans_under_a_generic_plan() {
    let (store, _) = postgres_store().await;
    let team = ns("team-a");
    // Enough rows for the planner's choice to matter (a search of 20,000 rows is cheaper as a
    // sequential scan), in several namespaces.
    let models: Vec<AssetRecord> = crate::common::models("model", 100_000);
    refresh(&store, &team, "bulk", models).await;
    refresh(
        &store,
        &ns("team-b"),
        "bulk",
        crate::common::models("other", 2_000),
    )
    .await;
    store
        .connection()
        .execute_unprepared("ANALYZE assets")
        .await
        .unwrap();
    let scope = NamespaceScope::single(team.clone());
    let cursor = AssetCursor {
        namespace: "team-a".into(),
        kind: "Model".into(),
        name: "model-000100".into(),
        version: "1".into(),
        updated_at: chrono::Utc::now(),
        id: 100,
    };
    let get = AssetQuery {
        kinds: Some(vec![AssetKind::Model]),
        name: Some("model-000042".into()),
        ..AssetQuery::default()
    };
    let search = AssetQuery {
        text: Some("model-0012".into()),
        ..AssetQuery::default()
    };
    let registry = AssetQuery {
        kinds: Some(vec![AssetKind::McpServer]),
        ..AssetQuery::default()
    };
    let everything_query = AssetQuery::default();
    let by_kind = AssetQuery {
        kinds_by_namespace: Some([("team-a".to_owned(), vec![AssetKind::Model])].into()),
        ..AssetQuery::default()
    };
    let cases: Vec<(&str, &AssetQuery, AssetSort, Option<&AssetCursor>, u64)> = vec![
        ("get by name", &get, AssetSort::UpdatedDesc, None, 1),
        ("first page", &everything_query, AssetSort::Key, None, 50),
        (
            "next page",
            &everything_query,
            AssetSort::Key,
            Some(&cursor),
            50,
        ),
        ("kind narrowed", &by_kind, AssetSort::Key, None, 50),
        ("registry", &registry, AssetSort::Key, None, 1000),
        ("search", &search, AssetSort::Key, None, 50),
    ];
    for (what, query, sort, after, limit) in cases {
        let statement = store.list_assets_statement(&scope, query, sort, after, limit);
        // A search's id lookup runs as the owner, planned per execution; everything else
        // under RLS, where a generic plan may take over.
        let searches = store.searches_by_id(query);
        let scoped = (!searches).then_some("team-a");
        let plan = plan_under(&store, &statement, searches, scoped).await;
        if query.text.is_some() {
            assert!(searches, "{what}: found outside RLS, read under it");
            for index in ["assets_name_search_trgm", "assets_description_terms"] {
                assert!(plan.contains(index), "{what}: {index}\n{plan}");
            }
        } else {
            assert!(
                !plan.contains("trgm"),
                "{what}: a trigram index for an equality\n{plan}"
            );
            assert!(
                !plan.contains("Seq Scan"),
                "{what}: a sequential scan of the table\n{plan}"
            );
        }
    }
    // A search's generic plan would walk the namespace in key order, filtering every row:
    // why searches are planned per execution.
    let statement = store.list_assets_statement(&scope, &search, AssetSort::Key, None, 50);
    let generic = plan_under(&store, &statement, false, None).await;
    assert!(!generic.contains("assets_name_search_trgm"), "{generic}");
    // And under row-level security no plan may use it (ILIKE is not leakproof): why the ids
    // are found outside it.
    let scoped = plan_under(&store, &statement, true, Some("team-a")).await;
    assert!(!scoped.contains("assets_name_search_trgm"), "{scoped}");
    assert!(!scoped.contains("assets_description_terms"), "{scoped}");
}

/// The `assets` columns `ANALYZE` keeps statistics for, after a refresh large enough to run it.
async fn analyzed_columns(store: &Store, table: &str) -> BTreeSet<String> {
    store
        .connection()
        .query_all_raw(Statement::from_sql_and_values(
            store.backend(),
            "SELECT attname::text FROM pg_stats WHERE schemaname = 'public' AND tablename = $1",
            [table.into()],
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn a_large_refresh_analyzes_what_the_planner_reads_and_skips_the_content() {
    let (store, _) = postgres_store().await;
    // Over the store's threshold: the refresh ends with `ANALYZE assets`.
    refresh(
        &store,
        &ns("team-a"),
        "bulk",
        crate::common::models("model", 1_500),
    )
    .await;
    let columns = analyzed_columns(&store, "assets").await;
    for planned in ["namespace", "source", "kind", "name", "tags", "labels"] {
        assert!(columns.contains(planned), "{planned}: {columns:?}");
    }
    for content in migrations::UNPLANNED_ASSET_COLUMNS
        .into_iter()
        .chain(["description_terms"])
    {
        assert!(!columns.contains(content), "{content}: {columns:?}");
    }
    // The search expressions keep their own (the search indexes'), which `q`'s estimates use.
    for index in ["assets_name_search_trgm", "assets_description_terms"] {
        assert!(!analyzed_columns(&store, index).await.is_empty(), "{index}");
    }
}
