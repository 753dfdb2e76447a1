//! `curio standalone`: the whole of Curio in one process with no cluster. A folder of
//! manifests feeds an in-memory cluster; the controller's own reconcile and job code runs on
//! it; the API serves with static tokens and the folder's RBAC.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context as _;
use curio::{
    access::{authn::StaticTokens, metrics::AccessMetrics},
    api,
    catalog::AssetKind,
    cluster::memory::MemoryCluster,
    controller::{metrics::ControllerMetrics, reconcile::Context},
    server,
    source::{http::UrlFetcher, policy::AddressPolicy},
    standalone::{
        self, Standalone, SyncReport, folder::Folder, kubeconfig, lock::DataDirLock, serve,
    },
    telemetry,
};

use super::shutdown_signal;

#[derive(clap::Args)]
pub struct StandaloneArgs {
    /// Folder of YAML manifests (Namespace, CatalogSource, RefreshJob, ConfigMap, Secret and
    /// RBAC kinds; others are reported and skipped). Its `files/` subfolder is served at /files/.
    #[arg(long, env = "CURIO_MANIFESTS", value_name = "DIR")]
    manifests: PathBuf,
    /// postgres://… or sqlite://… [default: SQLite in --data-dir]
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the embedded SQLite database lives.
    #[arg(
        long,
        env = "CURIO_DATA_DIR",
        default_value = ".curio",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    /// Address to listen on, HOST:PORT (a name such as localhost, or an IP; port 0 picks a
    /// free one).
    #[arg(long, env = "CURIO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Also serve the API over HTTPS here, HOST:PORT, for kubectl (it sends tokens only over
    /// HTTPS), with a certificate from a CA kept in --data-dir, and write DIR/kubeconfig with
    /// one user per token; `off` to not.
    #[arg(long, env = "CURIO_HTTPS_LISTEN", default_value = "127.0.0.1:8443")]
    https_listen: String,
    /// Bearer tokens (kube-apiserver --token-auth-file format) [default: DIR/tokens.csv].
    #[arg(long, env = "CURIO_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve /metrics (Prometheus) on this address, HOST:PORT; off when not given. Never on the
    /// API's address, where anyone could read tenant namespaces off the series.
    #[arg(long, env = "CURIO_METRICS_ADDRESS", value_name = "HOST:PORT")]
    metrics_address: Option<String>,
    #[command(flatten)]
    rate_limits: super::RateLimitArgs,
    #[command(flatten)]
    response_cache: super::ResponseCacheArgs,
    /// How often the folder is checked for changes.
    #[arg(long, env = "CURIO_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: std::time::Duration,
    /// URL sources may reach these ranges (the listen address is always allowed, for
    /// ${CURIO_URL}/files/… sources).
    #[arg(long, env = "CURIO_ALLOW_URL_CIDRS", value_delimiter = ',')]
    allow_url_cidrs: Vec<ipnet::IpNet>,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<ExitCode> {
    let manifests = args
        .manifests
        .canonicalize()
        .with_context(|| format!("the manifests folder {}", args.manifests.display()))?;
    // Held until the process ends: two processes on one embedded database would fight.
    let mut _data_dir_lock = None;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            _data_dir_lock = Some(DataDirLock::acquire(&data_dir)?);
            format!("sqlite://{}?mode=rwc", data_dir.join("curio.db").display())
        }
    };
    curio::store::migrate(&database_url)
        .await
        .context("migrating the database")?;
    let store = curio::store::connect(&database_url)
        .await
        .context("connecting to the database")?;
    let token_file = args
        .token_file
        .clone()
        .unwrap_or_else(|| manifests.join("tokens.csv"));
    let tokens = StaticTokens::load(&token_file).with_context(|| {
        format!(
            "the users' bearer tokens (kube-apiserver --token-auth-file format): put a tokens.csv in {} or pass --token-file",
            manifests.display()
        )
    })?;

    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let mut local = listener.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = format!("http://{local}");
    let mut allow = args.allow_url_cidrs.clone();
    allow.push(ipnet::IpNet::from(local.ip()));

    let mut registry = telemetry::registry();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    let access_metrics = AccessMetrics::register(&mut registry);
    let api_metrics = api::ApiMetrics::register(&mut registry);
    let responses = args.response_cache.cache(&mut registry);
    let registry = Arc::new(registry);
    let cluster = Arc::new(MemoryCluster::default());
    let ctx = Context::new(
        store.clone(),
        cluster.clone(),
        "system:curio-standalone".into(),
        UrlFetcher::new(
            AddressPolicy::new(allow, Vec::new()),
            std::time::Duration::from_secs(5),
        )?,
    )
    .with_metrics(controller_metrics);
    let mut runner = Standalone::new(
        ctx,
        cluster.clone(),
        Folder::new(manifests.clone(), base.clone()),
    );
    let report = runner.sync().await.context("reading the manifests")?;
    standalone::log_report(&report);

    let stop_streams = tokio_util::sync::CancellationToken::new();
    let router = api::router(api::ApiState {
        store,
        authn: Arc::new(tokens.clone()),
        authz: runner.rbac.clone(),
        metrics: api_metrics,
        access_metrics,
        registry: registry.clone(),
        notices: runner.problems.clone(),
        rate_limits: args
            .rate_limits
            .rate_limits(Some(runner.ctx.policies.clone())),
        flows: args.rate_limits.flow_limits(),
        responses,
        watch: api::kube::watch::WatchSettings::default(),
        stop_streams: stop_streams.clone(),
        policies: Some(runner.ctx.policies.clone()),
    })
    .merge(serve::files_router(
        manifests.join(standalone::folder::FILES_DIR),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = match &args.metrics_address {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address.as_str())
                .await
                .with_context(|| format!("binding the metrics address {address}"))?;
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(server::serve_http(
                listener,
                telemetry::metrics_router(registry),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let https = match args.https_listen.as_str() {
        "off" | "" => None,
        address => {
            let (listener, kubeconfig) = https_listener(address, &data_dir, &token_file).await?;
            // No authenticating proxy in front of standalone: tokens only.
            let config = server::server_config(
                &server::TlsSettings {
                    cert: kubeconfig.pki.cert.clone(),
                    key: kubeconfig.pki.key.clone(),
                    proxy_client_ca: None,
                    proxy_allowed_names: Vec::new(),
                },
                &curio::access::proxy::ProxyTrust::new(None)?,
            )?;
            let mut stop = stop_rx.clone();
            let router = router.clone();
            Some((
                tokio::spawn(server::serve_tls(
                    listener,
                    router,
                    config,
                    None,
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                )),
                kubeconfig,
            ))
        }
    };
    let server = tokio::spawn(async move {
        let mut stop = stop_rx;
        server::serve_http(listener, router, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    // The first pass before the banner, so the commands it prints have something to show.
    runner.reconcile_due().await;
    print_banner(&Banner {
        base: &base,
        manifests: &manifests,
        database_url: &database_url,
        report: &report,
        token_file: &token_file,
        tokens: &tokens,
        runner: &runner,
        cluster: &cluster,
        kubectl: https.as_ref().map(|(_, k)| k),
    });

    runner.run(args.poll_interval, shutdown_signal()).await;
    stop_streams.cancel();
    let _ = stop_tx.send(true);
    server.await.context("the API server panicked")??;
    if let Some((https, _)) = https {
        https.await.context("the HTTPS server panicked")??;
    }
    if let Some(metrics) = metrics {
        metrics.await.context("the metrics server panicked")??;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the start-up banner shows.
struct Banner<'a> {
    base: &'a str,
    manifests: &'a Path,
    database_url: &'a str,
    report: &'a SyncReport,
    token_file: &'a Path,
    tokens: &'a StaticTokens,
    runner: &'a Standalone,
    cluster: &'a MemoryCluster,
    kubectl: Option<&'a Kubectl>,
}

/// Where kubectl reaches standalone.
struct Kubectl {
    server: String,
    kubeconfig: PathBuf,
    pki: kubeconfig::Pki,
}

/// Binds the HTTPS address, makes (or reuses) its certificate, and writes the kubeconfig.
async fn https_listener(
    address: &str,
    data_dir: &Path,
    token_file: &Path,
) -> anyhow::Result<(tokio::net::TcpListener, Kubectl)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("binding the HTTPS address {address} (--https-listen off to not serve it)")
        })?;
    let mut local = listener.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let pki = kubeconfig::Pki::in_dir(data_dir);
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !names.contains(&local.ip().to_string()) {
        names.push(local.ip().to_string());
    }
    let ca = kubeconfig::ensure_certificate(&pki, &names)?;
    let text = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let users: Vec<(String, String)> = curio::access::authn::token_entries(&text)?
        .into_iter()
        .map(|(_, token, user)| (user.username, token))
        .collect();
    let server = format!("https://{local}");
    let path = data_dir.join("kubeconfig");
    kubeconfig::write_kubeconfig(&path, &server, &ca, &users)?;
    Ok((
        listener,
        Kubectl {
            server,
            kubeconfig: path,
            pki,
        },
    ))
}

/// Where it serves, what it read, who may sign in, and commands to try.
fn print_banner(banner: &Banner<'_>) {
    // Written with the errors ignored: a reader that stops reading (`| head`, a test that has
    // seen enough) must not take the server down with a broken pipe, as `println!` would.
    let mut out = std::io::stdout().lock();
    let namespaces = standalone::namespaces(banner.cluster);
    let _ = writeln!(out, "Curio standalone: serving {}", banner.base);
    let _ = writeln!(
        out,
        "  browser:   {}/ui/ (sign in with a token from the token file)",
        banner.base
    );
    if let Some(kubectl) = banner.kubectl {
        let _ = writeln!(
            out,
            "  kubectl:   {} (kubeconfig {})",
            kubectl.server,
            kubectl.kubeconfig.display()
        );
    }
    let _ = writeln!(out, "  manifests: {}", banner.manifests.display());
    let _ = writeln!(out, "  database:  {}", redact(banner.database_url));
    let _ = writeln!(
        out,
        "  sources:   {} in {} namespaces ({})",
        banner.report.sources,
        namespaces.len(),
        namespaces.join(", ")
    );
    let _ = writeln!(
        out,
        "  users ({}): {}",
        banner.token_file.display(),
        banner.tokens.usernames().join(", ")
    );
    if !banner.report.problems.is_empty() {
        let _ = writeln!(
            out,
            "Problems in the manifests ({}); fix them and save, no restart needed:",
            banner.report.problems.len()
        );
        for problem in &banner.report.problems {
            let _ = writeln!(out, "  {problem}");
        }
    }
    let commands = serve::try_commands(
        banner.base,
        banner.token_file,
        banner.tokens,
        &banner.runner.rbac.current(),
        &namespaces,
        |ns| first_model(banner.cluster, ns),
    );
    if !commands.is_empty() {
        let _ = writeln!(out, "Try:");
        for command in commands {
            let _ = writeln!(out, "  {command}");
        }
    }
    if let Some(kubectl) = banner.kubectl {
        for command in serve::kubectl_commands(
            &kubectl.kubeconfig,
            banner.tokens,
            &banner.runner.rbac.current(),
            &namespaces,
        ) {
            let _ = writeln!(out, "  {command}");
        }
    }
    let _ = writeln!(
        out,
        "Edit, add or delete files under the folder: changes apply within a second or two."
    );
}

/// A URL without its password, for printing.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The name of a model declared inline in `namespace`, for the banner's `get` example.
fn first_model(cluster: &MemoryCluster, namespace: &str) -> Option<String> {
    cluster
        .all_sources()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|s| s.spec.source.inline)
        .flat_map(|inline| inline.assets)
        .find(|a| a.kind == AssetKind::Model)
        .map(|a| a.name)
}
