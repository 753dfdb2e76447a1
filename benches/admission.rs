//! Admission webhook benchmark on the real PostgreSQL. Prints one `name: value unit` line per
//! figure.
//!
//!     cargo bench --bench admission
//!
//! The webhook is served over loopback HTTPS with a certificate it issued; the apiserver's
//! part is played by client tasks posting AdmissionReview bodies at fixed concurrency (closed
//! loop). Two workloads: an update that needs no custom verb (plan + one audit INSERT) and an
//! approval (plus one uncached SubjectAccessReview to an in-process review server).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{Json, Router, routing::post};
use curio::{
    access::authz::SubjectAccessReviewer,
    store,
    webhook::metrics::AdmissionMetrics,
    webhook::{self, Webhook, certs, tls},
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 16;
const RUN: Duration = Duration::from_secs(5);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A review server that allows everything (the cost measured is the round trip).
async fn review_server() -> anyhow::Result<kube::Client> {
    let router = Router::new().route(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        post(|Json(mut body): Json<Value>| async move {
            body["status"] = json!({"allowed": true});
            (axum::http::StatusCode::CREATED, Json(body))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    Ok(kube::Client::try_from(kube::Config::new(url.parse()?))?)
}

fn source(generation: i64, approved: bool) -> Value {
    json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "models", "namespace": "team-a", "uid": "u-1", "generation": generation,
                     "annotations": {"curio.dev/change-reason": "benchmark"}},
        "spec": {"source": {"inline": {"assets": (0..50).map(|i| json!({"kind": "Model", "name": format!("granite-{i}"), "version": "1"})).collect::<Vec<_>>()}},
                 "curation": [{"match": "granite-*", "tags": ["ibm"], "approved": approved}],
                 "labels": {"generation": generation.to_string()}}
    })
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

struct Run {
    rps: f64,
    latencies_ms: Vec<f64>,
}

async fn closed_loop(
    http: reqwest::Client,
    url: String,
    label: &'static str,
    approve: bool,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let old = Arc::new(source(1, false));
    let new = Arc::new(source(2, approve));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let (http, url, old, new) = (http.clone(), url.clone(), old.clone(), new.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = w;
                while started.elapsed() < RUN {
                    let body = review(&format!("{label}-{n}"), &old, &new);
                    let t = Instant::now();
                    let answer: Value = http.post(&url).json(&body).send().await?.json().await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    anyhow::ensure!(answer["response"]["allowed"] == true, "refused: {answer}");
                    n += CONCURRENCY;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for worker in workers {
        latencies_ms.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(Run {
        rps: latencies_ms.len() as f64 / elapsed,
        latencies_ms,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .context("DATABASE_URL has no database")?;
    let db_name = format!("curio_bench_admission_{}", std::process::id());
    let conn = Database::connect(admin.as_str()).await?;
    conn.execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
        .await?;
    let url = format!("{base}/{db_name}");
    store::migrate(&url).await?;
    let store = store::connect_with(
        &url,
        &store::StoreOptions {
            max_connections: 16,
            ..Default::default()
        },
    )
    .await?;

    let issued = certs::issue(&["localhost".to_owned()], chrono::Utc::now())?;
    let cert = tls::SwappableCert::new(tls::certified_key(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
    )?);
    let handler = Arc::new(Webhook {
        store: store.clone(),
        authorizer: Arc::new(SubjectAccessReviewer::new(
            review_server().await?,
            Duration::from_secs(5),
        )),
        cluster: None,
        allow_http: false,
        metrics: AdmissionMetrics::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let config = cert.server_config()?;
    tokio::spawn(curio::server::serve_tls(
        listener,
        webhook::router(handler),
        config,
        Vec::new(),
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(issued.ca_pem.as_bytes())?)
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()?;
    let endpoint = format!("https://localhost:{port}{}", webhook::VALIDATE_PATH);

    for (label, approve) in [("update", false), ("approve", true)] {
        let run = closed_loop(http.clone(), endpoint.clone(), label, approve).await?;
        println!("admission_{label}_rps: {:.0} req/s", run.rps);
        println!(
            "admission_{label}_p50_ms: {:.2} ms",
            percentile(&run.latencies_ms, 0.50)
        );
        println!(
            "admission_{label}_p99_ms: {:.2} ms",
            percentile(&run.latencies_ms, 0.99)
        );
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
    conn.execute_unprepared(&format!(
        "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
    ))
    .await?;
    Ok(())
}

#[derive(sea_orm::FromQueryResult)]
struct CountRow {
    n: i64,
}
