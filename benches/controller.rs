//! The controller at scale against a real Kubernetes API server (the one in `KUBECONFIG`, with
//! Curio's CRDs installed) and the real PostgreSQL. Prints one `name: value unit` line per
//! figure, or why it was skipped.
//!
//!     KUBECONFIG=… cargo bench --bench controller
//!
//! 1,000 CatalogSources of 50 inline assets each, over 100 new namespaces, are created first;
//! then one `curio controller` process starts (cluster-wide, as a Helm install runs it).
//! `controller_1000_sources_ready_s`: from its start until every source is `Ready` at its
//! generation with its 50 assets, as one watch of the sources sees it. `controller_peak_rss_mib`: the process's peak resident
//! memory (`VmHWM`) by then. Afterwards the sources are deleted (the controller removes their
//! finalizers and assets) and the database is dropped; the namespaces stay (a bare API server
//! has no namespace controller to finish deleting them). `CURIO_BIN` names another `curio`
//! binary to measure (an earlier commit's, as a baseline).

mod support;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use anyhow::Context;
use curio::crd::CatalogSource;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use support::BenchDatabase;

const NAMESPACES: usize = 100;
const SOURCES_PER_NAMESPACE: usize = 10;
const ASSETS_PER_SOURCE: usize = 50;
const DEADLINE: Duration = Duration::from_secs(600);

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/<pid>/status")
}

fn source(name: &str, run: &str, s: usize) -> anyhow::Result<CatalogSource> {
    let assets: Vec<_> = (0..ASSETS_PER_SOURCE)
        .map(|a| {
            json!({
                "kind": "Model",
                "name": format!("model-{s}-{a}"),
                "version": "1",
                "displayName": format!("Model {s}-{a}"),
                "description": "An instruction-tuned model for code and chat, with a long context window and tool use.",
                "provider": "Example",
                "license": "apache-2.0",
                "tags": ["llm", "chat"],
                "labels": {"task": "chat"},
            })
        })
        .collect();
    Ok(serde_json::from_value(json!({
        "apiVersion": "curio.dev/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": name, "labels": {"curio-bench": run}},
        "spec": {"source": {"inline": {"assets": assets}}},
    }))?)
}

fn is_ready(source: &CatalogSource) -> bool {
    let Some(status) = &source.status else {
        return false;
    };
    status.observed_generation == source.metadata.generation
        && status.asset_count == Some(ASSETS_PER_SOURCE as i64)
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn key(source: &CatalogSource) -> String {
    format!(
        "{}/{}",
        source.metadata.namespace.as_deref().unwrap_or_default(),
        source.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Adds `source` to the ready set, or takes it out.
fn note(ready: &mut HashSet<String>, source: &CatalogSource) {
    if is_ready(source) {
        ready.insert(key(source));
    } else {
        ready.remove(&key(source));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("controller_1000_sources: skipped (KUBECONFIG is not set; see e2e/README.md)");
        return Ok(());
    }
    let client = Client::try_default().await?;
    let all: Api<CatalogSource> = Api::all(client.clone());
    if let Err(e) = all.list(&ListParams::default().limit(1)).await {
        println!("controller_1000_sources: skipped (no CatalogSource API in the cluster: {e})");
        return Ok(());
    }
    let run = format!("cb{}", std::process::id());
    let database = BenchDatabase::create(&format!("curio_bench_controller_{run}")).await?;
    let namespaces: Vec<String> = (0..NAMESPACES).map(|i| format!("{run}-{i:03}")).collect();
    let namespace_api: Api<Namespace> = Api::all(client.clone());
    for name in &namespaces {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        namespace_api.create(&PostParams::default(), &ns).await?;
    }
    let creating = Instant::now();
    let sources: Vec<(String, CatalogSource)> = namespaces
        .iter()
        .flat_map(|ns| (0..SOURCES_PER_NAMESPACE).map(move |s| (ns.clone(), s)))
        .map(|(ns, s)| Ok((ns, source(&format!("source-{s:02}"), &run, s)?)))
        .collect::<anyhow::Result<_>>()?;
    futures::stream::iter(sources)
        .map(|(ns, source)| {
            let api: Api<CatalogSource> = Api::namespaced(client.clone(), &ns);
            async move { api.create(&PostParams::default(), &source).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    println!(
        "controller_sources_created_s: {:.1} s",
        creating.elapsed().as_secs_f64()
    );

    // Readiness is followed through one watch (a list, then each change), not by listing
    // every source again and again: a list of 1,000 whole sources is ~20 MB of JSON, and
    // polling it kept the API server busier than the controller under test.
    let selector = format!("curio-bench={run}");
    let mut events = watcher(all.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut ready: HashSet<String> = HashSet::new();
    loop {
        match events.try_next().await? {
            Some(watcher::Event::InitDone) => break,
            Some(watcher::Event::InitApply(source)) => note(&mut ready, &source),
            Some(_) => {}
            None => anyhow::bail!("the watch of the sources ended"),
        }
    }

    let started = Instant::now();
    let mut child = std::process::Command::new(support::curio_binary())
        .args(["controller", "--database-url", &database.url])
        .args(["--lease-namespace", &namespaces[0], "--replica", "bench"])
        .args(["--controller-identity", "system:serviceaccount:curio:curio"])
        .args(["--metrics-address", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting curio controller")?;
    let pid = child.id();
    let expected = NAMESPACES * SOURCES_PER_NAMESPACE;
    let outcome = loop {
        if ready.len() == expected {
            break Ok((started.elapsed(), peak_rss_kib(pid)?));
        }
        tokio::select! {
            event = events.try_next() => match event? {
                Some(watcher::Event::Init) => ready.clear(),
                Some(watcher::Event::Apply(source) | watcher::Event::InitApply(source)) => {
                    note(&mut ready, &source);
                }
                Some(watcher::Event::Delete(source)) => {
                    ready.remove(&key(&source));
                }
                Some(watcher::Event::InitDone) => {}
                None => break Err(anyhow::anyhow!("the watch of the sources ended")),
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if started.elapsed() > DEADLINE {
                    break Err(anyhow::anyhow!(
                        "{} of {expected} sources Ready after {DEADLINE:?}",
                        ready.len()
                    ));
                }
                if let Some(status) = child.try_wait()? {
                    break Err(anyhow::anyhow!("the controller exited: {status}"));
                }
            }
        }
    };
    drop(events);

    // Clean up while the controller runs: it removes the finalizers (and the assets).
    for ns in &namespaces {
        let api: Api<CatalogSource> = Api::namespaced(client.clone(), ns);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
    }
    let cleaning = Instant::now();
    let selector = ListParams::default().labels(&selector);
    while !all.list_metadata(&selector).await?.items.is_empty() && cleaning.elapsed() < DEADLINE {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    database.drop_now().await?;

    let (ready, peak) = outcome?;
    println!("controller_sources: {expected} count");
    println!(
        "controller_1000_sources_ready_s: {:.1} s",
        ready.as_secs_f64()
    );
    println!("controller_peak_rss_mib: {:.1} MiB", peak as f64 / 1024.0);
    Ok(())
}
