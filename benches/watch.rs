//! Watches of the aggregated API against a separate `curio api` process on the real
//! PostgreSQL, fed by this process's writes through LISTEN/NOTIFY (the controller writes, the
//! API serves). Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench watch
//!
//! `watch_event_latency_p99_ms`: 100 watchers across 10 namespaces (10 each); three rounds of
//! 60 writes, one namespace at a time, 50 ms apart, each adding one model; from the write's
//! commit (as the writer sees it) to each of that namespace's 10 watchers reading the event; the
//! median of the rounds' p99. `watch_idle_memory_kib_per_stream`: the API process's resident memory
//! growth from 1,000 to 2,000 open watches that receive nothing, divided by 1,000 (the first
//! thousand warm the allocator; client connections are in this process, not counted), over
//! HTTP/2 with 100 streams a connection (how the aggregation layer connects); `…_http1` the
//! same with a connection per stream.

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use curio::{
    catalog::{AssetKind, AssetRecord, diff},
    store::{Namespace, Store},
};
use curio_core::fixtures::asset;
use support::{BenchDatabase, percentile, resident_kib, start_api};

const NAMESPACES: usize = 10;
const WATCHERS_PER_NAMESPACE: usize = 10;
const WRITES: usize = 60;
const ROUNDS: usize = 3;
const IDLE_STREAMS: usize = 1_000;
const STREAMS_PER_H2_CONNECTION: usize = 100;

fn namespace(i: usize) -> Namespace {
    Namespace::new(format!("bench-{i}")).expect("a valid namespace")
}

async fn write(store: &Store, ns: &Namespace, names: &[String]) -> anyhow::Result<()> {
    let desired: Vec<AssetRecord> = names
        .iter()
        .map(|n| AssetRecord::from_asset(asset(AssetKind::Model, n, "1")))
        .collect();
    let stored = store.source_digests(ns, "bench").await?;
    let changes = diff(&stored, desired);
    store.apply_refresh(ns, "bench", &changes, &[]).await?;
    Ok(())
}

/// Opens a watch and hands each event's object name to `seen` as it arrives.
async fn watch(
    http: reqwest::Client,
    url: String,
    seen: impl Fn(&str) + Send + 'static,
) -> anyhow::Result<()> {
    let mut response = http.get(&url).bearer_auth("bench-token").send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    tokio::spawn(async move {
        let mut buffer = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.extend_from_slice(&chunk);
            while let Some(at) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=at).collect();
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line)
                    && let Some(name) = event["object"]["metadata"]["name"].as_str()
                {
                    seen(name);
                }
            }
        }
    });
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = BenchDatabase::create("curio_bench_watch").await?;
    let store = db.connect(8).await?;
    let mut catalogs: Vec<Vec<String>> = Vec::new();
    for i in 0..NAMESPACES {
        let names: Vec<String> = (0..10).map(|j| format!("seed-{i}-{j}")).collect();
        write(&store, &namespace(i), &names).await?;
        catalogs.push(names);
    }
    let dir = tempfile::tempdir()?;
    let api = start_api(&db.url, dir.path(), &[]).await?;
    let head = store.feed_head().await?.revision;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;

    // When each write started, by the object name it adds; and the samples.
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let samples: Arc<Mutex<Vec<f64>>> = Arc::default();
    for i in 0..NAMESPACES {
        for _ in 0..WATCHERS_PER_NAMESPACE {
            let (started, samples) = (started.clone(), samples.clone());
            let url = format!(
                "{}/apis/catalog.curio.dev/v1alpha1/namespaces/bench-{i}/models?watch=true&resourceVersion={head}",
                api.base
            );
            watch(http.clone(), url, move |name| {
                let now = Instant::now();
                let at = started.lock().map(|s| s.get(name).copied()).ok().flatten();
                if let Ok(mut samples) = samples.lock() {
                    // Not yet marked: the event beat the commit's acknowledgement.
                    let ms = at.map_or(0.0, |at| {
                        now.saturating_duration_since(at).as_secs_f64() * 1000.0
                    });
                    if name.starts_with("added-") {
                        samples.push(ms);
                    }
                }
            })
            .await?;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Rounds of writes; each figure is the median of the rounds' (one slow fsync in a round
    // delays ten samples, more than a percent of them).
    let mut rounds: Vec<Vec<f64>> = Vec::new();
    for round in 0..ROUNDS {
        if let Ok(mut samples) = samples.lock() {
            samples.clear();
        }
        for w in 0..WRITES {
            let i = w % NAMESPACES;
            let name = format!("added-{round}-{w}");
            catalogs[i].push(name.clone());
            write(&store, &namespace(i), &catalogs[i]).await?;
            // Committed: the clock starts (an event that beat the commit's acknowledgement
            // here counts as zero).
            if let Ok(mut started) = started.lock() {
                started.insert(format!("{name}.v1.bench"), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut latencies = samples.lock().map(|s| s.clone()).unwrap_or_default();
        latencies.sort_by(f64::total_cmp);
        rounds.push(latencies);
    }
    let expected = WRITES * WATCHERS_PER_NAMESPACE;
    let received: Vec<String> = rounds.iter().map(|r| r.len().to_string()).collect();
    println!(
        "watch_events_received: {} of {expected} per round",
        received.join(" ")
    );
    let median = |p: f64| {
        let mut each: Vec<f64> = rounds.iter().map(|r| percentile(r, p)).collect();
        each.sort_by(f64::total_cmp);
        (each[each.len() / 2], each)
    };
    let (p50, _) = median(0.5);
    let (p99, each) = median(0.99);
    println!("watch_event_latency_p50_ms: {p50:.1} ms");
    println!("watch_event_latency_p99_ms: {p99:.1} ms");
    let each: Vec<String> = each.iter().map(|v| format!("{v:.1}")).collect();
    println!("watch_event_latency_p99_rounds_ms: {}", each.join(" "));

    // Idle streams: what each costs the API process, over HTTP/2 (many streams on one
    // connection, as the aggregation layer and client-go connect) and over HTTP/1.1 (a
    // connection each). A first batch of each is opened and left open unmeasured, so what
    // opening one allocates and frees (its queries' buffers, the allocator's growth) is in
    // place; the second batch's growth is what streams keep.
    let pid = api.child.id();
    let head = store.feed_head().await?.revision;
    let h2: Vec<reqwest::Client> = (0..2 * IDLE_STREAMS / STREAMS_PER_H2_CONNECTION)
        .map(|_| reqwest::Client::builder().http2_prior_knowledge().build())
        .collect::<Result<_, _>>()?;
    let open_idle = |batch: usize, http2: bool| {
        let (http, h2, base) = (http.clone(), h2.clone(), api.base.clone());
        async move {
            for k in 0..IDLE_STREAMS {
                let n = batch * IDLE_STREAMS + k;
                let url = format!(
                    "{base}/apis/catalog.curio.dev/v1alpha1/namespaces/idle-{}/models?watch=true&resourceVersion={head}",
                    n % 50
                );
                let client = if http2 {
                    h2[n / STREAMS_PER_H2_CONNECTION].clone()
                } else {
                    http.clone()
                };
                watch(client, url, |_| {}).await?;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            anyhow::Ok(())
        }
    };
    for (name, http2, first) in [("", true, 0), ("_http1", false, 2)] {
        open_idle(first, http2).await?;
        let before = resident_kib(pid)?;
        open_idle(first + 1, http2).await?;
        let after = resident_kib(pid)?;
        println!(
            "watch_idle_memory_kib_per_stream{name}: {:.1} KiB ({before} KiB before, {after} KiB after {IDLE_STREAMS} more streams, {})",
            (after.saturating_sub(before)) as f64 / IDLE_STREAMS as f64,
            if http2 {
                "HTTP/2, 100 streams a connection"
            } else {
                "HTTP/1.1, a connection each"
            }
        );
    }
    drop(api);
    db.drop_now().await?;
    Ok(())
}
