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
