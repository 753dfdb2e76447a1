//! API benchmark on the real PostgreSQL. Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench api
//!
//! 100 tenants × 1,000 assets, and one tenant of 100,000. Authentication by static tokens;
//! authorization by SubjectAccessReview against an in-process review server behind the real
//! decision cache, warmed first. Two API servers on one store: one with the response cache,
//! one without (`_nocache` lines). Load comes from client tasks in the same process over
//! loopback HTTP at fixed concurrency (closed loop), then at a fixed 1,000 requests/s (open
//! loop) for the p99 target. `raw_sql_list_rps` runs the same transaction and SQL the list
//! route runs, straight through the driver at the same concurrency, so the API's overhead is a
//! measured ratio; `raw_sql_search_unindexed_rps` runs the search as it was before its index
//! (an OR of three ILIKEs) for comparison.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use curio::{
    access::{
        authn::StaticTokens,
        authz::{CacheOptions, CachedAuthorizer, SubjectAccessReviewer},
        metrics::AccessMetrics,
    },
    api::{ApiState, cache::ResponseCache},
    catalog::{Asset, AssetKind, AssetRecord, diff},
    store::Namespace,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::json;
use support::{
    BenchDatabase, allowing_review_server, closed_loop, fixed_rate, percentile, serve_api,
};

// The same allocator as the curio binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANTS: usize = 100;
const PER_TENANT: usize = 1_000;
/// The one large tenant.
const BIG: &str = "tenant-big";
const BIG_ASSETS: usize = 100_000;
const CONCURRENCY: usize = 16;
const RUN: Duration = Duration::from_secs(8);

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
        provider: Some("Example".into()),
        license: Some("apache-2.0".into()),
        tags: vec!["llm".into()],
        labels: [("task".to_string(), "chat".to_string())].into(),
        links: vec![],
        metadata: Some(json!({"contextLength": 8192})),
        mcp: None,
        agent: None,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database =
        BenchDatabase::create(&format!("curio_bench_api_{}", std::process::id())).await?;
    let store = database.connect(32).await?;

    let seeding = Instant::now();
    for t in 0..TENANTS {
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
        .execute_unprepared("VACUUM (ANALYZE) assets")
        .await?;
    println!("seed_assets: {} count", TENANTS * PER_TENANT + BIG_ASSETS);
    println!("seed_s: {:.2} s", seeding.elapsed().as_secs_f64());

    let authz = CachedAuthorizer::new(
        SubjectAccessReviewer::new(allowing_review_server().await?, Duration::from_secs(5)),
        CacheOptions::default(),
        AccessMetrics::default(),
    );
    let authz = Arc::new(authz);
    let tokens = Arc::new(StaticTokens::parse("bench-token,bench,1,\"readers\"\n")?);
    let cached = ApiState::new(store.clone(), tokens.clone(), authz.clone());
    let uncached = ApiState {
        responses: Arc::new(ResponseCache::disabled()),
        ..ApiState::new(store.clone(), tokens, authz)
    };
    let cached_base = serve_api(cached).await?;
    let uncached_base = serve_api(uncached).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()?;

    let list_url =
        move |n: usize| format!("/api/v1/namespaces/{}/assets?limit=50", tenant(n % TENANTS));
    let get_url = move |n: usize| {
        format!(
            "/api/v1/namespaces/{}/models/asset-{:05}",
            tenant(n % TENANTS),
            (n * 4) % PER_TENANT
        )
    };
    // ~11 hits out of 100,000 (asset-01234 and asset-1234x), varied over 100 prefixes.
    let search_url = move |n: usize| {
        format!(
            "/api/v1/namespaces/{BIG}/assets?limit=50&q=asset-{:04}",
            1000 + n % 100
        )
    };
    // Warm the decision cache: every tenant, every kind, get and list.
    for t in 0..TENANTS {
        for url in [list_url(t), get_url(t), search_url(t)] {
            let response = http
                .get(format!("{uncached_base}{url}"))
                .bearer_auth("bench-token")
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == 200,
                "warm-up {url}: {}",
                response.status()
            );
        }
    }
    let request = |base: String| {
        let http = http.clone();
        move |path: String| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move {
                let response = http.get(url).bearer_auth("bench-token").send().await?;
                anyhow::ensure!(response.status() == 200, "status {}", response.status());
                response.bytes().await?;
                anyhow::Ok(())
            }
        }
    };
    let with_cache = request(cached_base.clone());
    let without_cache = request(uncached_base.clone());

    // Interleaved, so both servers see the same machine state.
    let r = without_cache.clone();
    let list_nocache = closed_loop(CONCURRENCY, RUN, move |n| r(list_url(n))).await?;
    let r = with_cache.clone();
    let list = closed_loop(CONCURRENCY, RUN, move |n| r(list_url(n))).await?;
    let r = without_cache.clone();
    let get_nocache = closed_loop(CONCURRENCY, RUN, move |n| r(get_url(n))).await?;
    let r = with_cache.clone();
    let get = closed_loop(CONCURRENCY, RUN, move |n| r(get_url(n))).await?;
    let r = without_cache.clone();
    let search_nocache = closed_loop(CONCURRENCY, RUN, move |n| r(search_url(n))).await?;
    let r = with_cache.clone();
    let search = closed_loop(CONCURRENCY, RUN, move |n| r(search_url(n))).await?;

    // The list route's transaction and SQL, straight through the driver.
    let db = store.connection().clone();
    let raw = closed_loop(CONCURRENCY, RUN, move |n| {
        let db = db.clone();
        async move {
            let ns = tenant(n % TENANTS);
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
                     tags, labels, stage, approved, links, metadata, mcp, agent, digest, created_at, updated_at FROM assets \
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

    // The search as it ran before its index: three ILIKEs under an OR, in the large tenant.
    let db = store.connection().clone();
    let unindexed = closed_loop(CONCURRENCY, Duration::from_secs(4), move |n| {
        let db = db.clone();
        async move {
            let pattern = format!("%asset-{:04}%", 1000 + n % 100);
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT id FROM assets WHERE namespace IN ($1) AND (name ILIKE $2 ESCAPE '\\' \
                     OR display_name ILIKE $2 ESCAPE '\\' OR description ILIKE $2 ESCAPE '\\') \
                     ORDER BY namespace, kind, name, version, id LIMIT 51",
                    [BIG.into(), pattern.into()],
                ))
                .await?;
            anyhow::ensure!(!rows.is_empty(), "no hits");
            anyhow::Ok(())
        }
    })
    .await?;

    // Open loop at a fixed 1,000 requests/s for the latency target (uncached).
    let started = Instant::now();
    let r = without_cache.clone();
    let (fixed, failed) =
        fixed_rate(1_000, Duration::from_secs(5), move |n| r(list_url(n))).await?;
    anyhow::ensure!(failed == 0, "{failed} requests failed at the fixed rate");
    let achieved = fixed.len() as f64 / started.elapsed().as_secs_f64();

    let p99 = |r: &support::Run| percentile(&r.latencies_ms, 0.99);
    println!("concurrency: {CONCURRENCY} tasks");
    for (name, cached, uncached) in [
        ("list", &list, &list_nocache),
        ("get", &get, &get_nocache),
        ("search", &search, &search_nocache),
    ] {
        println!("api_{name}_rps: {:.0} req/s", cached.rps);
        println!("api_{name}_p99_ms: {:.2} ms", p99(cached));
        println!("api_{name}_rps_nocache: {:.0} req/s", uncached.rps);
        println!("api_{name}_p99_ms_nocache: {:.2} ms", p99(uncached));
    }
    println!(
        "api_list_p50_ms_nocache: {:.2} ms",
        percentile(&list_nocache.latencies_ms, 0.50)
    );
    println!("raw_sql_list_rps: {:.0} req/s", raw.rps);
    println!(
        "api_list_nocache_vs_raw_sql: {:.0} %",
        100.0 * list_nocache.rps / raw.rps
    );
    println!("raw_sql_search_unindexed_rps: {:.0} req/s", unindexed.rps);
    println!(
        "raw_sql_search_unindexed_p99_ms: {:.2} ms",
        percentile(&unindexed.latencies_ms, 0.99)
    );
    println!("fixed_rate_rps: {achieved:.0} req/s");
    println!(
        "api_list_p50_ms_at_1000rps: {:.2} ms",
        percentile(&fixed, 0.50)
    );
    println!(
        "api_list_p99_ms_at_1000rps: {:.2} ms",
        percentile(&fixed, 0.99)
    );

    store.connection().clone().close().await?;
    database.drop_now().await
}
