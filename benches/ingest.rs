//! Ingest benchmark against a real PostgreSQL. Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench ingest
//!
//! Uses the server in `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres) to
//! create two throwaway databases, which it drops at the end. `INGEST_ASSETS` overrides 100,000.

mod support;

use std::{collections::HashMap, time::Instant};

use chrono::Utc;
use curio::{
    catalog::{Asset, AssetKind, AssetRecord, Diff, diff},
    store::{self, Namespace, NewAuditEvent, Store, upsert_statement},
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use support::BenchDatabase;

fn record(i: usize, revision: u32) -> AssetRecord {
    let kind = match i % 10 {
        0 => AssetKind::McpServer,
        1 => AssetKind::Agent,
        _ => AssetKind::Model,
    };
    AssetRecord::from_asset(Asset {
        kind,
        name: format!("family-{}/model-{i:07}", i % 97),
        version: format!("1.{}", i % 5),
        display_name: Some(format!("Model {i}")),
        description: Some(format!(
            "Revision {revision} of a decoder-only model trained for instruction following, \
             code generation and retrieval-augmented answering; entry number {i}."
        )),
        provider: Some(["IBM", "Meta", "Mistral AI", "Google"][i % 4].into()),
        license: Some(["apache-2.0", "llama3.1", "mit"][i % 3].into()),
        tags: vec!["llm".into(), format!("size-{}", i % 7)],
        labels: [
            ("task".to_string(), "text-generation".to_string()),
            ("tier".to_string(), format!("t{}", i % 3)),
        ]
        .into(),
        links: vec![curio::catalog::Link {
            link_type: "weights".into(),
            uri: format!("oci://registry.example.com/m/{i}:1"),
        }],
        metadata: Some(
            serde_json::json!({"contextLength": 8192 * (1 + i % 16), "quantized": i.is_multiple_of(2)}),
        ),
        mcp: None,
        agent: None,
    })
}

fn audit_events(namespace: &Namespace, d: &Diff) -> Vec<NewAuditEvent> {
    let event = |verb: &str, name: &str, before: Option<&str>, after: Option<&str>| NewAuditEvent {
        namespace: namespace.clone(),
        occurred_at: Utc::now(),
        actor: "system:serviceaccount:curio-system:curio".into(),
        actor_groups: vec![],
        verb: verb.into(),
        resource: "models".into(),
        object_name: name.into(),
        object_uid: None,
        before_digest: before.map(str::to_owned),
        after_digest: after.map(str::to_owned),
        reason: Some("benchmark".into()),
        request_id: None,
        client: None,
        details: None,
        idempotency_key: None,
    };
    d.added
        .iter()
        .map(|r| event("create", r.name(), None, Some(r.digest())))
        .chain(d.updated.iter().map(|u| {
            event(
                "update",
                u.record.name(),
                Some(&u.previous_digest),
                Some(u.record.digest()),
            )
        }))
        .chain(
            d.removed
                .iter()
                .map(|r| event("delete", &r.key.name, Some(&r.previous_digest), None)),
        )
        .collect()
}

/// What the controller does per refresh once the document is parsed: read the stored
/// digests, diff, build audit events, apply in one transaction.
async fn refresh(
    store: &Store,
    namespace: &Namespace,
    desired: Vec<AssetRecord>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let stored = store.source_digests(namespace, "bench").await?;
    let d = diff(&stored, desired);
    let events = audit_events(namespace, &d);
    store.apply_refresh(namespace, "bench", &d, &events).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// The same initial ingest, one INSERT per asset and per audit event, in one transaction.
async fn naive_ingest(
    store: &Store,
    namespace: &Namespace,
    desired: Vec<AssetRecord>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let d = diff(&HashMap::new(), desired);
    let events = audit_events(namespace, &d);
    let now = Utc::now();
    let txn = store.connection().begin().await?;
    for r in &d.added {
        txn.execute(&upsert_statement(namespace, "bench", &[r], now, 1)?)
            .await?;
    }
    for e in &events {
        txn.execute(&store::audit_insert_statement(std::slice::from_ref(e))?)
            .await?;
    }
    txn.commit().await?;
    Ok(start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("INGEST_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let namespace = Namespace::new("bench")?;
    let pid = std::process::id();
    let fast_db = BenchDatabase::create(&format!("curio_bench_{pid}")).await?;
    let store = store::connect(&fast_db.url).await?;
    let ingest = refresh(&store, &namespace, (0..n).map(|i| record(i, 0)).collect()).await?;
    let unchanged = refresh(&store, &namespace, (0..n).map(|i| record(i, 0)).collect()).await?;
    let changed = refresh(
        &store,
        &namespace,
        (0..n)
            .map(|i| record(i, if i.is_multiple_of(100) { 1 } else { 0 }))
            .collect(),
    )
    .await?;
    store.connection().clone().close().await?;

    let naive_db = BenchDatabase::create(&format!("curio_bench_naive_{pid}")).await?;
    let naive_store = store::connect(&naive_db.url).await?;
    let naive = naive_ingest(
        &naive_store,
        &namespace,
        (0..n).map(|i| record(i, 0)).collect(),
    )
    .await?;
    naive_store.connection().clone().close().await?;

    let k = n / 1000;
    println!("assets: {n} count");
    println!("ingest_{k}k_s: {ingest:.3} s");
    println!("refresh_unchanged_{k}k_s: {unchanged:.3} s");
    println!("refresh_1pct_changed_{k}k_s: {changed:.3} s");
    println!("ingest_{k}k_naive_s: {naive:.3} s");
    println!("ingest_speedup_vs_naive: {:.1} x", naive / ingest);

    fast_db.drop_now().await?;
    naive_db.drop_now().await
}
