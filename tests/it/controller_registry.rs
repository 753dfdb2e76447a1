//! An `mcpRegistry` source syncing from a second Curio's team registry over real HTTP: the
//! first sync pages through everything, later ones ask only for what changed and merge it
//! in, and a malformed upstream page keeps the last good catalog.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use curio::{
    api,
    catalog::{AssetRecord, Limits, parse_document},
    controller::reconcile::{Report, reconcile_source},
    crd::CatalogSource,
    server,
    source::policy::AddressPolicy,
    store::Store,
};
use curio_core::fixtures::catalog_source;
use serde_json::{Value, json};

use crate::common::{
    api::static_state, cluster::controller_context, count, ns, postgres_store, refresh,
};

/// The upstream: a real `curio api` router on loopback, recording every query string and able
/// to answer garbage.
struct Upstream {
    url: String,
    store: Store,
    queries: Arc<Mutex<Vec<String>>>,
    broken: Arc<AtomicBool>,
}

async fn upstream() -> Upstream {
    let (store, _) = postgres_store().await;
    let queries = Arc::new(Mutex::new(Vec::new()));
    let broken = Arc::new(AtomicBool::new(false));
    let (log, fail) = (queries.clone(), broken.clone());
    let router = api::router(static_state(store.clone())).layer(middleware::from_fn(
        move |request: Request, next: Next| {
            let (log, fail) = (log.clone(), fail.clone());
            async move {
                log.lock()
                    .unwrap()
                    .push(request.uri().query().unwrap_or_default().to_owned());
                if fail.load(Ordering::SeqCst) {
                    return (StatusCode::OK, "{\"servers\": \"not a list\"}").into_response();
                }
                let response: Response = next.run(request).await;
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/registry/namespaces/team-a",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        server::serve_http(listener, router, std::future::pending())
            .await
            .ok();
    });
    Upstream {
        url,
        store,
        queries,
        broken,
    }
}

async fn publish(store: &Store, source: &str, servers: &[(&str, &str)]) {
    let items: Vec<Value> = servers
        .iter()
        .map(|(name, version)| {
            json!({"name": name, "version": version, "description": format!("{name} {version}"),
                   "remotes": [{"type": "streamable-http", "url": format!("https://{}.example.com/mcp", name.replace('/', "-"))}]})
        })
        .collect();
    let records: Vec<AssetRecord> = parse_document(
        json!({ "servers": items }).to_string().as_bytes(),
        Limits::default(),
    )
    .unwrap()
    .into_iter()
    .map(AssetRecord::from_asset)
    .collect();
    refresh(store, &ns("team-a"), source, records).await;
}

fn source(url: &str) -> CatalogSource {
    catalog_source("team-x", "upstream")
        .uid("uid-up")
        .generation(1)
        .spec(
            json!({"source": {"mcpRegistry": {"url": url, "secretRef": {"name": "registry-token"}}},
                     "interval": "1m"}),
        )
        .build()
}

async fn held(store: &Store) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT name, version FROM assets WHERE namespace = 'team-x' ORDER BY name, version",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{}@{}",
                r.try_get::<String>("", "name").unwrap(),
                r.try_get::<String>("", "version").unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_registry_source_syncs_from_another_curio_incrementally() {
    let up = upstream().await;
    let mut many: Vec<(String, String)> = (0..250)
        .map(|i| (format!("io.example/s{i:03}"), "1.0.0".to_owned()))
        .collect();
    many.push(("io.example/s000".into(), "0.9.0".into()));
    let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    publish(&up.store, "servers", &refs).await;

    let loopback = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], vec![]);
    let (ctx, cluster) = controller_context(loopback).await;
    cluster.inner.put_secret(
        "team-x",
        "registry-token",
        BTreeMap::from([("token".to_string(), b"vera-token".to_vec())]),
    );
    let mut src = source(&up.url);

    // First sync: every page of the latest versions.
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.added == 250),
        "{report:?}"
    );
    let status = cluster.last_status();
    let sync = status.registry_sync.clone().expect("a sync state");
    assert!(sync.updated_up_to.is_some() && sync.last_full_sync_time.is_some());
    let first: Vec<String> = up.queries.lock().unwrap().drain(..).collect();
    assert_eq!(first.len(), 3, "three pages of 100: {first:?}");
    assert!(
        first
            .iter()
            .all(|q| q.contains("version=latest") && !q.contains("updated_since"))
    );
    assert!(
        held(&ctx.store)
            .await
            .contains(&"io.example/s000@1.0.0".to_owned())
    );
    let details = count(
        &ctx.store,
        "SELECT count(*) FROM assets WHERE namespace = 'team-x' AND mcp IS NOT NULL",
    )
    .await;
    assert_eq!(details, 250, "the transports came along");

    // Upstream changes: a new server and a new version of another.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    publish(
        &up.store,
        "later",
        &[("io.example/new", "1.0.0"), ("io.example/s001", "2.0.0")],
    )
    .await;
    src.status = Some(status);
    // The interval comes round.
    let mut aged = src.status.clone().unwrap();
    let last = aged.last_refresh_time.clone().unwrap().0;
    aged.last_refresh_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        last - k8s_openapi::jiff::SignedDuration::from_secs(120),
    ));
    src.status = Some(aged);
    let report = reconcile_source(&ctx, &src).await.unwrap();
    // s001@2.0.0 replaces s001@1.0.0: the version is part of an asset's key.
    assert!(
        matches!(report, Report::Applied(o) if o.added == 2 && o.removed == 1),
        "{report:?}"
    );
    let second: Vec<String> = up.queries.lock().unwrap().drain(..).collect();
    assert_eq!(second.len(), 1, "one page of changes: {second:?}");
    assert!(second[0].contains("updated_since="), "{second:?}");
    let now_held = held(&ctx.store).await;
    assert_eq!(now_held.len(), 251, "{now_held:?}");
    assert!(now_held.contains(&"io.example/new@1.0.0".to_owned()));
    assert!(now_held.contains(&"io.example/s001@2.0.0".to_owned()));
    assert!(
        !now_held.contains(&"io.example/s001@1.0.0".to_owned()),
        "one version per server"
    );
    let good = cluster.last_status();
    assert_eq!(good.asset_count, Some(251));

    // A malformed page: the last good catalog stays, and the status says why.
    up.broken.store(true, Ordering::SeqCst);
    src.status = Some(good.clone());
    src.metadata.generation = Some(2);
    let report = reconcile_source(&ctx, &src).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { reason, .. } if reason == "InvalidCatalog"),
        "{report:?}"
    );
    let failed = cluster.last_status();
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("not a registry answer"),
        "{failed:?}"
    );
    assert_eq!(held(&ctx.store).await.len(), 251);
}

#[tokio::test]
async fn a_registry_the_token_cannot_read_is_a_clear_failure() {
    let up = upstream().await;
    publish(&up.store, "servers", &[("io.example/a", "1.0.0")]).await;
    let loopback = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], vec![]);
    let (ctx, cluster) = controller_context(loopback).await;
    cluster.inner.put_secret(
        "team-x",
        "registry-token",
        BTreeMap::from([("token".to_string(), b"bob-token".to_vec())]),
    );
    let report = reconcile_source(&ctx, &source(&up.url)).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { reason, .. } if reason == "FetchFailed"),
        "{report:?}"
    );
    assert!(
        cluster
            .last_status()
            .message
            .unwrap_or_default()
            .contains("403")
    );
    // And the address policy applies as for URL sources.
    let (ctx, cluster) = controller_context(AddressPolicy::default()).await;
    cluster.inner.put_secret(
        "team-x",
        "registry-token",
        BTreeMap::from([("token".to_string(), b"vera-token".to_vec())]),
    );
    let report = reconcile_source(&ctx, &source(&up.url)).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { reason, .. } if reason == "URLRefused"),
        "{report:?}"
    );
}
