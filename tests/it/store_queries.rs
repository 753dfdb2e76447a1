//! Asset filters on both backends: the SQL differs (jsonb on PostgreSQL, json_each on SQLite),
//! the answers must not.

use crate::common::*;
use curio::{
    catalog::{Asset, AssetKind, AssetRecord},
    store::{AssetQuery, FacetField, LabelRequirement, NamespaceScope, Store},
};

fn labelled(kind: AssetKind, name: &str, labels: &[(&str, &str)], tags: &[&str]) -> AssetRecord {
    let mut a: Asset = asset(kind, name, "1");
    a.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    a.tags = tags.iter().map(|t| t.to_string()).collect();
    AssetRecord::from_asset(a)
}

async fn names(store: &Store, query: AssetQuery) -> Vec<String> {
    let scope = NamespaceScope::single(ns("team-a"));
    let page = store
        .list_assets(&scope, &query, Default::default(), None, 500)
        .await
        .unwrap();
    let mut names: Vec<String> = page.items.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

async fn check_filters(store: Store) {
    let a = ns("team-a");
    let records = vec![
        labelled(
            AssetKind::Model,
            "granite",
            &[("task", "chat"), ("size", "8b")],
            &["llm"],
        ),
        labelled(
            AssetKind::Model,
            "llama",
            &[("task", "chat")],
            &["llm", "meta"],
        ),
        labelled(AssetKind::Model, "whisper", &[("task", "asr")], &["audio"]),
        labelled(AssetKind::McpServer, "github", &[], &["tools"]),
        labelled(AssetKind::Agent, "pct_50-bot", &[("size", "small")], &[])
            .with_stage(Some("production".into()))
            .with_approved(true),
    ];
    refresh(&store, &a, "src", records).await;
    // Same names in another namespace must never show up.
    refresh(
        &store,
        &ns("team-b"),
        "src",
        vec![labelled(
            AssetKind::Model,
            "granite",
            &[("task", "chat")],
            &["llm"],
        )],
    )
    .await;

    let q = |f: fn(&mut AssetQuery)| {
        let mut query = AssetQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(names(&store, AssetQuery::default()).await.len(), 5);
    assert_eq!(
        names(&store, q(|q| q.kinds = Some(vec![AssetKind::Model]))).await,
        ["granite", "llama", "whisper"]
    );
    assert_eq!(
        names(&store, q(|q| q.tags = vec!["llm".into()])).await,
        ["granite", "llama"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::Equals("task".into(), "chat".into())])
        )
        .await,
        ["granite", "llama"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::NotEquals("task".into(), "chat".into())])
        )
        .await,
        ["github", "pct_50-bot", "whisper"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::In(
                "task".into(),
                vec!["asr".into(), "chat".into()]
            )])
        )
        .await,
        ["granite", "llama", "whisper"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::NotIn("task".into(), vec!["chat".into()])])
        )
        .await,
        ["github", "pct_50-bot", "whisper"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::Exists("size".into())])
        )
        .await,
        ["granite", "pct_50-bot"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![LabelRequirement::NotExists("task".into())])
        )
        .await,
        ["github", "pct_50-bot"]
    );
    assert_eq!(
        names(
            &store,
            q(|q| q.labels = vec![
                LabelRequirement::Equals("task".into(), "chat".into()),
                LabelRequirement::Exists("size".into()),
            ])
        )
        .await,
        ["granite"]
    );
    assert_eq!(
        names(&store, q(|q| q.stages = vec!["production".into()])).await,
        ["pct_50-bot"]
    );
    assert_eq!(
        names(&store, q(|q| q.approved = Some(true))).await,
        ["pct_50-bot"]
    );
    assert_eq!(
        names(&store, q(|q| q.approved = Some(false))).await.len(),
        4
    );
    // Text search: case-insensitive; % and _ are literal characters.
    assert_eq!(
        names(&store, q(|q| q.text = Some("GRAN".into()))).await,
        ["granite"]
    );
    assert_eq!(
        names(&store, q(|q| q.text = Some("description of whis".into()))).await,
        ["whisper"]
    );
    assert!(
        names(&store, q(|q| q.text = Some("%".into())))
            .await
            .is_empty()
    );
    assert_eq!(
        names(&store, q(|q| q.text = Some("pct_".into()))).await,
        ["pct_50-bot"]
    );
    assert!(
        names(&store, q(|q| q.text = Some("p_t".into())))
            .await
            .is_empty()
    );
    assert_eq!(
        names(&store, q(|q| q.sources = vec!["src".into()]))
            .await
            .len(),
        5
    );
    assert!(
        names(&store, q(|q| q.sources = vec!["nope".into()]))
            .await
            .is_empty()
    );
}

/// Facets count the same on both backends: per value, most frequent first, each field without
/// its own filter, bounded by `top`, and only in scope.
async fn check_facets(store: Store) {
    let a = ns("team-a");
    let with =
        |name: &str, provider: &str, license: &str, tags: &[&str], labels: &[(&str, &str)]| {
            let mut asset: Asset = asset(AssetKind::Model, name, "1");
            asset.provider = Some(provider.into());
            asset.license = Some(license.into());
            asset.tags = tags.iter().map(|t| t.to_string()).collect();
            asset.labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            AssetRecord::from_asset(asset)
        };
    refresh(
        &store,
        &a,
        "src",
        vec![
            with(
                "m1",
                "ibm",
                "apache-2.0",
                &["llm", "chat"],
                &[("task", "chat")],
            ),
            with(
                "m2",
                "ibm",
                "mit",
                &["llm"],
                &[("task", "chat"), ("size", "8b")],
            ),
            with("m3", "meta", "llama", &["llm"], &[]),
            with("m4", "mistral", "apache-2.0", &[], &[]),
        ],
    )
    .await;
    // Another tenant's values never count here.
    refresh(
        &store,
        &ns("team-b"),
        "src",
        vec![with(
            "m1",
            "secret-corp",
            "apache-2.0",
            &["llm"],
            &[("task", "chat")],
        )],
    )
    .await;
    let scope = NamespaceScope::single(a.clone());
    let counts = |facets: &[curio::store::Facet], field: FacetField| -> Vec<(String, i64)> {
        facets
            .iter()
            .find(|f| f.field == field)
            .unwrap()
            .values
            .iter()
            .map(|v| (v.value.clone(), v.count))
            .collect()
    };
    let pairs = |p: &[(&str, i64)]| -> Vec<(String, i64)> {
        p.iter().map(|(v, n)| (v.to_string(), *n)).collect()
    };
    let all = store
        .asset_facets(&scope, &AssetQuery::default(), &FacetField::ALL, 10)
        .await
        .unwrap();
    assert_eq!(
        counts(&all, FacetField::Provider),
        pairs(&[("ibm", 2), ("meta", 1), ("mistral", 1)])
    );
    assert_eq!(
        counts(&all, FacetField::License),
        pairs(&[("apache-2.0", 2), ("llama", 1), ("mit", 1)])
    );
    assert_eq!(
        counts(&all, FacetField::Tag),
        pairs(&[("llm", 3), ("chat", 1)])
    );
    assert_eq!(
        counts(&all, FacetField::LabelKey),
        pairs(&[("task", 2), ("size", 1)])
    );
    assert_eq!(counts(&all, FacetField::Approved), pairs(&[("false", 4)]));
    assert_eq!(counts(&all, FacetField::Kind), pairs(&[("Model", 4)]));
    assert_eq!(counts(&all, FacetField::Source), pairs(&[("src", 4)]));

    // A provider filter narrows the other facets but not its own.
    let ibm = AssetQuery {
        providers: vec!["ibm".into()],
        ..AssetQuery::default()
    };
    let narrowed = store
        .asset_facets(
            &scope,
            &ibm,
            &[FacetField::Provider, FacetField::License],
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        counts(&narrowed, FacetField::Provider),
        pairs(&[("ibm", 2), ("meta", 1), ("mistral", 1)])
    );
    assert_eq!(
        counts(&narrowed, FacetField::License),
        pairs(&[("apache-2.0", 1), ("mit", 1)])
    );
    // And the list agrees with the facet it was chosen from.
    assert_eq!(names(&store, ibm).await, ["m1", "m2"]);
    let licensed = AssetQuery {
        licenses: vec!["apache-2.0".into()],
        ..AssetQuery::default()
    };
    assert_eq!(names(&store, licensed).await, ["m1", "m4"]);

    // Bounded: the top value, and a flag that more exist.
    let top = store
        .asset_facets(&scope, &AssetQuery::default(), &[FacetField::Provider], 1)
        .await
        .unwrap();
    assert_eq!(counts(&top, FacetField::Provider), pairs(&[("ibm", 2)]));
    assert!(top[0].truncated);
    assert!(!all[0].truncated);

    let per_kind = store.asset_counts(&scope).await.unwrap();
    assert_eq!(per_kind.len(), 1);
    assert_eq!((per_kind[0].kind.as_str(), per_kind[0].count), ("Model", 4));

    // The stored counts follow every refresh: an update, a removal, a second source, and a
    // source emptied. Unfiltered facets come from them; compare with counting every row.
    refresh(
        &store,
        &a,
        "src",
        vec![
            with("m2", "meta", "mit", &["llm", "vision"], &[("size", "8b")]),
            with("m3", "meta", "llama", &["llm"], &[]),
        ],
    )
    .await;
    refresh(
        &store,
        &a,
        "other",
        vec![with(
            "m9",
            "ibm",
            "apache-2.0",
            &["chat"],
            &[("task", "chat")],
        )],
    )
    .await;
    refresh(&store, &a, "gone", vec![with("g1", "x", "y", &["z"], &[])]).await;
    refresh(&store, &a, "gone", vec![]).await;
    let stored = store
        .asset_facets(&scope, &AssetQuery::default(), &FacetField::ALL, 100)
        .await
        .unwrap();
    // A filter the stored counts cannot answer makes every other field count rows; the
    // approved filter matches every asset here, so the figures must agree.
    let counted = store
        .asset_facets(
            &scope,
            &AssetQuery {
                approved: Some(false),
                ..AssetQuery::default()
            },
            &FacetField::ALL,
            100,
        )
        .await
        .unwrap();
    assert_eq!(stored, counted);
    assert_eq!(
        counts(&stored, FacetField::Provider),
        pairs(&[("meta", 2), ("ibm", 1)])
    );
    assert_eq!(
        counts(&stored, FacetField::Tag),
        pairs(&[("llm", 2), ("chat", 1), ("vision", 1)])
    );
    assert_eq!(
        counts(&stored, FacetField::Source),
        pairs(&[("src", 2), ("other", 1)])
    );
    let per_kind = store.asset_counts(&scope).await.unwrap();
    assert_eq!((per_kind[0].kind.as_str(), per_kind[0].count), ("Model", 3));
}

/// A source's first load counts its facets from the records it inserts; every later refresh
/// counts the stored rows in SQL. The two must agree on every field.
async fn check_first_load_counts_match_the_stored_rows(store: Store) {
    let a = ns("team-a");
    let records: Vec<AssetRecord> = (0..30)
        .map(|i| {
            let kind = AssetKind::ALL[i % 3];
            let mut asset: Asset = asset(kind, &format!("a{i}"), &format!("{}", i % 2));
            asset.provider = (i % 4 != 0).then(|| ["ibm", "Méta", ""][i % 3].to_owned());
            asset.license = (i % 5 != 0).then(|| format!("lic-{}", i % 2));
            asset.tags = (0..i % 4).map(|t| format!("tag-{t}")).collect();
            asset.labels = (0..i % 3)
                .map(|l| (format!("key-{l}"), format!("v{i}")))
                .collect();
            AssetRecord::from_asset(asset)
                .with_stage((i % 3 == 1).then(|| ["dev", "production"][i % 2].to_owned()))
                .with_approved(i % 7 == 0)
        })
        .collect();
    let scope = NamespaceScope::single(a.clone());
    let facets = || async {
        store
            .asset_facets(&scope, &AssetQuery::default(), &FacetField::ALL, 100)
            .await
            .unwrap()
    };
    refresh(&store, &a, "src", records.clone()).await;
    let first_load = facets().await;
    for facet in &first_load {
        assert!(!facet.values.is_empty(), "{:?} has values", facet.field);
    }
    // Another change and back: both refreshes count the stored rows.
    let mut changed = records.clone();
    changed[0] = changed[0]
        .clone()
        .with_approved(!records[0].fields().approved);
    refresh(&store, &a, "src", changed).await;
    assert_ne!(facets().await, first_load);
    refresh(&store, &a, "src", records).await;
    assert_eq!(facets().await, first_load);
}

#[tokio::test]
async fn first_load_counts_match_the_stored_rows_on_postgres() {
    let (store, _) = postgres_store().await;
    check_first_load_counts_match_the_stored_rows(store).await;
}

#[tokio::test]
async fn first_load_counts_match_the_stored_rows_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_first_load_counts_match_the_stored_rows(store).await;
}

#[tokio::test]
async fn filters_on_postgres() {
    let (store, _) = postgres_store().await;
    check_filters(store).await;
}

#[tokio::test]
async fn filters_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_filters(store).await;
}

#[tokio::test]
async fn facets_on_postgres() {
    let (store, _) = postgres_store().await;
    check_facets(store).await;
}

#[tokio::test]
async fn facets_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_facets(store).await;
}

#[tokio::test]
async fn sqlite_refresh_and_pagination() {
    let (store, _dir) = sqlite_store().await;
    let a = ns("team-a");
    let out = refresh(&store, &a, "src", models("m", 4000)).await;
    assert_eq!(out.added, 4000);
    let out = refresh(&store, &a, "src", models("m", 3990)).await;
    assert_eq!((out.removed, out.unchanged), (10, 3990));
    let scope = NamespaceScope::single(a);
    let mut cursor = None;
    let mut total = 0;
    loop {
        let page = store
            .list_assets(
                &scope,
                &AssetQuery::default(),
                Default::default(),
                cursor.as_ref(),
                500,
            )
            .await
            .unwrap();
        total += page.items.len();
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(total, 3990);
}

#[tokio::test]
async fn assets_without_metadata_or_optional_fields_store_on_both_backends() {
    let bare: curio::catalog::Asset =
        serde_json::from_value(serde_json::json!({"kind": "Agent", "name": "bare"})).unwrap();
    let record = AssetRecord::from_asset(bare);
    assert_eq!(&record.fields().metadata, &serde_json::json!({}));
    let (pg, _) = postgres_store().await;
    let (lite, _dir) = sqlite_store().await;
    for store in [pg, lite] {
        let out = refresh(&store, &ns("team-a"), "src", vec![record.clone()]).await;
        assert_eq!(out.added, 1);
        assert_eq!(names(&store, AssetQuery::default()).await, ["bare"]);
    }
}
