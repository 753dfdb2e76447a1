//! Rate-limit isolation on the real PostgreSQL. Prints one `name: value unit` line per figure.
//!
//!     cargo bench --bench ratelimit
//!
//! Two tenants of 200 assets; namespace buckets of 200 requests/s (bursts of 200). A victim
//! reads tenant-a at a fixed 100 requests/s, first alone, then while a flooder sends tenant-b
//! 2,000 requests/s (ten times its limit; most answered 429). The figure is how much the
//! flood raises the victim's p99. Client and server share the machine's two cores.

mod support;

use std::{sync::Arc, time::Duration};

use curio::{
    access::{
        authn::StaticTokens,
        authz::{StaticRbac, manifests::add_document},
    },
    api::{
        ApiState,
        ratelimit::{RateLimit, RateLimits},
    },
    catalog::{AssetKind, AssetRecord, diff},
    store::Namespace,
};
use curio_core::fixtures::asset;
use serde_json::json;
use support::{BenchDatabase, fixed_rate, percentile, serve_api};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUN: Duration = Duration::from_secs(5);
const VICTIM_RATE: u32 = 100;
const NAMESPACE_LIMIT: u32 = 200;
const FLOOD_RATE: u32 = 10 * NAMESPACE_LIMIT;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database =
        BenchDatabase::create(&format!("curio_bench_ratelimit_{}", std::process::id())).await?;
    let store = database.connect(16).await?;
    for tenant in ["tenant-a", "tenant-b"] {
        let records = (0..200)
            .map(|i| AssetRecord::from_asset(asset(AssetKind::Model, &format!("m-{i:03}"), "1")))
            .collect();
        let d = diff(&Default::default(), records);
        store
            .apply_refresh(&Namespace::new(tenant)?, "bench", &d, &[])
            .await?;
    }
    let mut state = ApiState::new(
        store.clone(),
        Arc::new(StaticTokens::parse(
            "victim-token,victim,1,\"readers\"\nflood-token,flood,2,\"readers\"\n",
        )?),
        Arc::new(readers()?),
    );
    state.rate_limits = Arc::new(RateLimits::new(
        None,
        RateLimit::new(NAMESPACE_LIMIT, NAMESPACE_LIMIT),
    ));
    let base = serve_api(state).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let request = move |token: &'static str, tenant: &'static str, accept_429: bool| {
        let (http, base) = (http.clone(), base.clone());
        move |_: usize| {
            let (http, base) = (http.clone(), base.clone());
            async move {
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
        }
    };

    // Warm up: connections, statements, the authorization path.
    fixed_rate(
        VICTIM_RATE,
        Duration::from_secs(2),
        request("victim-token", "tenant-a", false),
    )
    .await?;
    let (alone, failed_alone) =
        fixed_rate(VICTIM_RATE, RUN, request("victim-token", "tenant-a", false)).await?;
    let flood = tokio::spawn(fixed_rate(
        FLOOD_RATE,
        RUN,
        request("flood-token", "tenant-b", true),
    ));
    let (flooded, failed_flooded) =
        fixed_rate(VICTIM_RATE, RUN, request("victim-token", "tenant-a", false)).await?;
    let (flood_latencies, _) = flood.await??;

    let (p99_alone, p99_flooded) = (percentile(&alone, 0.99), percentile(&flooded, 0.99));
    println!("victim_rps: {VICTIM_RATE} req/s");
    println!("flood_rps: {FLOOD_RATE} req/s");
    println!("namespace_limit_rps: {NAMESPACE_LIMIT} req/s");
    println!("flood_answered: {} count", flood_latencies.len());
    println!("victim_failed: {} count", failed_alone + failed_flooded);
    println!("victim_p50_alone_ms: {:.2} ms", percentile(&alone, 0.5));
    println!("victim_p50_flooded_ms: {:.2} ms", percentile(&flooded, 0.5));
    println!("victim_p99_alone_ms: {p99_alone:.2} ms");
    println!("victim_p99_flooded_ms: {p99_flooded:.2} ms");
    println!(
        "ratelimit_victim_p99_increase_pct: {:.0} %",
        100.0 * (p99_flooded - p99_alone) / p99_alone
    );
    drop(store);
    database.drop_now().await
}
