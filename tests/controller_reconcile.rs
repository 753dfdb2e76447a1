//! CatalogSource reconciles against the real PostgreSQL, with the cluster behind an in-memory
//! adapter: Ready with the right count, a bad document keeps the last good assets, a missing
//! ConfigMap says so, deletion removes the assets, and every change is audited.

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use common::{count, postgres_store};
use curio::{
    catalog::Limits,
    controller::{
        cluster::{Cluster, ClusterError, EventNote},
        reconcile::{Context, Report, cleanup_source, reconcile_source},
    },
    crd::{CatalogSource, CatalogSourceStatus},
};
use serde_json::json;

#[derive(Default)]
struct FakeCluster {
    config_maps: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    statuses: Mutex<Vec<CatalogSourceStatus>>,
    events: Mutex<Vec<EventNote>>,
    reads: AtomicUsize,
}

#[async_trait]
impl Cluster for FakeCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .config_maps
            .lock()
            .unwrap()
            .get(&(namespace.into(), name.into()))
            .cloned())
    }
    async fn secret(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClusterError> {
        Ok(None)
    }
    async fn write_source_status(
        &self,
        _: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError> {
        self.statuses.lock().unwrap().push(status.clone());
        Ok(())
    }
    async fn record_event(&self, _: &CatalogSource, event: EventNote) -> Result<(), ClusterError> {
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}

impl FakeCluster {
    fn put_config_map(&self, ns: &str, name: &str, key: &str, text: &str) {
        self.config_maps.lock().unwrap().insert(
            (ns.into(), name.into()),
            BTreeMap::from([(key.to_string(), text.to_string())]),
        );
    }
    fn last_status(&self) -> CatalogSourceStatus {
        self.statuses
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a status was written")
    }
}

fn source(spec: serde_json::Value) -> CatalogSource {
    let mut source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "models", "namespace": "team-a", "uid": "uid-1", "generation": 1,
                     "annotations": {"curio.dev/change-reason": "onboarding granite"}},
        "spec": spec
    }))
    .unwrap();
    source.status = None;
    source
}

fn ready(status: &CatalogSourceStatus) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition");
    (c.status.clone(), c.reason.clone())
}

const GOOD: &str = "assets:\n - {kind: Model, name: granite-3-8b, version: '3.0'}\n - {kind: Model, name: llama-3-8b}\n - {kind: McpServer, name: github}\n";

async fn context() -> (Context, Arc<FakeCluster>) {
    let (store, _) = postgres_store().await;
    let cluster = Arc::new(FakeCluster::default());
    let ctx = Context {
        store,
        cluster: cluster.clone(),
        identity: "system:serviceaccount:curio-system:curio".into(),
        limits: Limits::default(),
    };
    (ctx, cluster)
}

#[tokio::test]
async fn an_inline_source_becomes_ready_with_its_assets_audited() {
    let (ctx, cluster) = context().await;
    let src = source(json!({"source": {"inline": {"assets": [
        {"kind": "Model", "name": "granite-3-8b", "version": "3.0"},
        {"kind": "Agent", "name": "triage"}
    ]}}, "curation": [{"match": "granite-*", "approved": true, "stage": "production"}]}));
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.added == 2),
        "{report:?}"
    );
    let status = cluster.last_status();
    assert_eq!(ready(&status), ("True".into(), "Succeeded".into()));
    assert_eq!(status.asset_count, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.content_digest.is_some());
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM assets WHERE approved AND stage = 'production'"
        )
        .await,
        1
    );
    let audits = count(&ctx.store, "SELECT count(*) FROM audit_events WHERE actor = 'system:serviceaccount:curio-system:curio' AND verb = 'create' AND reason = 'onboarding granite' AND object_uid = 'uid-1'").await;
    assert_eq!(audits, 2);
    // The API's copy of the source carries the status.
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM catalog_sources WHERE asset_count = 2"
        )
        .await,
        1
    );

    // Nothing changed: nothing written, no audit, no event.
    let events_before = cluster.events.lock().unwrap().len();
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(matches!(report, Report::Applied(o) if o.unchanged == 2 && o.audit_events == 0));
    assert_eq!(cluster.events.lock().unwrap().len(), events_before);
}

#[tokio::test]
async fn a_bad_document_after_a_good_one_keeps_the_old_assets() {
    let (ctx, cluster) = context().await;
    cluster.put_config_map("team-a", "catalog", "catalog.yaml", GOOD);
    let src = source(json!({"source": {"configMap": {"name": "catalog"}}}));
    reconcile_source(&ctx, &src).await.unwrap();
    assert_eq!(cluster.last_status().asset_count, Some(3));

    cluster.put_config_map(
        "team-a",
        "catalog",
        "catalog.yaml",
        "assets:\n - {kind: Model, name: [oops\n",
    );
    let mut src2 = src.clone();
    src2.status = Some(cluster.last_status());
    let report = reconcile_source(&ctx, &src2).await.unwrap();
    assert_eq!(
        report,
        Report::Failed {
            transient: false,
            reason: "InvalidCatalog".into()
        }
    );
    let status = cluster.last_status();
    assert_eq!(ready(&status), ("False".into(), "InvalidCatalog".into()));
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert!(
        stalled.message.contains("line"),
        "the parse message names the line: {}",
        stalled.message
    );
    assert_eq!(status.asset_count, Some(3), "the last good count stays");
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM assets").await,
        3,
        "the last good assets stay"
    );
    assert!(
        cluster
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.warning && e.reason == "InvalidCatalog")
    );

    // Fixed again: Ready.
    cluster.put_config_map(
        "team-a",
        "catalog",
        "catalog.yaml",
        "assets:\n - {kind: Model, name: granite-3-8b, version: '3.0'}\n",
    );
    reconcile_source(&ctx, &src2).await.unwrap();
    assert_eq!(ready(&cluster.last_status()).0, "True");
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 1);
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM audit_events WHERE verb = 'delete'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_missing_config_map_or_key_is_explained() {
    let (ctx, cluster) = context().await;
    let src = source(json!({"source": {"configMap": {"name": "absent"}}}));
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert_eq!(
        report,
        Report::Failed {
            transient: false,
            reason: "ConfigMapNotFound".into()
        }
    );
    let status = cluster.last_status();
    assert!(
        status
            .message
            .unwrap()
            .contains("ConfigMap \"absent\" not found in namespace \"team-a\"")
    );
    cluster.put_config_map("team-a", "absent", "other.yaml", GOOD);
    reconcile_source(&ctx, &src).await.unwrap();
    let message = cluster.last_status().message.unwrap();
    assert!(
        message.contains("no key \"catalog.yaml\"") && message.contains("other.yaml"),
        "{message}"
    );
}

#[tokio::test]
async fn a_suspended_source_is_not_fetched() {
    let (ctx, cluster) = context().await;
    let src = source(json!({"source": {"configMap": {"name": "catalog"}}, "suspend": true}));
    assert_eq!(
        reconcile_source(&ctx, &src).await.unwrap(),
        Report::Suspended
    );
    assert_eq!(cluster.reads.load(Ordering::SeqCst), 0);
    assert!(cluster.statuses.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deleting_a_source_removes_its_assets_with_audit() {
    let (ctx, cluster) = context().await;
    cluster.put_config_map("team-a", "catalog", "catalog.yaml", GOOD);
    let src = source(json!({"source": {"configMap": {"name": "catalog"}}}));
    reconcile_source(&ctx, &src).await.unwrap();
    let outcome = cleanup_source(&ctx, &src).await.unwrap();
    assert_eq!(outcome.removed, 3);
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 0);
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM catalog_sources").await,
        0
    );
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM audit_events WHERE verb = 'delete' AND reason = 'onboarding granite'").await, 3);
}
