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

/// Resident memory of process `pid`, in KiB.
pub fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/<pid>/status")
}

/// A `curio api` process, killed when dropped.
pub struct Api {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The bench's one user: token `bench-token`, in group `readers`, which may get, list and
/// watch every asset kind in every namespace (both API groups).
const BENCH_RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n\
rules: [{apiGroups: [curio.dev, catalog.curio.dev], resources: [models, mcpservers, agents], verbs: [get, list, watch]}]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: readers}\n\
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\n\
subjects: [{kind: Group, name: readers}]\n";

/// The `curio` binary to measure: `CURIO_BIN` (another build, such as an earlier commit's, for a
/// baseline measured in the same run), else this build's.
pub fn curio_binary() -> String {
    std::env::var("CURIO_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_curio").into())
}

/// Starts `curio api` on `url` with a token file and RBAC manifests written to `dir`, the
/// per-user and per-namespace rate limits off (one user makes all the load here), and
/// `extra` arguments; waits until it is ready.
pub async fn start_api(url: &str, dir: &std::path::Path, extra: &[&str]) -> anyhow::Result<Api> {
    std::fs::write(dir.join("tokens.csv"), "bench-token,bench,1,\"readers\"\n")?;
    let rbac = dir.join("rbac");
    std::fs::create_dir_all(&rbac)?;
    std::fs::write(rbac.join("rbac.yaml"), BENCH_RBAC)?;
    let port = free_port()?;
    let child = std::process::Command::new(curio_binary())
        .args(["api", "--database-url", url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--metrics-address", "127.0.0.1:0"])
        .args([
            "--user-requests-per-second",
            "0",
            "--namespace-requests-per-second",
            "0",
        ])
        .arg("--token-file")
        .arg(dir.join("tokens.csv"))
        .arg("--rbac-manifests")
        .arg(&rbac)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting curio api")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(Api { child, base });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("curio api did not become ready")
}

/// Reads one whole HTTP/1.1 response (head, then Content-Length bytes of body) from
/// `stream`, keeping what follows it in `buffer`; its status code.
pub async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])?;
            let mut length = None;
            for line in head.lines().skip(1) {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                }
                anyhow::ensure!(
                    !name.eq_ignore_ascii_case("transfer-encoding"),
                    "a chunked answer: this client reads Content-Length bodies only"
                );
            }
            let status: u16 = head.get(9..12).unwrap_or_default().parse()?;
            let length = length.unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                buffer.drain(..end + 4 + length);
                return Ok(status);
            }
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Closed loop as `wrk` drives a server: `connections` keep-alive HTTP/1.1 connections from one
/// thread with a current-thread runtime, each sending its next request (the paths in turn,
/// prepared once, with the bench token) when the last answer is in, for `duration`. The client
/// shares the cores with the server, so it spends as little as a client can. Every answer must
/// be 200.
pub fn http_load(
    base: &str,
    paths: Vec<String>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let address = base.trim_start_matches("http://").to_owned();
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        paths
            .iter()
            .map(|path| {
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer bench-token\r\n\r\n"
                )
                .into_bytes()
            })
            .collect(),
    );
    let thread = std::thread::spawn(move || -> anyhow::Result<Run> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let started = Instant::now();
            let tasks: Vec<_> = (0..connections)
                .map(|c| {
                    let (address, requests) = (address.clone(), requests.clone());
                    tokio::spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let mut stream = tokio::net::TcpStream::connect(&address).await?;
                        stream.set_nodelay(true)?;
                        let mut buffer = Vec::with_capacity(65536);
                        let mut latencies = Vec::new();
                        let mut n = c;
                        while started.elapsed() < duration {
                            let request = &requests[n % requests.len()];
                            let t = Instant::now();
                            stream.write_all(request).await?;
                            let status = read_response(&mut stream, &mut buffer).await?;
                            anyhow::ensure!(status == 200, "status {status}");
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            n += connections;
                        }
                        anyhow::Ok(latencies)
                    })
                })
                .collect();
            let mut latencies_ms = Vec::new();
            for task in tasks {
                latencies_ms.extend(task.await??);
            }
            let elapsed = started.elapsed().as_secs_f64();
            latencies_ms.sort_by(|a, b| a.total_cmp(b));
            Ok(Run {
                rps: latencies_ms.len() as f64 / elapsed,
                latencies_ms,
            })
        })
    });
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}
