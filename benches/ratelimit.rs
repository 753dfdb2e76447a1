//! Rate-limit isolation on the real PostgreSQL. Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench ratelimit
//!
//! Two tenants of 200 assets; namespace buckets of 200 requests/s (bursts of 200). A victim
//! reads tenant-a at a fixed 100 requests/s: alone, then while the other tenant reads tenant-b
//! at its limit (200 requests/s, all served), then while it floods tenant-b at 2,000
//! requests/s (ten times its limit; most answered 429); three rounds of the three, interleaved,
//! and each figure the median of the rounds'. `ratelimit_victim_p99_increase_pct`
//! is how much the flood raises the victim's p99 over alone, `…_over_at_limit_pct` over the
//! neighbour at its limit (what the excess costs), with the namespace rate limit and the
//! per-namespace concurrency limit on; `rate_only_` with the rate limit only, `unlimited_`
//! with no limits (the baseline).
//! The server has a runtime of its own (two workers); victim and flooder each a thread and a
//! runtime of their own, as separate processes would, and at most 64 connections each. The
//! flooder writes its keep-alive HTTP/1.1 requests by hand, as `wrk` does, so that its own
//! client work takes as little as possible of the CPU the server would otherwise have (a real
//! flooder is on another machine); the victim uses a full HTTP client (reqwest). All of it and
//! PostgreSQL share the machine's two cores, so the figure is, if anything, pessimistic.

mod support;

use std::{sync::Arc, time::Duration};

use curio::{
    access::{
        authn::StaticTokens,
        authz::{StaticRbac, manifests::add_document},
    },
    api::{
        ApiState,
        flow::FlowLimits,
        ratelimit::{RateLimit, RateLimits},
    },
    catalog::{AssetKind, AssetRecord, diff},
    store::Namespace,
};
use curio_core::fixtures::asset;
use serde_json::json;
use support::{BenchDatabase, fixed_rate, percentile, read_response, serve_api};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Each phase's length in a round: 1,000 samples, so a p99 is not a handful of them.
const RUN: Duration = Duration::from_secs(10);
/// Rounds of the three phases; each figure is the median of the rounds'.
const ROUNDS: usize = 3;
const VICTIM_RATE: u32 = 100;
const NAMESPACE_LIMIT: u32 = 200;
const FLOOD_RATE: u32 = 10 * NAMESPACE_LIMIT;
/// Requests of one namespace served at once (`--namespace-concurrency`'s default).
const NAMESPACE_CONCURRENCY: usize = 4;

fn readers() -> anyhow::Result<StaticRbac> {
    let mut rbac = StaticRbac::default();
    add_document(
        &mut rbac,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "reader"},
                "rules": [{"apiGroups": ["curio.dev"], "resources": ["models", "mcpservers", "agents"], "verbs": ["get", "list"]}]}),
    )?;
    add_document(
        &mut rbac,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "readers"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "Group", "name": "readers"}]}),
    )?;
    Ok(rbac)
}

/// One client: its own thread and current-thread runtime, as a separate process would have,
/// so the load generators do not queue behind the server's tasks (or each other's).
fn client_thread<T: Send + 'static>(
    work: impl FnOnce(
        reqwest::Client,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>>>>
    + Send
    + 'static,
) -> std::thread::JoinHandle<anyhow::Result<T>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?;
            work(http).await
        })
    })
}

/// The most connections one client keeps open, as a real client (or an ingress in front of
/// the API) would. Without a cap, a stalled open-loop flooder opens hundreds of connections at
/// once; the kernel's accept queue then overflows and every client, the victim included, waits
/// out TCP's 200 ms retransmission timeout: a connection storm, not an API-level flood.
const MAX_CONNECTIONS: usize = 64;

/// `rate` requests a second for `duration` to `tenant`'s models at `base`, on a client thread,
/// over at most [`MAX_CONNECTIONS`] connections (a request waiting for one counts its wait).
fn load(
    base: String,
    token: &'static str,
    tenant: &'static str,
    rate: u32,
    duration: Duration,
    accept_429: bool,
) -> std::thread::JoinHandle<anyhow::Result<(Vec<f64>, usize)>> {
    client_thread(move |http| {
        Box::pin(async move {
            let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            fixed_rate(rate, duration, move |_| {
                let (http, base, connections) = (http.clone(), base.clone(), connections.clone());
                async move {
                    let _connection = connections.acquire().await?;
                    let response = http
                        .get(format!("{base}/api/v1/namespaces/{tenant}/models?limit=20"))
                        .bearer_auth(token)
                        .send()
                        .await?;
                    let code = response.status().as_u16();
                    response.bytes().await?;
                    anyhow::ensure!(code == 200 || (accept_429 && code == 429), "status {code}");
                    Ok(())
                }
            })
            .await
        })
    })
}

/// The other tenant: `rate` requests a second for `duration` over [`MAX_CONNECTIONS`]
/// keep-alive HTTP/1.1 connections written by hand (one prepared request, responses read by
/// Content-Length), as `wrk` drives a server: a flooder on its own machine spends none of the
/// server's CPU, and here it shares the two cores, so it should spend as little as a client
/// can. Each connection sends at `rate / connections`, waiting for each answer (a connection
/// that falls behind catches up, as an open-loop client would). Returns the answers received.
fn flood(
    base: String,
    token: &'static str,
    tenant: &'static str,
    rate: u32,
    duration: Duration,
) -> std::thread::JoinHandle<anyhow::Result<usize>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let address = base.trim_start_matches("http://").to_owned();
            let request = format!(
                "GET /api/v1/namespaces/{tenant}/models?limit=20 HTTP/1.1\r\nHost: {address}\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            );
            let connections = MAX_CONNECTIONS.min(rate as usize).max(1);
            let period = Duration::from_secs_f64(connections as f64 / f64::from(rate));
            let deadline = tokio::time::Instant::now() + duration;
            let mut tasks = Vec::new();
            for c in 0..connections {
                let (address, request) = (address.clone(), request.clone());
                tasks.push(tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let mut stream = tokio::net::TcpStream::connect(&address).await?;
                    stream.set_nodelay(true)?;
                    // Spread the connections' ticks over one period.
                    let start =
                        tokio::time::Instant::now() + period.mul_f64(c as f64 / connections as f64);
                    let mut ticks = tokio::time::interval_at(start, period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    let mut buffer = Vec::with_capacity(4096);
                    let mut answered = 0usize;
                    loop {
                        ticks.tick().await;
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        stream.write_all(request.as_bytes()).await?;
                        let status = read_response(&mut stream, &mut buffer).await?;
                        anyhow::ensure!(status == 200 || status == 429, "status {status}");
                        answered += 1;
                    }
                    anyhow::Ok(answered)
                }));
            }
            let mut answered = 0;
            for task in tasks {
                answered += task.await??;
            }
            Ok(answered)
        })
    })
}

fn joined<T>(handle: std::thread::JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("a load thread panicked"))?
}

/// The victim's latencies (ms, sorted) in each round: alone, beside the other tenant at its
/// limit, and beside its flood.
#[derive(Default)]
struct Measured {
    alone: Vec<Vec<f64>>,
    at_limit: Vec<Vec<f64>>,
    flooded: Vec<Vec<f64>>,
    flood_answered: usize,
    victim_failed: usize,
}

/// The median over rounds of each round's percentile `p`: one noisy round does not decide.
fn median_of(rounds: &[Vec<f64>], p: f64) -> f64 {
    let mut each: Vec<f64> = rounds.iter().map(|r| percentile(r, p)).collect();
    each.sort_by(|a, b| a.total_cmp(b));
    each.get(each.len() / 2).copied().unwrap_or(f64::NAN)
}

fn increase_pct(from: &[Vec<f64>], to: &[Vec<f64>]) -> f64 {
    let from = median_of(from, 0.99);
    100.0 * (median_of(to, 0.99) - from) / from
}

fn measure(base: &str) -> anyhow::Result<Measured> {
    let victim = |d| {
        load(
            base.to_owned(),
            "victim-token",
            "tenant-a",
            VICTIM_RATE,
            d,
            false,
        )
    };
    let other = |rate, d| flood(base.to_owned(), "flood-token", "tenant-b", rate, d);
    // Warm up both tenants together: the pool's connections opened and their statements
    // prepared, the authorization path, both namespaces' pages in PostgreSQL's cache. (Without
    // it the first server measured shows cold-connection outliers in the victim's p99.)
    let warm_up = Duration::from_secs(3);
    let neighbour = other(NAMESPACE_LIMIT, warm_up);
    joined(victim(warm_up))?;
    joined(neighbour)?;
    let mut measured = Measured::default();
    // Rounds of the three phases, interleaved, so a slow spell of the machine falls on one
    // round of each rather than on one phase.
    for _ in 0..ROUNDS {
        let (alone, failed) = joined(victim(RUN))?;
        measured.alone.push(alone);
        measured.victim_failed += failed;
        let neighbour = other(NAMESPACE_LIMIT, RUN);
        let (at_limit, failed) = joined(victim(RUN))?;
        joined(neighbour)?;
        measured.at_limit.push(at_limit);
        measured.victim_failed += failed;
        let flood = other(FLOOD_RATE, RUN);
        let (flooded, failed) = joined(victim(RUN))?;
        measured.flood_answered += joined(flood)?;
        measured.flooded.push(flooded);
        measured.victim_failed += failed;
    }
    Ok(measured)
}

/// The API three times on one store, in one server runtime (two workers, as `curio api` on
/// this machine): with the namespace rate limit and the per-namespace concurrency limit (the
/// defaults' shape), with the rate limit only, and with neither (the baseline).
struct Servers {
    runtime: tokio::runtime::Runtime,
    limited: String,
    rate_only: String,
    unlimited: String,
}

fn servers(database: &BenchDatabase) -> anyhow::Result<Servers> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (limited, rate_only, unlimited) = runtime.block_on(async {
        let store = database.connect(16).await?;
        let state = ApiState::new(
            store,
            Arc::new(StaticTokens::parse(
                "victim-token,victim,1,\"readers\"\nflood-token,flood,2,\"readers\"\n",
            )?),
            Arc::new(readers()?),
        );
        let unlimited = serve_api(state.clone()).await?;
        let mut rate_only = state;
        rate_only.rate_limits = Arc::new(RateLimits::new(
            None,
            RateLimit::new(NAMESPACE_LIMIT, NAMESPACE_LIMIT),
        ));
        let mut limited = rate_only.clone();
        limited.flows = Arc::new(FlowLimits::new(
            NAMESPACE_CONCURRENCY,
            Duration::from_secs(10),
        ));
        anyhow::Ok((
            serve_api(limited).await?,
            serve_api(rate_only).await?,
            unlimited,
        ))
    })?;
    Ok(Servers {
        runtime,
        limited,
        rate_only,
        unlimited,
    })
}

fn report(prefix: &str, measured: &Measured) {
    for (name, rounds) in [
        ("alone", &measured.alone),
        ("at_limit", &measured.at_limit),
        ("flooded", &measured.flooded),
    ] {
        println!(
            "{prefix}victim_p50_{name}_ms: {:.2} ms",
            median_of(rounds, 0.5)
        );
        println!(
            "{prefix}victim_p99_{name}_ms: {:.2} ms",
            median_of(rounds, 0.99)
        );
        let each: Vec<String> = rounds
            .iter()
            .map(|r| format!("{:.2}", percentile(r, 0.99)))
            .collect();
        println!("{prefix}victim_p99_{name}_rounds_ms: {}", each.join(" "));
    }
    println!("{prefix}flood_answered: {} count", measured.flood_answered);
    println!("{prefix}victim_failed: {} count", measured.victim_failed);
    println!(
        "{prefix}victim_p99_increase_pct: {:.0} %",
        increase_pct(&measured.alone, &measured.flooded)
    );
    println!(
        "{prefix}victim_p99_increase_over_at_limit_pct: {:.0} %",
        increase_pct(&measured.at_limit, &measured.flooded)
    );
}

fn main() -> anyhow::Result<()> {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let database = setup.block_on(async {
        let database =
            BenchDatabase::create(&format!("curio_bench_ratelimit_{}", std::process::id())).await?;
        let store = database.connect(1).await?;
        for tenant in ["tenant-a", "tenant-b"] {
            let records = (0..200)
                .map(|i| {
                    AssetRecord::from_asset(asset(AssetKind::Model, &format!("m-{i:03}"), "1"))
                })
                .collect();
            let d = diff(&Default::default(), records);
            store
                .apply_refresh(&Namespace::new(tenant)?, "bench", &d, &[])
                .await?;
        }
        anyhow::Ok(database)
    })?;

    let servers = servers(&database)?;
    let limited = measure(&servers.limited)?;
    let rate_only = measure(&servers.rate_only)?;
    let baseline = measure(&servers.unlimited)?;
    drop(servers.runtime);

    println!("victim_rps: {VICTIM_RATE} req/s");
    println!("flood_rps: {FLOOD_RATE} req/s");
    println!("namespace_limit_rps: {NAMESPACE_LIMIT} req/s");
    println!("namespace_concurrency: {NAMESPACE_CONCURRENCY} count");
    report("ratelimit_", &limited);
    report("rate_only_", &rate_only);
    report("unlimited_", &baseline);
    setup.block_on(database.drop_now())
}
