//! Admission webhook benchmark on the real PostgreSQL. Prints one `name: value unit` line per
//! figure.
//!
//!     cargo bench --bench admission
//!
//! The webhook is served over loopback HTTPS with a certificate it issued; the apiserver's
//! part is played by client tasks posting AdmissionReview bodies at fixed concurrency (closed
//! loop). Two workloads: an update that needs no custom verb (plan + one audit INSERT) and an
//! approval (plus one uncached SubjectAccessReview to an in-process review server).

mod support;

use std::{sync::Arc, time::Duration};

use curio::{
    access::authz::SubjectAccessReviewer,
    webhook::{self, Webhook, certs, metrics::AdmissionMetrics, tls},
};
use curio_core::fixtures::{catalog_source, inline_spec};
use serde_json::{Value, json};
use support::{BenchDatabase, Run, allowing_review_server, closed_loop};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 16;
const RUN: Duration = Duration::from_secs(5);

fn source(generation: i64, approved: bool) -> Value {
    let assets: Vec<Value> = (0..50)
        .map(|i| json!({"kind": "Model", "name": format!("granite-{i}"), "version": "1"}))
        .collect();
    catalog_source("team-a", "models")
        .uid("u-1")
        .generation(generation)
        .reason("benchmark")
        .spec(inline_spec(assets.into()))
        .spec_field(
            "curation",
            json!([{"match": "granite-*", "tags": ["ibm"], "approved": approved}]),
        )
        .spec_field("labels", json!({"generation": generation.to_string()}))
        .json()
}

fn review(uid: &str, old: &Value, new: &Value) -> Value {
    let gvk = json!({"group": "curio.dev", "version": "v1alpha1", "kind": "CatalogSource"});
    let gvr = json!({"group": "curio.dev", "version": "v1alpha1", "resource": "catalogsources"});
    json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": "models", "namespace": "team-a", "operation": "UPDATE",
        "userInfo": {"username": "bench", "groups": ["system:authenticated"]},
        "object": new, "oldObject": old, "dryRun": false}})
}

/// AdmissionReviews of one source update (approving it or not), each with its own uid.
async fn reviews(
    http: reqwest::Client,
    url: String,
    label: &'static str,
    approve: bool,
) -> anyhow::Result<Run> {
    let old = Arc::new(source(1, false));
    let new = Arc::new(source(2, approve));
    closed_loop(CONCURRENCY, RUN, move |n| {
        let (http, url) = (http.clone(), url.clone());
        let body = review(&format!("{label}-{n}"), &old, &new);
        async move {
            let answer: Value = http.post(&url).json(&body).send().await?.json().await?;
            anyhow::ensure!(answer["response"]["allowed"] == true, "refused: {answer}");
            Ok(())
        }
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database =
        BenchDatabase::create(&format!("curio_bench_admission_{}", std::process::id())).await?;
    let store = database.connect(16).await?;

    let issued = certs::issue(&["localhost".to_owned()], chrono::Utc::now())?;
    let cert = tls::SwappableCert::new(tls::certified_key(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
    )?);
    let handler = Arc::new(Webhook {
        store: store.clone(),
        authorizer: Arc::new(SubjectAccessReviewer::new(
            allowing_review_server().await?,
            Duration::from_secs(5),
        )),
        cluster: None,
        allow_http: false,
        policies: None,
        metrics: AdmissionMetrics::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let config = cert.server_config()?;
    tokio::spawn(curio::server::serve_tls(
        listener,
        webhook::router(handler),
        config,
        None,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(issued.ca_pem.as_bytes())?)
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()?;
    let endpoint = format!("https://localhost:{port}{}", webhook::VALIDATE_PATH);

    for (label, approve) in [("update", false), ("approve", true)] {
        let run = reviews(http.clone(), endpoint.clone(), label, approve).await?;
        println!("admission_{label}_rps: {:.0} req/s", run.rps);
        println!("admission_{label}_p50_ms: {:.2} ms", run.p50());
        println!("admission_{label}_p99_ms: {:.2} ms", run.p99());
    }
    let rows: i64 = sea_orm::FromQueryResult::find_by_statement(sea_orm::Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT count(*) AS n FROM audit_events",
    ))
    .one(store.connection())
    .await?
    .map(|row: CountRow| row.n)
    .unwrap_or_default();
    println!("audit_rows_written: {rows} count");

    drop(store);
    database.drop_now().await
}

#[derive(sea_orm::FromQueryResult)]
struct CountRow {
    n: i64,
}
