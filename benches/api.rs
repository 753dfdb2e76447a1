//! The read API as its users meet it: a separate `curio api` process on the real PostgreSQL,
//! over loopback HTTP, with a token file and RBAC. Prints one `name: value unit` line per
//! figure.
//!
//!     cargo bench --bench api
//!
//! One namespace of 100,000 assets and 99 of 1,000. Two `curio api` processes on that store:
//! one with the response cache (the default), one with `--response-cache-bytes 0` (`_nocache`
//! lines). Load comes from 32 keep-alive connections written by hand from one thread of this
//! process (as `wrk -t1 -c32` drives a server), closed loop, on the same two cores as the
//! server and PostgreSQL. Each request kind runs against the uncached server, then the cached
//! one, `API_BENCH_SECONDS` (default 10) each:
//! - list: `GET /api/v1/namespaces/{ns}/assets?limit=50` over all 100 namespaces;
//! - get: `GET /api/v1/namespaces/{ns}/models/{name}` over 250 models in each small namespace;
//! - search: `q=asset-1NNN` in the large namespace (10 of its 100,000 assets match each);
//! - facets: every facet field of the large namespace.
//!
//! `raw_sql_list_rps` runs the list route's transaction and SQL straight through the same
//! driver (sqlx under sea-orm) at the same concurrency, so the API's overhead is a measured
//! ratio (`api_list_nocache_vs_raw_sql`). `CURIO_BIN` names another `curio` binary to serve
//! (an earlier commit's, as a baseline).

mod support;

use std::time::{Duration, Instant};

use curio::{
    catalog::{Asset, AssetKind, AssetRecord, diff},
    store::Namespace,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::json;
use support::{BenchDatabase, Run, closed_loop, http_load, resident_kib, start_api};

// The same allocator as the curio binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SMALL_TENANTS: usize = 99;
const PER_TENANT: usize = 1_000;
/// The one large tenant.
const BIG: &str = "tenant-big";
const BIG_ASSETS: usize = 100_000;
const CONNECTIONS: usize = 32;

fn tenant(i: usize) -> String {
    format!("tenant-{i:03}")
}

fn record(i: usize) -> AssetRecord {
    let kind = [
        AssetKind::Model,
        AssetKind::Model,
        AssetKind::McpServer,
        AssetKind::Agent,
    ][i % 4];
    AssetRecord::from_asset(Asset {
        kind,
        name: format!("asset-{i:05}"),
        version: "1".into(),
        display_name: Some(format!("Asset {i}")),
        description: Some(
            "An instruction-tuned model for code and chat, with a long context window.".into(),
        ),
        provider: Some(["Example", "Acme", "Initech"][i % 3].into()),
        license: Some(["apache-2.0", "mit"][i % 2].into()),
        tags: vec!["llm".into(), format!("family-{}", i % 20)],
        labels: [("task".to_string(), "chat".to_string())].into(),
        links: vec![],
        metadata: Some(json!({"contextLength": 8192})),
        mcp: None,
        agent: None,
    })
}

/// `load` against `base` on a blocking thread (the load client has a thread of its own).
async fn load(base: &str, paths: &[String], run: Duration) -> anyhow::Result<Run> {
    let (base, paths) = (base.to_owned(), paths.to_vec());
    tokio::task::spawn_blocking(move || http_load(&base, paths, CONNECTIONS, run)).await?
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run = Duration::from_secs(
        std::env::var("API_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let database =
        BenchDatabase::create(&format!("curio_bench_api_{}", std::process::id())).await?;
    let store = database.connect(CONNECTIONS as u32).await?;

    let seeding = Instant::now();
    for t in 0..SMALL_TENANTS {
        let ns = Namespace::new(tenant(t))?;
        let d = diff(&Default::default(), (0..PER_TENANT).map(record).collect());
        store.apply_refresh(&ns, "bench", &d, &[]).await?;
    }
    let big = Namespace::new(BIG)?;
    let d = diff(&Default::default(), (0..BIG_ASSETS).map(record).collect());
    store.apply_refresh(&big, "bench", &d, &[]).await?;
    // As after any bulk load: settle visibility maps and statistics so autovacuum does not
    // start in the middle of the measurement.
    store
        .connection()
        .execute_unprepared("VACUUM (ANALYZE)")
        .await?;
    println!(
        "seed_assets: {} count",
        SMALL_TENANTS * PER_TENANT + BIG_ASSETS
    );
    println!("seed_s: {:.2} s", seeding.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    let (cached_dir, uncached_dir) = (dir.path().join("cached"), dir.path().join("uncached"));
    std::fs::create_dir_all(&cached_dir)?;
    std::fs::create_dir_all(&uncached_dir)?;
    let cached = start_api(&database.url, &cached_dir, &[]).await?;
    let uncached = start_api(
        &database.url,
        &uncached_dir,
        &["--response-cache-bytes", "0"],
    )
    .await?;

    let namespaces: Vec<String> = (0..SMALL_TENANTS)
        .map(tenant)
        .chain([BIG.to_owned()])
        .collect();
    let list: Vec<String> = namespaces
        .iter()
        .map(|ns| format!("/api/v1/namespaces/{ns}/assets?limit=50"))
        .collect();
    // Models are every fourth asset from 0 and 1: 500 a namespace; 250 of them each.
    let get: Vec<String> = (0..SMALL_TENANTS * 250)
        .map(|n| {
            format!(
                "/api/v1/namespaces/{}/models/asset-{:05}",
                tenant(n % SMALL_TENANTS),
                (n / SMALL_TENANTS) * 4
            )
        })
        .collect();
    let search: Vec<String> = (0..100)
        .map(|n| {
            format!(
                "/api/v1/namespaces/{BIG}/assets?limit=50&q=asset-{}",
                1000 + n
            )
        })
        .collect();
    let facets = vec![format!("/api/v1/namespaces/{BIG}/assets/facets")];

    // Every path answers 200 on both servers, and the search finds what it should.
    let http = reqwest::Client::new();
    for api in [&cached, &uncached] {
        for path in list
            .iter()
            .chain(&get)
            .step_by(97)
            .chain(&search)
            .chain(&facets)
        {
            let response = http
                .get(format!("{}{path}", api.base))
                .bearer_auth("bench-token")
                .send()
                .await?;
            anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
        }
    }
    let hits: serde_json::Value = http
        .get(format!("{}{}", uncached.base, search[234 % 100]))
        .bearer_auth("bench-token")
        .send()
        .await?
        .json()
        .await?;
    let found = hits["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(found == 10, "the search found {found} assets, not 10");

    let mut lines = Vec::new();
    for (name, paths) in [
        ("list", &list),
        ("get", &get),
        ("search", &search),
        ("facets", &facets),
    ] {
        let without = load(&uncached.base, paths, run).await?;
        let with = load(&cached.base, paths, run).await?;
        lines.push((name, with, without));
    }

    // The list route's transaction and SQL, straight through the driver.
    let db = store.connection().clone();
    let raw = closed_loop(CONNECTIONS, run, move |n| {
        let db = db.clone();
        let ns = if n % 100 == 99 {
            BIG.to_owned()
        } else {
            tenant(n % 100)
        };
        async move {
            let txn = db.begin().await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT set_config('role', $1, true), set_config($2, $3, true)",
                ["curio_reader".into(), "curio.allowed_namespaces".into(), ns.clone().into()],
            ))
            .await?;
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT id, namespace, source, kind, name, version, display_name, description, provider, license, \
                     tags, labels, stage, approved, links, metadata, mcp, agent, digest, object_name, created_at, \
                     updated_at, revision, created_revision FROM assets \
                     WHERE namespace IN ($1) AND ((namespace = $2 AND kind IN ($3, $4, $5))) \
                     ORDER BY namespace, kind, name, version, id LIMIT 51",
                    [ns.clone().into(), ns.into(), "Model".into(), "McpServer".into(), "Agent".into()],
                ))
                .await?;
            anyhow::ensure!(rows.len() == 51, "raw list returned {}", rows.len());
            txn.commit().await?;
            anyhow::Ok(())
        }
    })
    .await?;

    println!("connections: {CONNECTIONS}");
    println!("run_s: {} s", run.as_secs());
    for (name, with, without) in &lines {
        println!("api_{name}_rps: {:.0} req/s", with.rps);
        println!("api_{name}_p99_ms: {:.2} ms", with.p99());
        println!("api_{name}_rps_nocache: {:.0} req/s", without.rps);
        println!("api_{name}_p99_ms_nocache: {:.2} ms", without.p99());
    }
    println!("raw_sql_list_rps: {:.0} req/s", raw.rps);
    let list_nocache = &lines[0].2;
    println!(
        "api_list_nocache_vs_raw_sql: {:.0} %",
        100.0 * list_nocache.rps / raw.rps
    );
    for (label, api) in [("cached", &cached), ("nocache", &uncached)] {
        println!(
            "api_rss_mib_{label}: {:.1} MiB",
            resident_kib(api.child.id())? as f64 / 1024.0
        );
    }

    drop((cached, uncached));
    store.connection().clone().close().await?;
    database.drop_now().await
}
