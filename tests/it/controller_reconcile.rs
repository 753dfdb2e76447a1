//! CatalogSource reconciles against the real PostgreSQL, with the cluster behind an in-memory
//! adapter: Ready with the right count, a bad document keeps the last good assets, a missing
//! ConfigMap says so, deletion removes the assets, and every change is audited.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::common::{
    cluster::{TestCluster, controller_context},
    count,
};
use curio::source::policy::AddressPolicy;
use curio::{
    controller::reconcile::{Context, Report, cleanup_source, reconcile_source},
    crd::{CatalogSource, CatalogSourceStatus},
};
use curio_core::fixtures::catalog_source;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::SignedDuration};
use serde_json::json;

fn source(spec: serde_json::Value) -> CatalogSource {
    catalog_source("team-a", "models")
        .uid("uid-1")
        .generation(1)
        .reason("onboarding granite")
        .spec(spec)
        .build()
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

async fn context() -> (Context, Arc<TestCluster>) {
    context_with(AddressPolicy::default()).await
}

async fn context_with(policy: AddressPolicy) -> (Context, Arc<TestCluster>) {
    controller_context(policy).await
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
    let events_before = cluster.events().len();
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(matches!(report, Report::Applied(o) if o.unchanged == 2 && o.audit_events == 0));
    assert_eq!(cluster.events().len(), events_before);
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
    assert!(
        matches!(&report, Report::Failed { transient: false, reason, .. } if reason == "InvalidCatalog"),
        "{report:?}"
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
            .events()
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
    assert!(
        matches!(&report, Report::Failed { transient: false, reason, .. } if reason == "ConfigMapNotFound"),
        "{report:?}"
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
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM audit_events WHERE verb = 'delete' AND reason = 'CatalogSource models deleted'").await, 3);
}

/// A catalog server: answers with an ETag, 304 to a matching If-None-Match, 401 without the
/// bearer token when one is required, and can redirect.
#[derive(Default)]
struct CatalogServer {
    gets: AtomicUsize,
    not_modified: AtomicUsize,
    body: Mutex<String>,
    token: Mutex<Option<String>>,
}

async fn serve_catalog(
    ip: &str,
    server: Arc<CatalogServer>,
    redirect_to: Option<String>,
) -> String {
    use axum::{
        http::{HeaderMap, StatusCode, header},
        response::IntoResponse,
        routing::get,
    };
    let router = axum::Router::new().route(
        "/catalog.yaml",
        get(move |headers: HeaderMap| {
            let server = server.clone();
            let redirect_to = redirect_to.clone();
            async move {
                server.gets.fetch_add(1, Ordering::SeqCst);
                if let Some(target) = redirect_to {
                    return (StatusCode::FOUND, [(header::LOCATION, target)]).into_response();
                }
                if let Some(token) = server.token.lock().unwrap().clone() {
                    let expected = format!("Bearer {token}");
                    if headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        != Some(expected.as_str())
                    {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                }
                let body = server.body.lock().unwrap().clone();
                let etag = format!("\"{}\"", body.len());
                if headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some(etag.as_str())
                {
                    server.not_modified.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, etag)], body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let url = format!("http://{}/catalog.yaml", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    url
}

fn loopback_allowed() -> AddressPolicy {
    AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], vec![])
}

#[tokio::test]
async fn an_unchanged_url_source_costs_one_304_and_writes_nothing() {
    let (ctx, cluster) = context_with(loopback_allowed()).await;
    let server = Arc::new(CatalogServer::default());
    *server.body.lock().unwrap() = GOOD.to_string();
    *server.token.lock().unwrap() = Some("s3cret".into());
    let url = serve_catalog("127.0.0.1", server.clone(), None).await;
    cluster.inner.put_secret(
        "team-a",
        "catalog-token",
        BTreeMap::from([("token".to_string(), b"s3cret".to_vec())]),
    );
    let mut src = source(
        json!({"source": {"url": {"url": url, "secretRef": {"name": "catalog-token"}}}, "interval": "1m"}),
    );
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.added == 3),
        "{report:?}"
    );
    let status = cluster.last_status();
    assert!(status.etag.is_some());
    let audits = count(&ctx.store, "SELECT count(*) FROM audit_events").await;
    let stamp = count(
        &ctx.store,
        "SELECT count(*) FROM assets WHERE updated_at = created_at",
    )
    .await;

    // Our own status write comes back through the watch: no fetch at all.
    src.status = Some(status.clone());
    assert_eq!(
        reconcile_source(&ctx, &src).await.unwrap(),
        Report::UpToDate
    );
    assert_eq!(server.gets.load(Ordering::SeqCst), 1);

    // The interval comes round: one conditional GET, answered 304.
    let mut aged = status;
    let last = aged.last_refresh_time.clone().unwrap().0;
    aged.last_refresh_time = Some(Time(last - SignedDuration::from_secs(120)));
    src.status = Some(aged);
    let statuses_before = cluster.statuses.lock().unwrap().len();
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.unchanged == 3 && o.added == 0),
        "{report:?}"
    );
    assert_eq!(
        server.not_modified.load(Ordering::SeqCst),
        1,
        "the second fetch was a 304"
    );
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM audit_events").await,
        audits
    );
    assert_eq!(
        count(
            &ctx.store,
            "SELECT count(*) FROM assets WHERE updated_at = created_at"
        )
        .await,
        stamp
    );
    assert_eq!(
        cluster.statuses.lock().unwrap().len(),
        statuses_before,
        "no status write either"
    );

    // A spec change refetches in full even though the remote is unchanged.
    src.metadata.generation = Some(2);
    reconcile_source(&ctx, &src).await.unwrap();
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(server.gets.load(Ordering::SeqCst), 3);

    // Without the Secret's token the server refuses; the status says so and the assets stay.
    *server.token.lock().unwrap() = Some("rotated".into());
    src.metadata.generation = Some(3);
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { transient: false, reason, .. } if reason == "FetchFailed"),
        "{report:?}"
    );
    assert!(cluster.last_status().message.unwrap().contains("HTTP 401"));
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 3);
}

#[tokio::test]
async fn url_sources_cannot_reach_refused_addresses() {
    // Default policy: loopback is refused, by literal address and by name.
    let (ctx, cluster) = context().await;
    let server = Arc::new(CatalogServer::default());
    *server.body.lock().unwrap() = GOOD.to_string();
    let url = serve_catalog("127.0.0.1", server.clone(), None).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    for target in [url.clone(), by_name] {
        let report = reconcile_source(&ctx, &source(json!({"source": {"url": {"url": target}}})))
            .await
            .unwrap();
        assert!(
            matches!(&report, Report::Failed { reason, .. } if reason == "URLRefused"),
            "{target}: {report:?}"
        );
    }
    assert_eq!(
        server.gets.load(Ordering::SeqCst),
        0,
        "no request reached the server"
    );
    assert!(cluster.last_status().message.unwrap().contains("refused"));

    // Allowed 127.0.0.1 only: a redirect to 127.0.0.2 is refused, and so is a large document.
    let (ctx, cluster) = context_with(loopback_allowed()).await;
    let hidden = serve_catalog("127.0.0.2", server.clone(), None).await;
    let redirecting = serve_catalog(
        "127.0.0.1",
        Arc::new(CatalogServer::default()),
        Some(hidden),
    )
    .await;
    let report = reconcile_source(
        &ctx,
        &source(json!({"source": {"url": {"url": redirecting}}})),
    )
    .await
    .unwrap();
    assert!(matches!(&report, Report::Failed { .. }), "{report:?}");
    assert_eq!(
        server.gets.load(Ordering::SeqCst),
        0,
        "the redirect target was never asked"
    );
    let report = reconcile_source(
        &ctx,
        &source(json!({"source": {"url": {"url": url, "maxSizeBytes": 16}}})),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            &report,
            Report::Failed {
                transient: false,
                ..
            }
        ),
        "{report:?}"
    );
    assert!(
        cluster
            .last_status()
            .message
            .unwrap()
            .contains("larger than 16 bytes")
    );
}

#[tokio::test]
async fn a_refresh_interrupted_before_its_status_write_converges_exactly_once() {
    let (ctx, cluster) = context().await;
    cluster.put_config_map("team-a", "catalog", "catalog.yaml", GOOD);
    let src = source(json!({"source": {"configMap": {"name": "catalog"}}}));
    cluster.failing_status_writes.store(1, Ordering::SeqCst);
    // The store transaction commits, then the status write fails: the reconcile errors out.
    assert!(reconcile_source(&ctx, &src).await.is_err());
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 3);
    // Re-run (a retry, or the next leader): same result, nothing written twice.
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.unchanged == 3 && o.audit_events == 0),
        "{report:?}"
    );
    assert_eq!(count(&ctx.store, "SELECT count(*) FROM assets").await, 3);
    assert_eq!(
        count(&ctx.store, "SELECT count(*) FROM audit_events").await,
        3,
        "one set of audit events"
    );
    assert_eq!(cluster.last_status().asset_count, Some(3));
}

/// A controller started on an empty (new or restored) database finds sources whose status says
/// Ready with assets the store does not hold, and fetches them again in full: no ETag, so no
/// 304 that would leave the store empty.
#[tokio::test]
async fn a_ready_source_is_fetched_again_into_an_empty_store() {
    let (ctx, cluster) = context_with(loopback_allowed()).await;
    let server = Arc::new(CatalogServer::default());
    *server.body.lock().unwrap() = GOOD.to_string();
    let url = serve_catalog("127.0.0.1", server.clone(), None).await;
    let mut src = source(json!({"source": {"url": {"url": url}}, "interval": "1h"}));
    reconcile_source(&ctx, &src).await.unwrap();
    let status = cluster.last_status();
    assert_eq!(status.asset_count, Some(3));
    assert!(status.etag.is_some());
    assert_eq!(
        status.message.as_deref(),
        Some("3 assets (added 3, updated 0, removed 0, unchanged 0)")
    );
    src.status = Some(status);

    // The same source, Ready at its generation, seen by a controller on a new database.
    let (fresh, fresh_cluster) = context_with(loopback_allowed()).await;
    let report = reconcile_source(&fresh, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.added == 3),
        "{report:?}"
    );
    assert_eq!(count(&fresh.store, "SELECT count(*) FROM assets").await, 3);
    assert_eq!(
        server.not_modified.load(Ordering::SeqCst),
        0,
        "fetched in full, not answered 304"
    );
    assert_eq!(server.gets.load(Ordering::SeqCst), 2);

    // Where the store holds what the status says, the status write coming back costs nothing.
    src.status = Some(fresh_cluster.last_status());
    assert_eq!(
        reconcile_source(&fresh, &src).await.unwrap(),
        Report::UpToDate
    );
    assert_eq!(server.gets.load(Ordering::SeqCst), 2);
    // And a refresh that changes nothing says so plainly.
    let report = curio::controller::reconcile::refetch_source(&fresh, &src)
        .await
        .unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.unchanged == 3),
        "{report:?}"
    );
}

/// A source that never had a good catalog does not claim to keep one.
#[tokio::test]
async fn a_first_failure_does_not_claim_a_last_good_catalog() {
    let (ctx, cluster) = context().await;
    let src =
        source(json!({"source": {"inline": {"assets": [{"kind": "Model", "name": "bad name!"}]}}}));
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(matches!(report, Report::Failed { .. }), "{report:?}");
    let message = cluster.last_status().message.unwrap();
    assert!(
        message.ends_with("no catalog has been applied yet"),
        "{message}"
    );
}
