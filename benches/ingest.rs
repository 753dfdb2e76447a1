//! Ingest benchmark against a real PostgreSQL. Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench ingest
//!
//! Uses the server in `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/postgres) to
//! create throwaway databases, which it drops as it goes. `INGEST_ASSETS` overrides 100,000.
//!
//! The fast and the naive ingest alternate for `INGEST_ROUNDS` rounds (default 3) and each figure
//! is the median of its rounds: on a shared 2-core machine one pair of runs says little (the
//! same binary's ratio has ranged from 3.8× to 8.8× in one hour, as the hypervisor's steal
//! came and went, and the naive path's 200,000 round trips suffer from it most). The steal
//! share over the run is printed with the figures.

mod support;
// The acceptance harness's `/proc` readers (std only), so both count CPU the same way. Its
// unit tests run with the harness; in this harness-less target they are compiled out, which
// leaves their `use` unused.
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/curio-acceptance/cpu.rs"]
mod cpu;

use std::{collections::HashMap, time::Instant};

use chrono::Utc;
use curio::{
    catalog::{Asset, AssetKind, AssetRecord, Diff, diff},
    store::{self, Namespace, NewAuditEvent, Store, upsert_statement},
};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use support::BenchDatabase;

// The same allocator as the curio binary, whose refreshes this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn record(i: usize, revision: u32) -> AssetRecord {
    let kind = match i % 10 {
        0 => AssetKind::McpServer,
        1 => AssetKind::Agent,
        _ => AssetKind::Model,
    };
    AssetRecord::from_asset(Asset {
        kind,
        name: format!("family-{}/model-{i:07}", i % 97),
        version: format!("1.{}", i % 5),
        display_name: Some(format!("Model {i}")),
        description: Some(format!(
            "Revision {revision} of a decoder-only model trained for instruction following, \
             code generation and retrieval-augmented answering; entry number {i}."
        )),
        provider: Some(["IBM", "Meta", "Mistral AI", "Google"][i % 4].into()),
        license: Some(["apache-2.0", "llama3.1", "mit"][i % 3].into()),
        tags: vec!["llm".into(), format!("size-{}", i % 7)],
        labels: [
            ("task".to_string(), "text-generation".to_string()),
            ("tier".to_string(), format!("t{}", i % 3)),
        ]
        .into(),
        links: vec![curio::catalog::Link {
            link_type: "weights".into(),
            uri: format!("oci://registry.example.com/m/{i}:1"),
        }],
        metadata: Some(
            serde_json::json!({"contextLength": 8192 * (1 + i % 16), "quantized": i.is_multiple_of(2)}),
        ),
        mcp: None,
        agent: None,
    })
}

fn audit_events(namespace: &Namespace, d: &Diff) -> Vec<NewAuditEvent> {
    let event = |verb: &str, name: &str, before: Option<&str>, after: Option<&str>| NewAuditEvent {
        namespace: namespace.clone(),
        occurred_at: Utc::now(),
        actor: "system:serviceaccount:curio-system:curio".into(),
        actor_groups: vec![],
        verb: verb.into(),
        resource: "models".into(),
        object_name: name.into(),
        object_uid: None,
        before_digest: before.map(str::to_owned),
        after_digest: after.map(str::to_owned),
        reason: Some("benchmark".into()),
        request_id: None,
        client: None,
        details: None,
        idempotency_key: None,
    };
    d.added
        .iter()
        .map(|r| event("create", r.name(), None, Some(r.digest())))
        .chain(d.updated.iter().map(|u| {
            event(
                "update",
                u.record.name(),
                Some(&u.previous_digest),
                Some(u.record.digest()),
            )
        }))
        .chain(
            d.removed
                .iter()
                .map(|r| event("delete", &r.key.name, Some(&r.previous_digest), None)),
        )
        .collect()
}

/// What the controller does per refresh once the document is parsed: read the stored
/// digests, diff, build audit events, apply in one transaction.
async fn refresh(
    store: &Store,
    namespace: &Namespace,
    desired: Vec<AssetRecord>,
) -> anyhow::Result<()> {
    let stored = store.source_digests(namespace, "bench").await?;
    let d = diff(&stored, desired);
    let events = audit_events(namespace, &d);
    store.apply_refresh(namespace, "bench", &d, &events).await?;
    Ok(())
}

/// The same initial ingest, one INSERT per asset and per audit event, in one transaction.
async fn naive_ingest(
    store: &Store,
    namespace: &Namespace,
    desired: Vec<AssetRecord>,
) -> anyhow::Result<()> {
    let d = diff(&HashMap::new(), desired);
    let events = audit_events(namespace, &d);
    let now = Utc::now();
    let txn = store.connection().begin().await?;
    for r in &d.added {
        txn.execute(&upsert_statement(namespace, "bench", &[r], now, 1)?)
            .await?;
    }
    for e in &events {
        txn.execute(&store::audit_insert_statement(std::slice::from_ref(e))?)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// CPU seconds used by this process and by the server process `backend_pid`: the work of an
/// ingest, whatever the hypervisor takes from the machine meanwhile.
fn cpu_seconds(backend_pid: u32) -> Option<f64> {
    let ticks = cpu::process_now(std::process::id())? + cpu::process_now(backend_pid)?;
    Some(ticks as f64 / cpu::TICKS_PER_SECOND)
}

/// Wall and CPU seconds of `work` on `store` (a one-connection store, so the server side is
/// one process).
async fn measured(
    store: &Store,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Figure> {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.backend(),
            "SELECT pg_backend_pid()",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no backend pid"))?;
    let backend_pid: i32 = row.try_get_by_index(0)?;
    let backend_pid = u32::try_from(backend_pid)?;
    let cpu_before = cpu_seconds(backend_pid);
    let start = Instant::now();
    work.await?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cpu_seconds(backend_pid)) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    Ok(Figure { wall, cpu })
}

#[derive(Clone, Copy)]
struct Figure {
    wall: f64,
    cpu: Option<f64>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    support::percentile(&values, 0.5)
}

/// One round's figures: ingest, unchanged, 1% changed, naive ingest.
struct Round {
    ingest: Figure,
    unchanged: Figure,
    changed: Figure,
    naive: Figure,
}

async fn round(n: usize, namespace: &Namespace, tag: &str) -> anyhow::Result<Round> {
    let fast_db = BenchDatabase::create(&format!("curio_bench_{tag}")).await?;
    let store = fast_db.connect(1).await?;
    let records = |revision_of: fn(usize) -> u32| -> Vec<AssetRecord> {
        (0..n).map(|i| record(i, revision_of(i))).collect()
    };
    let desired = records(|_| 0);
    let ingest = measured(&store, refresh(&store, namespace, desired)).await?;
    let desired = records(|_| 0);
    let unchanged = measured(&store, refresh(&store, namespace, desired)).await?;
    let desired = records(|i| if i.is_multiple_of(100) { 1 } else { 0 });
    let changed = measured(&store, refresh(&store, namespace, desired)).await?;
    store.connection().clone().close().await?;
    fast_db.drop_now().await?;

    let naive_db = BenchDatabase::create(&format!("curio_bench_naive_{tag}")).await?;
    let naive_store = naive_db.connect(1).await?;
    let desired = records(|_| 0);
    let naive = measured(&naive_store, naive_ingest(&naive_store, namespace, desired)).await?;
    naive_store.connection().clone().close().await?;
    naive_db.drop_now().await?;
    Ok(Round {
        ingest,
        unchanged,
        changed,
        naive,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("INGEST_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("INGEST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let namespace = Namespace::new("bench")?;
    let pid = std::process::id();
    let machine_before = cpu::machine_now();
    let run_start = Instant::now();
    let mut results = Vec::with_capacity(rounds);
    for r in 0..rounds {
        results.push(round(n, &namespace, &format!("{pid}_{r}")).await?);
    }
    let ratios: Vec<f64> = results
        .iter()
        .map(|r| r.naive.wall / r.ingest.wall)
        .collect();
    let of =
        |figure: fn(&Round) -> Figure| median(results.iter().map(|r| figure(r).wall).collect());

    let k = n / 1000;
    println!("assets: {n} count");
    println!("rounds: {rounds} count");
    println!("ingest_{k}k_s: {:.3} s", of(|r| r.ingest));
    println!("refresh_unchanged_{k}k_s: {:.3} s", of(|r| r.unchanged));
    println!("refresh_1pct_changed_{k}k_s: {:.3} s", of(|r| r.changed));
    println!("ingest_{k}k_naive_s: {:.3} s", of(|r| r.naive));
    println!("ingest_speedup_vs_naive: {:.1} x", median(ratios.clone()));
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.1}")).collect();
    println!("ingest_speedup_each_round: {} x", each.join(" "));
    // The same comparison in CPU seconds (this process and its server process), which the
    // hypervisor's steal does not stretch; waiting on round trips is not in it.
    let cpu: Option<Vec<(f64, f64)>> = results
        .iter()
        .map(|r| Some((r.ingest.cpu?, r.naive.cpu?)))
        .collect();
    if let Some(cpu) = cpu {
        println!(
            "ingest_{k}k_cpu_s: {:.3} s",
            median(cpu.iter().map(|c| c.0).collect())
        );
        println!(
            "ingest_{k}k_naive_cpu_s: {:.3} s",
            median(cpu.iter().map(|c| c.1).collect())
        );
        println!(
            "ingest_cpu_speedup_vs_naive: {:.1} x",
            median(cpu.iter().map(|(fast, naive)| naive / fast).collect())
        );
    }
    if let (Some(before), Some(after)) = (machine_before, cpu::machine_now()) {
        // Steal against all the time the cores had over the run.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let had = run_start.elapsed().as_secs_f64() * cores * cpu::TICKS_PER_SECOND;
        let steal = after.steal.saturating_sub(before.steal) as f64;
        println!("cpu_steal: {:.1} %", 100.0 * steal / had.max(1.0));
    }
    Ok(())
}
