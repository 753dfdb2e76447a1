use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Curio: a multi-tenant, Kubernetes-native catalog of AI assets.
#[derive(Parser)]
#[command(name = "curio", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write or check the files in a folder.
    Crds {
        /// Compare DIR's files with the generated ones; exit 1 if any differ.
        #[arg(long, conflicts_with = "write")]
        check: bool,
        /// Write the generated files into DIR.
        #[arg(long)]
        write: bool,
        /// Folder for --check and --write.
        #[arg(long, default_value = "crds", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run the database migrations (under an advisory lock on PostgreSQL) and exit.
    Migrate {
        /// postgres://… or sqlite://…
        #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
        database_url: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    curio::telemetry::init_logging();
    match cli.command {
        Command::Crds { check, write, dir } => crds(check, write, &dir),
        Command::Migrate { database_url } => {
            let applied = curio::store::migrate(&database_url)
                .await
                .context("running migrations")?;
            tracing::info!(applied, "migrations complete");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn crds(check: bool, write: bool, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use curio::crd::generate;
    if check {
        let stale = generate::stale_files(dir)?;
        if stale.is_empty() {
            println!("{} is up to date", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        for path in stale {
            eprintln!("{} differs from the Rust types", path.display());
        }
        eprintln!("run `cargo run -- crds --write` and commit the result");
        return Ok(ExitCode::FAILURE);
    }
    if write {
        for path in generate::write_all(dir)? {
            println!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let docs: Vec<String> = generate::manifests()?.into_iter().map(|m| m.yaml).collect();
    print!("{}", docs.join("---\n"));
    Ok(ExitCode::SUCCESS)
}
