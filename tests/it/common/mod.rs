//! Shared test support: a fresh, migrated database per test on the PostgreSQL server named by
//! `DATABASE_URL` (scripts/test.sh sets it), and asset builders.
#![allow(dead_code)]

pub mod api;
pub mod cluster;
pub mod webhook;

use std::sync::atomic::{AtomicUsize, Ordering};

use curio::{
    catalog::{Asset, AssetKind, AssetRecord},
    store::{self, Namespace, NewAuditEvent, Store},
};
use sea_orm::{ConnectionTrait, Database};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server's URL from `DATABASE_URL`. A test that needs PostgreSQL fails without it rather
/// than passing by skipping: run the suite through scripts/test.sh.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the suite with scripts/test.sh, which provides PostgreSQL",
    )
}

fn split_url(url: &str) -> (&str, &str) {
    let (base, rest) = url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    let name = rest.split('?').next().unwrap_or(rest);
    (base, name)
}

/// Creates an empty database named after the run's database (so the test script can drop
/// them all afterwards) and returns its URL.
pub async fn empty_postgres() -> String {
    let admin = admin_url();
    let (base, run_db) = split_url(&admin);
    let name = format!(
        "{run_db}_t{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let conn = Database::connect(admin.as_str())
        .await
        .expect("connect to DATABASE_URL");
    conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    conn.close().await.ok();
    format!("{base}/{name}")
}

/// A fresh, migrated PostgreSQL store.
pub async fn postgres_store() -> (Store, String) {
    let url = empty_postgres().await;
    store::migrate(&url).await.expect("migrate");
    (store::connect(&url).await.expect("connect"), url)
}

/// A fresh, migrated SQLite store in a temporary folder (kept alive by the returned guard).
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/curio.db?mode=rwc", dir.path().display());
    store::migrate(&url).await.expect("migrate sqlite");
    (store::connect(&url).await.expect("connect sqlite"), dir)
}

pub fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("valid namespace")
}

pub fn asset(kind: AssetKind, name: &str, version: &str) -> Asset {
    Asset {
        display_name: Some(format!("Display {name}")),
        description: Some(format!("Description of {name}")),
        provider: Some("Example".into()),
        license: Some("apache-2.0".into()),
        tags: vec!["llm".into()],
        labels: [("task".to_string(), "text-generation".to_string())].into(),
        metadata: Some(serde_json::json!({"n": name})),
        mcp: None,
        agent: None,
        ..curio_core::fixtures::asset(kind, name, version)
    }
}

pub fn record(kind: AssetKind, name: &str, version: &str) -> AssetRecord {
    AssetRecord::from_asset(asset(kind, name, version))
}

pub fn models(prefix: &str, count: usize) -> Vec<AssetRecord> {
    (0..count)
        .map(|i| record(AssetKind::Model, &format!("{prefix}-{i:06}"), "1"))
        .collect()
}

pub fn audit(namespace: &Namespace, verb: &str, object: &str) -> NewAuditEvent {
    NewAuditEvent {
        namespace: namespace.clone(),
        occurred_at: chrono::Utc::now(),
        actor: "system:curio-controller".into(),
        actor_groups: vec!["system:serviceaccounts".into()],
        verb: verb.into(),
        resource: "models".into(),
        object_name: object.into(),
        object_uid: None,
        before_digest: None,
        after_digest: None,
        reason: Some("test".into()),
        request_id: Some("req-1".into()),
        client: None,
        details: None,
        idempotency_key: None,
    }
}

/// Diffs `desired` against what the store holds and applies it, with one audit event per change.
pub async fn refresh(
    store: &Store,
    namespace: &Namespace,
    source: &str,
    desired: Vec<AssetRecord>,
) -> curio::store::ApplyOutcome {
    let stored = store
        .source_digests(namespace, source)
        .await
        .expect("digests");
    let diff = curio::catalog::diff(&stored, desired);
    let events: Vec<NewAuditEvent> = diff
        .added
        .iter()
        .map(|r| audit(namespace, "create", r.name()))
        .chain(
            diff.updated
                .iter()
                .map(|u| audit(namespace, "update", u.record.name())),
        )
        .chain(
            diff.removed
                .iter()
                .map(|r| audit(namespace, "delete", &r.key.name)),
        )
        .collect();
    store
        .apply_refresh(namespace, source, &diff, &events)
        .await
        .expect("apply_refresh")
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            sql.to_owned(),
        ))
        .await
        .expect("count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}
