//! The `curio` binary: parse the command line, start logging, run one subcommand.

use std::process::ExitCode;

use clap::Parser;

mod cmd;

// glibc malloc showed as a fifth of the API's CPU under load (see benches/api.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Curio: a multi-tenant, Kubernetes-native catalog of AI assets.
#[derive(Parser)]
#[command(name = "curio", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
    /// Log lines as text or JSON [default: text on a terminal, else JSON].
    #[arg(
        long,
        global = true,
        env = "CURIO_LOG_FORMAT",
        value_enum,
        default_value_t = curio::telemetry::LogFormat::Auto,
        hide_default_value = true
    )]
    log_format: curio::telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    curio::telemetry::init_logging(cli.log_format);
    cli.command.run().await
}
