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

/// Every column of a row as it was stored, for comparing with the record it came from.
fn stored_fields(m: &curio::store::entity::asset::Model) -> serde_json::Value {
    serde_json::json!({
        "kind": m.kind, "name": m.name, "version": m.version,
        "display_name": m.display_name, "description": m.description,
        "provider": m.provider, "license": m.license, "tags": m.tags, "labels": m.labels,
        "stage": m.stage, "approved": m.approved, "links": m.links, "metadata": m.metadata,
        "mcp": m.mcp, "agent": m.agent, "digest": m.digest,
    })
}

fn record_fields(r: &AssetRecord) -> serde_json::Value {
    let f = r.fields();
    serde_json::json!({
        "kind": f.kind.as_str(), "name": f.name, "version": f.version,
        "display_name": f.display_name, "description": f.description,
        "provider": f.provider, "license": f.license, "tags": f.tags, "labels": f.labels,
        "stage": f.stage, "approved": f.approved, "links": f.links,
        "metadata": f.metadata, "mcp": f.mcp, "agent": f.agent,
        "digest": r.digest(),
    })
}

/// Refreshes team-a's `src` to `desired` and reads back every row, by name.
async fn refreshed_rows(
    store: &Store,
    desired: Vec<AssetRecord>,
) -> (
    curio::store::ApplyOutcome,
    Vec<curio::store::entity::asset::Model>,
) {
    use curio::store::entity::asset;
    use sea_orm::{EntityTrait, QueryOrder};
    let out = refresh(store, &ns("team-a"), "src", desired).await;
    let rows = asset::Entity::find()
        .order_by_asc(asset::Column::Name)
        .all(store.connection())
        .await
        .unwrap();
    (out, rows)
}

async fn check_every_field_round_trips(store: Store) {
    // Text the batched write must carry verbatim: quotes, backslashes, SQL wildcards, array
    // and JSON punctuation, COPY's own NULL and end marker, unicode, and an empty string
    // beside a missing one.
    let awkward = "O'Brien \"quoted\" back\\slash 100% _x_ {a,b} NULL \\N \\. ünïcödé 模型 🚀";
    let mut full = asset(AssetKind::McpServer, "full/ünïcödé", "1.0-β");
    full.display_name = Some(awkward.into());
    full.description = Some(format!("{awkward}\nsecond line\ttab\r\n\\.\n\\N"));
    full.provider = Some(String::new());
    full.license = Some("Apache-2.0 OR MIT".into());
    full.tags = vec!["a,b".into(), "NULL".into(), "ünï".into()];
    full.labels = [("k\"ey".to_string(), "v,al}ue".to_string())].into();
    full.links = vec![curio::catalog::Link {
        link_type: "weights".into(),
        uri: "oci://r.example.com/m:1?x=\"y\"".into(),
    }];
    full.metadata = Some(serde_json::json!({"nested": {"s": awkward, "n": 1.5, "null": null}}));
    full.mcp = Some(Default::default());
    full.agent = Some(Default::default());
    let full = AssetRecord::curated(full, [], [], Some("production".into()), true);
    // Nothing optional set: each such column NULL.
    let bare = AssetRecord::from_asset(curio_core::fixtures::asset(AssetKind::Agent, "bare", ""));
    let (out, rows) = refreshed_rows(&store, vec![full.clone(), bare.clone()]).await;
    assert_eq!(out.added, 2);
    assert_eq!(rows.len(), 2);
    assert_eq!(stored_fields(&rows[0]), record_fields(&bare));
    assert_eq!(stored_fields(&rows[1]), record_fields(&full));
    assert!(bare.fields().description.is_none() && bare.fields().mcp.is_none());
    assert!(
        rows[0].description.is_none() && rows[0].mcp.is_none(),
        "NULL, not empty"
    );
    assert_eq!(rows[1].provider.as_deref(), Some(""), "empty, not NULL");

    // An update goes through the upsert's arrays: the row takes the new content whole.
    let mut changed = asset(AssetKind::McpServer, "full/ünïcödé", "1.0-β");
    changed.description = Some(awkward.into());
    let changed = AssetRecord::from_asset(changed);
    let (out, rows) = refreshed_rows(&store, vec![changed.clone(), bare.clone()]).await;
    assert_eq!(out.updated, 1);
    assert_eq!(stored_fields(&rows[1]), record_fields(&changed));
}

#[tokio::test]
async fn every_field_round_trips_on_postgres() {
    check_every_field_round_trips(postgres_store().await.0).await;
}

#[tokio::test]
async fn every_field_round_trips_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_every_field_round_trips(store).await;
}

/// Audit events as written through `record_audit_events` (`refresh: false`) or a refresh's
/// transaction, read back whole.
async fn check_audit_events_round_trip(store: Store, refresh: bool) {
    use curio::store::NewAuditEvent;
    let namespace = ns("team-a");
    let mut full = audit(&namespace, "approve", "model-ünï");
    full.actor = "O'Brien \"admin\"\t\\N".into();
    full.actor_groups = vec!["a,b".into(), "NULL".into(), "tab\there".into()];
    full.object_uid = Some("uid-1".into());
    full.before_digest = Some("b".repeat(64));
    full.after_digest = Some(String::new());
    full.client = Some("kubectl/1.28 \\ 模型\r\n\\.".into());
    full.details = Some(serde_json::json!({"why": "100% {x}\n\\N", "n": null}));
    let mut bare = audit(&namespace, "create", "bare");
    bare.reason = None;
    bare.request_id = None;
    let mut keyed = audit(&namespace, "start", "job");
    keyed.idempotency_key = Some("job-uid/1/start".into());
    let events: Vec<NewAuditEvent> = vec![full, bare, keyed.clone(), keyed];
    let written = if refresh {
        let diff = curio::catalog::Diff::default();
        let out = store
            .apply_refresh(&namespace, "src", &diff, &events)
            .await
            .unwrap();
        out.audit_events
    } else {
        store.record_audit_events(&events).await.unwrap()
    };
    assert_eq!(written, 3, "the repeated key once");
    let stored = store
        .list_audit_events(
            &NamespaceScope::single(namespace.clone()),
            &Default::default(),
            None,
            10,
        )
        .await
        .unwrap();
    let as_event = |m: &curio::store::entity::audit_event::Model| NewAuditEvent {
        namespace: namespace.clone(),
        occurred_at: m.occurred_at,
        actor: m.actor.clone(),
        actor_groups: serde_json::from_value(m.actor_groups.clone()).unwrap(),
        verb: m.verb.clone(),
        resource: m.resource.clone(),
        object_name: m.object_name.clone(),
        object_uid: m.object_uid.clone(),
        before_digest: m.before_digest.clone(),
        after_digest: m.after_digest.clone(),
        reason: m.reason.clone(),
        request_id: m.request_id.clone(),
        client: m.client.clone(),
        details: m.details.clone(),
        idempotency_key: m.idempotency_key.clone(),
    };
    let stored: Vec<NewAuditEvent> = stored.iter().map(as_event).collect();
    // Timestamps keep microseconds in the store.
    let truncated = |mut e: NewAuditEvent| {
        e.occurred_at =
            chrono::DateTime::from_timestamp_micros(e.occurred_at.timestamp_micros()).unwrap();
        e
    };
    let expected: Vec<NewAuditEvent> = events[..3].iter().cloned().map(truncated).collect();
    let stored: Vec<NewAuditEvent> = stored.into_iter().map(truncated).collect();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn audit_events_round_trip_on_postgres() {
    check_audit_events_round_trip(postgres_store().await.0, false).await;
}

#[tokio::test]
async fn audit_events_round_trip_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_audit_events_round_trip(store, false).await;
}

#[tokio::test]
async fn a_refresh_audit_events_round_trip_on_postgres() {
    check_audit_events_round_trip(postgres_store().await.0, true).await;
}

#[tokio::test]
async fn a_refresh_audit_events_round_trip_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    check_audit_events_round_trip(store, true).await;
}
