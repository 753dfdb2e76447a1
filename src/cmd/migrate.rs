//! `curio migrate`: run the database migrations and exit (the Helm pre-upgrade hook).

use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// postgres://… or sqlite://…
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: String,
}

pub async fn run(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let applied = curio::store::migrate(&args.database_url)
        .await
        .context("running migrations")?;
    tracing::info!(applied, "migrations complete");
    Ok(ExitCode::SUCCESS)
}
