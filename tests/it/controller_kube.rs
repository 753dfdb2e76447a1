//! The CatalogSource reconcile as `curio controller` runs it (finalizer, the Kubernetes
//! adapter, status writes, Events) against a mocked Kubernetes API (kube-rs's tower-test
//! pattern) and the real PostgreSQL.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::{count, postgres_store};
use curio::{
    cluster::kubernetes::KubeCluster,
    controller::{reconcile::Context, runtime::reconcile_with_finalizer},
    crd::{CatalogSource, CatalogSourceStatus, FINALIZER},
    source::{http::UrlFetcher, policy::AddressPolicy},
};
use curio_core::fixtures::catalog_source;
use http::{Method, Request, Response, StatusCode};
use kube::{Client, client::Body};
use serde_json::{Value, json};

/// What the mocked API server holds and what it was asked.
#[derive(Default)]
struct ApiState {
    config_maps: BTreeMap<String, Value>,
    sources: BTreeMap<String, Value>,
    /// (method, path) of every request, in order.
    requests: Vec<(Method, String)>,
    statuses: Vec<CatalogSourceStatus>,
    events: Vec<Value>,
    version: u64,
}

type Shared = Arc<Mutex<ApiState>>;

fn not_found(what: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
               "reason": "NotFound", "message": format!("{what} not found")}),
    )
}

/// Answers one request from the state, as the API server would.
fn answer(state: &mut ApiState, method: &Method, path: &str, body: Value) -> (StatusCode, Value) {
    const SOURCES: &str = "/apis/curio.dev/v1alpha1/namespaces/team-a/catalogsources/";
    const CONFIG_MAPS: &str = "/api/v1/namespaces/team-a/configmaps/";
    state.version += 1;
    let version = state.version.to_string();
    if let Some(name) = path.strip_prefix(CONFIG_MAPS) {
        return match state.config_maps.get(name) {
            Some(cm) => (StatusCode::OK, cm.clone()),
            None => not_found(&format!("configmaps \"{name}\"")),
        };
    }
    if path.ends_with("/events") && *method == Method::POST {
        state.events.push(body.clone());
        return (StatusCode::CREATED, body);
    }
    if let Some(rest) = path.strip_prefix(SOURCES) {
        let (name, status) = match rest.strip_suffix("/status") {
            Some(name) => (name.to_owned(), true),
            None => (rest.to_owned(), false),
        };
        let Some(stored) = state.sources.get_mut(&name) else {
            return not_found(&format!("catalogsources \"{name}\""));
        };
        match (method.clone(), status) {
            (Method::GET, false) => {}
            (Method::PUT, true) => {
                stored["status"] = body["status"].clone();
                state
                    .statuses
                    .push(serde_json::from_value(body["status"].clone()).unwrap());
            }
            (Method::PATCH, false) => {
                // The finalizer helper's JSON patches: add the list, or remove our entry.
                for op in body.as_array().unwrap() {
                    match op["op"].as_str() {
                        Some("add") => stored["metadata"]["finalizers"] = op["value"].clone(),
                        Some("remove") => stored["metadata"]["finalizers"] = json!([]),
                        _ => {}
                    }
                }
            }
            other => panic!("unexpected request {other:?} {path}"),
        }
        stored["metadata"]["resourceVersion"] = json!(version);
        return (StatusCode::OK, stored.clone());
    }
    panic!("unexpected request {method} {path}");
}

/// A kube client whose requests a task answers from `state`.
fn mocked_client(state: Shared) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = {
                let mut state = state.lock().unwrap();
                state.requests.push((method.clone(), path.clone()));
                answer(&mut state, &method, &path, body)
            };
            respond.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    Client::new(service, "default")
}

struct Harness {
    ctx: Context,
    client: Client,
    api: Shared,
}

async fn harness(policy: AddressPolicy) -> Harness {
    let (store, _) = postgres_store().await;
    let api: Shared = Arc::default();
    let client = mocked_client(api.clone());
    let ctx = Context::new(
        store,
        Arc::new(KubeCluster::new(client.clone(), Some("curio-0".into()))),
        "system:serviceaccount:curio-system:curio".into(),
        UrlFetcher::new(policy, Duration::from_secs(2)).unwrap(),
    );
    Harness { ctx, client, api }
}

impl Harness {
    fn put_config_map(&self, text: &str) {
        self.api.lock().unwrap().config_maps.insert(
            "catalog".into(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "catalog", "namespace": "team-a"},
                   "data": {"catalog.yaml": text}}),
        );
    }

    fn create_source(&self, spec: Value) {
        self.api.lock().unwrap().sources.insert(
            "models".into(),
            catalog_source("team-a", "models")
                .uid("uid-1")
                .generation(1)
                .resource_version("1")
                .spec(spec)
                .json(),
        );
    }

    /// The source as a watch would deliver it now.
    fn source(&self) -> Arc<CatalogSource> {
        let value = self.api.lock().unwrap().sources["models"].clone();
        Arc::new(serde_json::from_value(value).unwrap())
    }

    /// Reconciles until the finalizer is in place and one reconcile has run past it.
    async fn reconcile(&self) {
        if !self
            .source()
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER)
        {
            reconcile_with_finalizer(&self.client, &self.ctx, self.source())
                .await
                .unwrap();
        }
        reconcile_with_finalizer(&self.client, &self.ctx, self.source())
            .await
            .unwrap();
    }

    fn last_status(&self) -> CatalogSourceStatus {
        self.api.lock().unwrap().statuses.last().cloned().unwrap()
    }

    fn requests(&self) -> usize {
        self.api.lock().unwrap().requests.len()
    }
}

fn condition(status: &CatalogSourceStatus, kind: &str) -> (String, String, String) {
    let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

const GOOD: &str = "assets:\n - {kind: Model, name: granite-3-8b, version: '3.0'}\n - {kind: Model, name: llama-3-8b}\n - {kind: McpServer, name: github}\n";

#[tokio::test]
async fn a_source_becomes_ready_then_a_bad_document_keeps_its_assets() {
    let h = harness(AddressPolicy::default()).await;
    h.put_config_map(GOOD);
    h.create_source(json!({"source": {"configMap": {"name": "catalog"}}}));
    h.reconcile().await;

    assert_eq!(
        h.source().metadata.finalizers.clone().unwrap(),
        vec![FINALIZER.to_string()]
    );
    let status = h.last_status();
    assert_eq!(condition(&status, "Ready").0, "True");
    assert_eq!(status.asset_count, Some(3));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(count(&h.ctx.store, "SELECT count(*) FROM assets").await, 3);
    assert!(
        h.api
            .lock()
            .unwrap()
            .events
            .iter()
            .any(|e| e["reason"] == "Refreshed"
                && e["type"] == "Normal"
                && e["regarding"]["name"] == "models"),
        "a Refreshed event about the source"
    );

    h.put_config_map("assets:\n - {kind: Model, name: [oops\n");
    h.reconcile().await;
    let status = h.last_status();
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("False", "InvalidCatalog")
    );
    let stalled = condition(&status, "Stalled");
    assert_eq!(stalled.0, "True");
    assert!(
        stalled.2.contains("line"),
        "the parse message: {}",
        stalled.2
    );
    assert_eq!(status.asset_count, Some(3), "the last good count stays");
    assert_eq!(count(&h.ctx.store, "SELECT count(*) FROM assets").await, 3);
    assert!(
        h.api
            .lock()
            .unwrap()
            .events
            .iter()
            .any(|e| e["reason"] == "InvalidCatalog" && e["type"] == "Warning"),
        "a Warning event"
    );
}

#[tokio::test]
async fn a_deleted_source_removes_its_assets_then_its_finalizer() {
    let h = harness(AddressPolicy::default()).await;
    h.put_config_map(GOOD);
    h.create_source(json!({"source": {"configMap": {"name": "catalog"}}}));
    h.reconcile().await;
    assert_eq!(count(&h.ctx.store, "SELECT count(*) FROM assets").await, 3);

    h.api.lock().unwrap().sources.get_mut("models").unwrap()["metadata"]["deletionTimestamp"] =
        json!("2026-11-22T10:00:00Z");
    reconcile_with_finalizer(&h.client, &h.ctx, h.source())
        .await
        .unwrap();
    assert_eq!(count(&h.ctx.store, "SELECT count(*) FROM assets").await, 0);
    assert_eq!(
        count(&h.ctx.store, "SELECT count(*) FROM audit_events WHERE verb = 'delete' AND reason = 'CatalogSource models deleted'").await,
        3
    );
    assert_eq!(
        h.source().metadata.finalizers.clone().unwrap_or_default(),
        Vec::<String>::new(),
        "the finalizer is removed once the assets are gone"
    );
}

#[tokio::test]
async fn an_unchanged_url_source_costs_one_304_and_writes_nothing() {
    use axum::{
        http::{HeaderMap, header},
        response::IntoResponse,
        routing::get,
    };
    let not_modified = Arc::new(Mutex::new(0));
    let counter = not_modified.clone();
    let router = axum::Router::new().route(
        "/catalog.yaml",
        get(move |headers: HeaderMap| {
            let counter = counter.clone();
            async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some("\"v1\"")
                {
                    *counter.lock().unwrap() += 1;
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, "\"v1\"")], GOOD).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/catalog.yaml", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });

    let h = harness(AddressPolicy::new(
        vec!["127.0.0.1/32".parse().unwrap()],
        vec![],
    ))
    .await;
    h.create_source(json!({"source": {"url": {"url": url}}, "interval": "1m"}));
    h.reconcile().await;
    assert_eq!(h.last_status().etag.as_deref(), Some("\"v1\""));
    assert_eq!(count(&h.ctx.store, "SELECT count(*) FROM assets").await, 3);
    let audits = count(&h.ctx.store, "SELECT count(*) FROM audit_events").await;

    // The interval comes round (last refresh two minutes ago): a conditional GET, a 304.
    {
        let mut api = h.api.lock().unwrap();
        api.sources.get_mut("models").unwrap()["status"]["lastRefreshTime"] =
            json!("2020-01-01T00:00:00Z");
    }
    let before = h.requests();
    let statuses = h.api.lock().unwrap().statuses.len();
    reconcile_with_finalizer(&h.client, &h.ctx, h.source())
        .await
        .unwrap();
    assert_eq!(*not_modified.lock().unwrap(), 1, "the refresh was a 304");
    assert_eq!(h.requests(), before, "no request to the Kubernetes API");
    assert_eq!(
        h.api.lock().unwrap().statuses.len(),
        statuses,
        "no status write"
    );
    assert_eq!(
        count(&h.ctx.store, "SELECT count(*) FROM audit_events").await,
        audits
    );
    assert_eq!(
        count(
            &h.ctx.store,
            "SELECT count(*) FROM assets WHERE updated_at <> created_at"
        )
        .await,
        0,
        "no asset row touched"
    );
}
