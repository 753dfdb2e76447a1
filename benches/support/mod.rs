//! What the benchmarks share: a throwaway database on the server in `DATABASE_URL`, an
//! in-process SubjectAccessReview server that allows everything, the closed-loop load driver
//! and percentiles. Each bench is its own crate, so each includes this module and uses a part.
#![allow(dead_code)]

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{Json, Router, routing::post};
use curio::store::{self, Store, StoreOptions};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

/// A database made for one run and dropped by [`BenchDatabase::drop_now`].
pub struct BenchDatabase {
    admin: DatabaseConnection,
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    /// Creates (after dropping any leftover of the same name) and migrates `name` on the
    /// server of `DATABASE_URL` (default: the local PostgreSQL).
    pub async fn create(name: &str) -> anyhow::Result<Self> {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .context("DATABASE_URL has no database")?;
        let admin = Database::connect(admin_url.as_str())
            .await
            .context("connecting to DATABASE_URL")?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let url = format!("{base}/{name}");
        store::migrate(&url).await?;
        Ok(Self {
            admin,
            name: name.to_owned(),
            url,
        })
    }

    pub async fn connect(&self, max_connections: u32) -> anyhow::Result<Store> {
        Ok(store::connect_with(
            &self.url,
            &StoreOptions {
                max_connections,
                ..Default::default()
            },
        )
        .await?)
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// A review server that allows everything, so what is measured is the path to it, not its
/// answers.
pub async fn allowing_review_server() -> anyhow::Result<kube::Client> {
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

/// The `p` quantile (0..=1) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Throughput and sorted latencies of one run.
pub struct Run {
    pub rps: f64,
    pub latencies_ms: Vec<f64>,
}

impl Run {
    pub fn p50(&self) -> f64 {
        percentile(&self.latencies_ms, 0.50)
    }

    pub fn p99(&self) -> f64 {
        percentile(&self.latencies_ms, 0.99)
    }
}

/// Closed loop: `concurrency` workers for `duration`, each sending its next request (`make`,
/// given the request's number) when the last returns.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    make: F,
) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = w;
                while started.elapsed() < duration {
                    let t = Instant::now();
                    make(n).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    n += concurrency;
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

/// Open loop: `make(n)` started `rate` times a second for `duration`, whatever the answers'
/// latency; the latencies (ms, sorted) of those that succeeded, and how many failed.
pub async fn fixed_rate<F, Fut>(
    rate: u32,
    duration: Duration,
    make: F,
) -> anyhow::Result<(Vec<f64>, usize)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut n = 0;
    while started.elapsed() < duration {
        ticker.tick().await;
        let request = make(n);
        n += 1;
        pending.push(tokio::spawn(async move {
            let t = Instant::now();
            request.await.map(|()| t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    for p in pending {
        match p.await? {
            Ok(ms) => latencies.push(ms),
            Err(_) => failed += 1,
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok((latencies, failed))
}

/// The read API on a loopback port; its base URL.
pub async fn serve_api(state: curio::api::ApiState) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = curio::api::router(state);
    tokio::spawn(async move {
        curio::server::serve_http(listener, router, std::future::pending())
            .await
            .ok()
    });
    Ok(base)
}
