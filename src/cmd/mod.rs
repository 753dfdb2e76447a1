//! The subcommands: each module holds its flags (a clap struct) and its wiring. Everything
//! here is composition; the behaviour lives in the library.

mod api;
mod controller;
mod crds;
mod migrate;
mod standalone;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

// Parsed once at start-up, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write or check the files in a folder.
    Crds(crds::CrdsArgs),
    /// Serve the read-only HTTP API.
    Api(api::ApiArgs),
    /// Run the CatalogSource and RefreshJob controllers (leader-elected) with health and
    /// metrics endpoints.
    Controller(controller::ControllerArgs),
    /// The whole of Curio in one process, no cluster: reconcile a folder of manifests into an
    /// embedded store and serve the API with static tokens and the folder's RBAC.
    Standalone(standalone::StandaloneArgs),
    /// Run the database migrations (under an advisory lock on PostgreSQL) and exit.
    Migrate(migrate::MigrateArgs),
}

impl Command {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Self::Crds(args) => crds::run(&args),
            Self::Api(args) => api::run(args).await,
            Self::Controller(args) => controller::run(args).await,
            Self::Standalone(args) => standalone::run(args).await,
            Self::Migrate(args) => migrate::run(&args).await,
        }
    }
}

/// The store, with a bounded connection pool.
async fn connect_store(url: &str, max_connections: u32) -> anyhow::Result<curio::store::Store> {
    curio::store::connect_with(
        url,
        &curio::store::StoreOptions {
            max_connections,
            ..Default::default()
        },
    )
    .await
    .context("connecting to the database")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The read API's response cache.
#[derive(clap::Args)]
pub struct ResponseCacheArgs {
    /// Bytes of serialized answers (asset lists and gets, MCP registry answers) kept in memory,
    /// keyed by the caller's allowed scope, the query and the catalog revisions; 0 turns the
    /// cache (and its one revision lookup per request) off.
    #[arg(long, env = "CURIO_RESPONSE_CACHE_BYTES", default_value_t = 64 << 20)]
    response_cache_bytes: u64,
}

impl ResponseCacheArgs {
    pub fn cache(
        &self,
        registry: &mut curio::telemetry::Registry,
    ) -> std::sync::Arc<curio::api::cache::ResponseCache> {
        std::sync::Arc::new(curio::api::cache::ResponseCache::new(
            self.response_cache_bytes,
            curio::api::cache::CacheMetrics::register(registry),
        ))
    }
}

/// Request rate limits of the read API (0 turns one off).
#[derive(clap::Args)]
pub struct RateLimitArgs {
    /// Requests a second one user may make (sustained).
    #[arg(long, env = "CURIO_USER_REQUESTS_PER_SECOND", default_value_t = 100)]
    user_requests_per_second: u32,
    /// Requests one user may make at once above the sustained rate.
    #[arg(long, env = "CURIO_USER_REQUEST_BURST", default_value_t = 200)]
    user_request_burst: u32,
    /// Requests a second that may name one namespace, all users together (sustained).
    #[arg(
        long,
        env = "CURIO_NAMESPACE_REQUESTS_PER_SECOND",
        default_value_t = 300
    )]
    namespace_requests_per_second: u32,
    /// Requests naming one namespace at once above the sustained rate.
    #[arg(long, env = "CURIO_NAMESPACE_REQUEST_BURST", default_value_t = 600)]
    namespace_request_burst: u32,
    /// Requests reading one namespace served at once (counted once the caller is authorized
    /// for it); more wait in that namespace's own line, so one tenant's burst cannot hold the
    /// whole database pool.
    #[arg(long, env = "CURIO_NAMESPACE_CONCURRENCY", default_value_t = 4)]
    namespace_concurrency: usize,
    /// How long a request may wait for its place before it is a 429.
    #[arg(long, env = "CURIO_CONCURRENCY_WAIT", default_value = "10s", value_parser = humantime::parse_duration)]
    concurrency_wait: std::time::Duration,
}

impl RateLimitArgs {
    /// The limits (namespaces' CatalogPolicies override the namespace flags), with a task
    /// that forgets idle buckets every minute.
    fn rate_limits(
        &self,
        policies: Option<curio::cluster::policies::Policies>,
    ) -> std::sync::Arc<curio::api::ratelimit::RateLimits> {
        use curio::api::ratelimit::{RateLimit, RateLimits};
        let mut limits = RateLimits::new(
            RateLimit::new(self.user_requests_per_second, self.user_request_burst),
            RateLimit::new(
                self.namespace_requests_per_second,
                self.namespace_request_burst,
            ),
        );
        if let Some(policies) = policies {
            limits = limits.with_policies(policies);
        }
        forgetting_every_minute(limits, curio::api::ratelimit::RateLimits::forget_idle)
    }

    /// The per-namespace concurrency limits, with a task that forgets empty lines every minute.
    fn flow_limits(&self) -> std::sync::Arc<curio::api::flow::FlowLimits> {
        forgetting_every_minute(
            curio::api::flow::FlowLimits::new(self.namespace_concurrency, self.concurrency_wait),
            curio::api::flow::FlowLimits::forget_idle,
        )
    }
}

/// `table` shared, with a task that calls `forget` on it every minute while anyone holds it.
fn forgetting_every_minute<T: Send + Sync + 'static>(
    table: T,
    forget: fn(&T),
) -> std::sync::Arc<T> {
    let table = std::sync::Arc::new(table);
    let weak = std::sync::Arc::downgrade(&table);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            match weak.upgrade() {
                Some(table) => forget(&table),
                None => return,
            }
        }
    });
    table
}
