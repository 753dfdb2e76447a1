//! RefreshJob attempts against the real PostgreSQL, with the cluster in memory: exactly-once
//! after an interruption, retries up to backoffLimit, TTL deletion, selector targets, and the
//! audit trail of each.

use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use crate::common::{
    cluster::{TestCluster, controller_context},
    count,
};
use curio::{
    controller::{
        job::{JobResult, JobSettings, run_job},
        reconcile::Context,
    },
    crd::{CatalogSource, JobPhase, RefreshJob},
    source::policy::AddressPolicy,
};
use curio_core::fixtures::{catalog_source, refresh_job};
use serde_json::json;

const GOOD: &str = "assets:\n - {kind: Model, name: granite-3-8b, version: '3.0'}\n - {kind: Model, name: llama-3-8b}\n - {kind: McpServer, name: github}\n";

const FAST: JobSettings = JobSettings {
    retry_base: Duration::from_millis(10),
    retry_cap: Duration::from_millis(100),
};

async fn context() -> (Context, Arc<TestCluster>) {
    controller_context(AddressPolicy::default()).await
}

fn source(name: &str, labels: serde_json::Value, spec: serde_json::Value) -> CatalogSource {
    catalog_source("team-a", name)
        .labels(labels)
        .spec(spec)
        .build()
}

fn job(name: &str, spec: serde_json::Value) -> RefreshJob {
    refresh_job("team-a", name).spec(spec).build()
}

async fn stored_job(cluster: &TestCluster, name: &str) -> RefreshJob {
    use curio::cluster::Cluster;
    cluster.job("team-a", name).await.unwrap().expect("the job")
}

#[tokio::test]
async fn a_job_interrupted_before_its_status_write_completes_exactly_once() {
    let (ctx, cluster) = context().await;
    cluster.put_config_map("team-a", "catalog", "catalog.yaml", GOOD);
    cluster.inner.apply_source(source(
        "models",
        json!({}),
        json!({"source": {"configMap": {"name": "catalog"}}}),
    ));
    cluster.inner.apply_job(job(
        "refresh",
        json!({"sourceRef": {"name": "models"}, "reason": "quarterly review"}),
    ));
    // The Running write succeeds; the controller dies before the final one.
    cluster
        .job_status_writes_before_failure
        .store(1, Ordering::SeqCst);
    assert!(run_job(&ctx, &FAST, "team-a", "refresh").await.is_err());
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 3);
    let interrupted = stored_job(&cluster, "refresh").await;
    let status = interrupted.status.clone().unwrap();
    assert_eq!(
        (status.phase, status.attempts),
        (Some(JobPhase::Running), 1)
    );
    assert!(
        interrupted
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o[0].kind == "CatalogSource" && o[0].name == "models"),
        "the job is owned by its source"
    );

    // The next leader runs the same attempt again.
    cluster
        .job_status_writes_before_failure
        .store(usize::MAX, Ordering::SeqCst);
    let result = run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap();
    assert!(matches!(result, JobResult::Succeeded(_)), "{result:?}");
    let done = stored_job(&cluster, "refresh").await.status.unwrap();
    assert_eq!((done.phase, done.attempts), (Some(JobPhase::Succeeded), 1));
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM assets").await,
        3,
        "one copy of each asset"
    );
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM audit_events WHERE resource <> 'refreshjobs' AND verb = 'create' AND reason = 'quarterly review'").await,
        3,
        "one audit event per asset"
    );
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM audit_events WHERE resource = 'refreshjobs' AND verb = 'start'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM audit_events WHERE resource = 'refreshjobs' AND verb = 'succeed'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM audit_events WHERE request_id IS DISTINCT FROM (SELECT request_id FROM audit_events WHERE verb = 'start')").await,
        0,
        "every row carries the attempt's correlation id"
    );
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM refresh_jobs WHERE status->>'phase' = 'Succeeded'"
        )
        .await,
        1,
        "the API's copy of the job is current"
    );
    // A finished job is not run again.
    assert_eq!(
        run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap(),
        JobResult::Idle
    );
}

#[tokio::test]
async fn a_failing_job_retries_up_to_its_backoff_limit() {
    let (ctx, cluster) = context().await;
    cluster.inner.apply_source(source(
        "models",
        json!({}),
        json!({"source": {"configMap": {"name": "absent"}}}),
    ));
    cluster.inner.apply_job(job(
        "refresh",
        json!({"sourceRef": {"name": "models"}, "backoffLimit": 1}),
    ));
    let first = run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap();
    assert_eq!(first, JobResult::RetryAfter(FAST.retry_base));
    let pending = stored_job(&cluster, "refresh").await.status.unwrap();
    assert_eq!(
        (pending.phase, pending.attempts),
        (Some(JobPhase::Pending), 1)
    );
    assert!(
        pending
            .message
            .unwrap()
            .contains("ConfigMap \"absent\" not found")
    );

    let second = run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap();
    assert!(matches!(second, JobResult::Failed(_)), "{second:?}");
    let failed = stored_job(&cluster, "refresh").await.status.unwrap();
    assert_eq!((failed.phase, failed.attempts), (Some(JobPhase::Failed), 2));
    assert!(failed.completion_time.is_some());
    for (verb, expected) in [("start", 2), ("retry", 1), ("fail", 1), ("succeed", 0)] {
        assert_eq!(
            count(&ctx.store, &format!("SELECT count(*) FROM audit_events WHERE resource = 'refreshjobs' AND verb = '{verb}'")).await,
            expected,
            "{verb}"
        );
    }
    let reasons: Vec<String> = cluster.events().into_iter().map(|e| e.reason).collect();
    assert!(
        reasons.contains(&"AttemptFailed".to_string()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"Failed".to_string()), "{reasons:?}");
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 0);
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let (ctx, cluster) = context().await;
    cluster.inner.apply_source(source(
        "models",
        json!({}),
        json!({"source": {"inline": {"assets": [{"kind": "Agent", "name": "triage"}]}}}),
    ));
    cluster.inner.apply_job(job(
        "refresh",
        json!({"sourceRef": {"name": "models"}, "ttlSecondsAfterFinished": 0}),
    ));
    assert!(matches!(
        run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap(),
        JobResult::Succeeded(_)
    ));
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM refresh_jobs").await,
        1
    );
    assert_eq!(
        run_job(&ctx, &FAST, "team-a", "refresh").await.unwrap(),
        JobResult::Idle
    );
    use curio::cluster::Cluster;
    assert!(cluster.job("team-a", "refresh").await.unwrap().is_none());
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM refresh_jobs").await,
        0
    );
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM assets").await,
        1,
        "the assets stay"
    );
}

#[tokio::test]
async fn a_selector_job_refreshes_every_matching_source() {
    let (ctx, cluster) = context().await;
    for (name, tier) in [("one", "gold"), ("two", "gold"), ("three", "bronze")] {
        cluster.inner.apply_source(source(
            name,
            json!({"tier": tier}),
            json!({"source": {"inline": {"assets": [{"kind": "Model", "name": format!("model-{name}")}]}}}),
        ));
    }
    cluster.inner.apply_job(job(
        "gold",
        json!({"selector": {"matchLabels": {"tier": "gold"}}, "reason": "gold tier refresh"}),
    ));
    let result = run_job(&ctx, &FAST, "team-a", "gold").await.unwrap();
    assert!(
        matches!(&result, JobResult::Succeeded(o) if o.added == 2),
        "{result:?}"
    );
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 2);
    assert_eq!(
        stored_job(&cluster, "gold").await.status.unwrap().added,
        Some(2)
    );
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM audit_events WHERE verb = 'create' AND reason = 'gold tier refresh'").await,
        2
    );
}
