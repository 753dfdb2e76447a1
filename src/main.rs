use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

// glibc malloc showed as a fifth of the API's CPU under load (see benches/api.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Curio: a multi-tenant, Kubernetes-native catalog of AI assets.
#[derive(Parser)]
#[command(name = "curio", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
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
        /// Folders for --check and --write (repeatable): the repository's and the chart's.
        #[arg(long, default_values = ["crds", "charts/curio/crds"], value_name = "DIR")]
        dir: Vec<PathBuf>,
    },
    /// Serve the read-only HTTP API.
    Api(ApiArgs),
    /// Run the CatalogSource and RefreshJob controllers (leader-elected) with health and
    /// metrics endpoints.
    Controller(ControllerArgs),
    /// The whole of Curio in one process, no cluster: reconcile a folder of manifests into an
    /// embedded store and serve the API with static tokens and the folder's RBAC.
    Standalone(StandaloneArgs),
    /// Run the database migrations (under an advisory lock on PostgreSQL) and exit.
    Migrate {
        /// postgres://… or sqlite://…
        #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
        database_url: String,
    },
}

#[derive(clap::Args)]
struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "CURIO_API_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// postgres://… or sqlite://…
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: String,
    /// Largest number of database connections.
    #[arg(long, env = "CURIO_DB_MAX_CONNECTIONS", default_value_t = 16)]
    db_max_connections: u32,
    /// Authenticate bearer tokens from this file (kube-apiserver --token-auth-file format)
    /// instead of TokenReview.
    #[arg(long, env = "CURIO_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Authorize with the Role/ClusterRole/RoleBinding/ClusterRoleBinding manifests under DIR
    /// instead of SubjectAccessReview.
    #[arg(long, env = "CURIO_RBAC_MANIFESTS", value_name = "DIR")]
    rbac_manifests: Option<PathBuf>,
    /// How long an allowed SubjectAccessReview answer is cached.
    #[arg(long, env = "CURIO_AUTHZ_ALLOWED_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    authz_allowed_ttl: std::time::Duration,
    /// How long a denied SubjectAccessReview answer is cached.
    #[arg(long, env = "CURIO_AUTHZ_DENIED_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    authz_denied_ttl: std::time::Duration,
    /// Most decisions kept in the authorization cache.
    #[arg(long, env = "CURIO_AUTHZ_CACHE_SIZE", default_value_t = 100_000)]
    authz_cache_size: u64,
    /// How long a TokenReview answer is cached (invalid tokens: a sixth of it).
    #[arg(long, env = "CURIO_AUTHN_CACHE_TTL", default_value = "1m", value_parser = humantime::parse_duration)]
    authn_cache_ttl: std::time::Duration,
    /// Time allowed for one TokenReview or SubjectAccessReview.
    #[arg(long, env = "CURIO_REVIEW_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    review_timeout: std::time::Duration,
    /// Serve HTTPS with this certificate (PEM).
    #[arg(
        long,
        env = "CURIO_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "CURIO_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    tls_key: Option<PathBuf>,
    /// Trust X-Remote-User/X-Remote-Group only on connections with a client certificate signed
    /// by this CA (PEM) and named in --proxy-allowed-names. Needs --tls-cert.
    #[arg(long, env = "CURIO_PROXY_CLIENT_CA", requires_all = ["tls_cert", "proxy_allowed_names"], value_name = "FILE")]
    proxy_client_ca: Option<PathBuf>,
    /// Common names of the authenticating proxy's client certificates.
    #[arg(
        long,
        env = "CURIO_PROXY_ALLOWED_NAMES",
        value_delimiter = ',',
        value_name = "NAMES"
    )]
    proxy_allowed_names: Vec<String>,
}

#[derive(clap::Args)]
struct StandaloneArgs {
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
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "CURIO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Bearer tokens (kube-apiserver --token-auth-file format) [default: DIR/tokens.csv].
    #[arg(long, env = "CURIO_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// How often the folder is checked for changes.
    #[arg(long, env = "CURIO_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: std::time::Duration,
    /// URL sources may reach these ranges (the listen address is always allowed, for
    /// ${CURIO_URL}/files/… sources).
    #[arg(long, env = "CURIO_ALLOW_URL_CIDRS", value_delimiter = ',')]
    allow_url_cidrs: Vec<ipnet::IpNet>,
}

async fn run_standalone(args: StandaloneArgs) -> anyhow::Result<ExitCode> {
    use curio::{
        api::{self, authn::StaticTokens},
        controller::{memory_cluster::MemoryCluster, reconcile::Context},
        source::{http::UrlFetcher, policy::AddressPolicy},
        standalone::{self, Standalone, folder::Folder, serve},
    };
    use std::sync::Arc;

    let manifests = args
        .manifests
        .canonicalize()
        .with_context(|| format!("the manifests folder {}", args.manifests.display()))?;
    let database_url = match args.database_url {
        Some(url) => url,
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating {}", args.data_dir.display()))?;
            let path = args.data_dir.canonicalize()?.join("curio.db");
            format!("sqlite://{}?mode=rwc", path.display())
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
        .unwrap_or_else(|| manifests.join("tokens.csv"));
    let tokens = StaticTokens::load(&token_file)?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let mut local = listener.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = format!("http://{local}");
    let mut allow = args.allow_url_cidrs;
    allow.push(ipnet::IpNet::from(local.ip()));
    let cluster = Arc::new(MemoryCluster::default());
    let metrics = Arc::new(curio::telemetry::Metrics::new());
    let mut ctx = Context::new(
        store.clone(),
        cluster.clone(),
        "system:curio-standalone".into(),
        UrlFetcher::new(
            AddressPolicy::new(allow, Vec::new()),
            std::time::Duration::from_secs(5),
        )?,
    );
    ctx.metrics = metrics.clone();
    let mut runner = Standalone::new(
        Arc::new(ctx),
        cluster.clone(),
        Folder::new(manifests.clone(), base.clone()),
    );
    let report = runner.sync().await.context("reading the manifests")?;
    standalone::log_report(&report);

    let router = api::router(api::ApiState {
        store,
        authn: Arc::new(tokens.clone()),
        authz: runner.rbac.clone(),
        metrics,
    })
    .merge(serve::files_router(
        manifests.join(standalone::folder::FILES_DIR),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let mut stop = stop_rx;
        api::server::serve_http(listener, router, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    // The first pass before the banner, so the commands it prints have something to show.
    runner.reconcile_due().await;

    let namespaces = standalone::namespaces(&cluster);
    let users = tokens.usernames();
    println!("Curio standalone: serving {base}");
    println!("  manifests: {}", manifests.display());
    println!("  database:  {}", redact(&database_url));
    println!(
        "  sources:   {} in {} namespaces ({})",
        report.sources,
        namespaces.len(),
        namespaces.join(", ")
    );
    println!("  users ({}): {}", token_file.display(), users.join(", "));
    let commands = serve::try_commands(
        &base,
        &token_file,
        &tokens,
        &runner.rbac.current(),
        &namespaces,
        |ns| first_model(&cluster, ns),
    );
    if !commands.is_empty() {
        println!("Try:");
        for command in commands {
            println!("  {command}");
        }
    }
    println!("Edit, add or delete files under the folder: changes apply within a second or two.");

    runner.run(args.poll_interval, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    server.await.context("the API server panicked")??;
    Ok(ExitCode::SUCCESS)
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
fn first_model(
    cluster: &curio::controller::memory_cluster::MemoryCluster,
    namespace: &str,
) -> Option<String> {
    cluster
        .all_sources()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|s| s.spec.source.inline)
        .flat_map(|inline| inline.assets)
        .find(|a| a.kind == curio::catalog::AssetKind::Model)
        .map(|a| a.name)
}

#[derive(clap::Args)]
struct ControllerArgs {
    /// postgres://… or sqlite://…
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: String,
    /// Largest number of database connections.
    #[arg(long, env = "CURIO_DB_MAX_CONNECTIONS", default_value_t = 8)]
    db_max_connections: u32,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "CURIO_METRICS_ADDRESS", default_value = "0.0.0.0:9090")]
    metrics_address: std::net::SocketAddr,
    /// Name of the coordination.k8s.io Lease the replicas elect a leader on.
    #[arg(long, env = "CURIO_LEASE_NAME", default_value = "curio-controller")]
    lease_name: String,
    /// Namespace of the Lease [default: POD_NAMESPACE, else the kubeconfig's namespace].
    #[arg(long, env = "CURIO_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's name in the Lease and in Events [default: POD_NAME, else host-pid].
    #[arg(long, env = "POD_NAME")]
    replica: Option<String>,
    /// The actor recorded on the controller's audit events [default:
    /// system:serviceaccount:<POD_NAMESPACE>:<SERVICE_ACCOUNT> when both are set, else
    /// system:curio-controller].
    #[arg(long, env = "CURIO_CONTROLLER_IDENTITY")]
    controller_identity: Option<String>,
    /// Watch only these namespaces (comma-separated); all when empty.
    #[arg(long, env = "CURIO_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// CatalogSources reconciled at once.
    #[arg(long, env = "CURIO_SOURCE_CONCURRENCY", default_value_t = 8)]
    source_concurrency: u16,
    /// RefreshJobs run at once, across all namespaces.
    #[arg(long, env = "CURIO_MAX_JOBS", default_value_t = 4)]
    max_jobs: usize,
    /// RefreshJobs run at once in one namespace.
    #[arg(long, env = "CURIO_MAX_JOBS_PER_NAMESPACE", default_value_t = 2)]
    max_jobs_per_namespace: usize,
    /// URL sources may reach these ranges even where the defaults refuse them.
    #[arg(long, env = "CURIO_ALLOW_URL_CIDRS", value_delimiter = ',')]
    allow_url_cidrs: Vec<ipnet::IpNet>,
    /// URL sources may not reach these ranges (add the cluster's pod and service ranges).
    #[arg(long, env = "CURIO_DENY_URL_CIDRS", value_delimiter = ',')]
    deny_url_cidrs: Vec<ipnet::IpNet>,
    /// Connect timeout of URL sources (the total is the source's own spec.source.url.timeout).
    #[arg(long, env = "CURIO_URL_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    url_connect_timeout: std::time::Duration,
    /// How long running jobs may take to finish on shutdown before they are left to the next
    /// leader.
    #[arg(long, env = "CURIO_DRAIN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    drain_timeout: std::time::Duration,
    /// First retry delay of a failed refresh (doubles per failure).
    #[arg(long, env = "CURIO_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    retry_base: std::time::Duration,
    /// Longest retry delay.
    #[arg(long, env = "CURIO_RETRY_CAP", default_value = "5m", value_parser = humantime::parse_duration)]
    retry_cap: std::time::Duration,
    #[command(flatten)]
    webhook: WebhookArgs,
    /// Audit events older than this are deleted (by the leader, in batches).
    #[arg(long, env = "CURIO_AUDIT_RETENTION", default_value = "90d", value_parser = humantime::parse_duration)]
    audit_retention: std::time::Duration,
    /// Time between audit retention runs.
    #[arg(long, env = "CURIO_AUDIT_RETENTION_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    audit_retention_interval: std::time::Duration,
}

/// The validating admission webhook, served by every replica. Off unless a certificate source
/// is given: `--webhook-cert-dir` (cert-manager or any mounted kubernetes.io/tls Secret) or
/// `--webhook-self-managed`.
#[derive(clap::Args)]
struct WebhookArgs {
    /// HTTPS address of the webhook.
    #[arg(long, env = "CURIO_WEBHOOK_ADDRESS", default_value = "0.0.0.0:9443")]
    webhook_address: std::net::SocketAddr,
    /// Directory with tls.crt and tls.key, re-read when they change (cert-manager rotation).
    #[arg(
        long,
        env = "CURIO_WEBHOOK_CERT_DIR",
        value_name = "DIR",
        conflicts_with = "webhook_self_managed"
    )]
    webhook_cert_dir: Option<std::path::PathBuf>,
    /// Manage the webhook's own CA and certificate in a Secret and patch the caBundle of the
    /// ValidatingWebhookConfiguration.
    #[arg(long, env = "CURIO_WEBHOOK_SELF_MANAGED")]
    webhook_self_managed: bool,
    /// Secret (in the controller's namespace) holding the self-managed certificate.
    #[arg(
        long,
        env = "CURIO_WEBHOOK_SECRET",
        default_value = "curio-webhook-tls"
    )]
    webhook_secret: String,
    /// The webhook Service's name; the certificate names <service>.<namespace>.svc.
    #[arg(long, env = "CURIO_WEBHOOK_SERVICE", default_value = "curio-webhook")]
    webhook_service: String,
    /// Further DNS names for the self-managed certificate (comma-separated).
    #[arg(long, env = "CURIO_WEBHOOK_DNS_NAMES", value_delimiter = ',')]
    webhook_dns_names: Vec<String>,
    /// The ValidatingWebhookConfiguration whose caBundle the self-managed path keeps current.
    #[arg(long, env = "CURIO_WEBHOOK_CONFIGURATION", default_value = "curio")]
    webhook_configuration: String,
    /// Admit URL sources with plain http:// URLs (with a warning).
    #[arg(long, env = "CURIO_WEBHOOK_ALLOW_HTTP_URLS")]
    webhook_allow_http_urls: bool,
    /// Timeout of the webhook's SubjectAccessReviews.
    #[arg(long, env = "CURIO_WEBHOOK_SAR_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    webhook_sar_timeout: std::time::Duration,
}

async fn run_controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    use curio::controller::{
        health, job::JobSettings, kube_cluster::KubeCluster, leader, reconcile, runtime,
    };
    use curio::source::{http::UrlFetcher, policy::AddressPolicy};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    let metrics = Arc::new(curio::telemetry::Metrics::new());
    let store = connect_store(&args.database_url, args.db_max_connections).await?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let pod_namespace = std::env::var("POD_NAMESPACE").ok();
    let lease_namespace = args
        .lease_namespace
        .or_else(|| pod_namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let replica = args.replica.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "curio".into());
        format!("{host}-{}", std::process::id())
    });
    let identity = args.controller_identity.unwrap_or_else(|| {
        match (pod_namespace, std::env::var("SERVICE_ACCOUNT").ok()) {
            (Some(ns), Some(sa)) => format!("system:serviceaccount:{ns}:{sa}"),
            _ => "system:curio-controller".into(),
        }
    });
    let urls = UrlFetcher::new(
        AddressPolicy::new(args.allow_url_cidrs, args.deny_url_cidrs),
        args.url_connect_timeout,
    )?;
    let (elector, leadership) = leader::LeaseElector::new(
        client.clone(),
        leader::LeaseConfig::new(&args.lease_name, &lease_namespace, &replica),
        metrics.clone(),
    );
    let mut ctx = reconcile::Context::new(
        store.clone(),
        Arc::new(KubeCluster::new(client.clone(), Some(replica.clone()))),
        identity.clone(),
        urls,
    );
    ctx.metrics = metrics.clone();
    ctx.leadership = Some(leadership.clone());
    let settings = runtime::Settings {
        namespaces: args.watch_namespaces,
        source_concurrency: args.source_concurrency.max(1),
        jobs_global: args.max_jobs.max(1),
        jobs_per_namespace: args.max_jobs_per_namespace.max(1),
        job: JobSettings {
            retry_base: args.retry_base,
            retry_cap: args.retry_cap,
        },
        retry_base: args.retry_base,
        retry_cap: args.retry_cap,
        drain_timeout: args.drain_timeout,
    };

    let stopping = CancellationToken::new();
    let health_listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("binding {}", args.metrics_address))?;
    let health = tokio::spawn({
        let router = health::router(health::HealthState {
            store: store.clone(),
            metrics: metrics.clone(),
        });
        let stopping = stopping.clone();
        async move {
            axum::serve(health_listener, router)
                .with_graceful_shutdown(stopping.cancelled_owned())
                .await
        }
    });
    // The elector keeps renewing until the controllers have drained, then releases the Lease.
    let released = CancellationToken::new();
    let election = tokio::spawn(elector.run(released.clone().cancelled_owned()));
    tracing::info!(
        replica = %replica,
        lease = %format!("{lease_namespace}/{}", args.lease_name),
        identity = %identity,
        metrics = %args.metrics_address,
        "controller started; waiting for leadership"
    );
    let webhook = match start_webhook(
        &args.webhook,
        &client,
        &store,
        &lease_namespace,
        replica.clone(),
        metrics.clone(),
        stopping.clone(),
    )
    .await?
    {
        Some(task) => Some(task),
        None => {
            tracing::info!(
                "admission webhook off (no --webhook-cert-dir or --webhook-self-managed)"
            );
            None
        }
    };
    let retention = tokio::spawn(curio::controller::retention::run(
        store.clone(),
        curio::controller::retention::RetentionSettings {
            retention: args.audit_retention,
            interval: args.audit_retention_interval,
            batch: 1_000,
            namespace: curio::store::Namespace::new(lease_namespace.clone())
                .context("the controller's namespace")?,
            actor: identity.clone(),
        },
        leadership.clone(),
        metrics.clone(),
        stopping.clone(),
    ));
    runtime::run(
        client,
        Arc::new(ctx),
        leadership,
        settings,
        shutdown_signal(),
    )
    .await;
    released.cancel();
    election.await.context("the leader elector panicked")?;
    stopping.cancel();
    health.await.context("the health server panicked")??;
    retention.await.context("the retention worker panicked")?;
    if let Some(webhook) = webhook {
        webhook.await.context("the webhook server panicked")??;
    }
    tracing::info!("controller stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the webhook's HTTPS server (and its certificate upkeep) if a certificate source is
/// configured; it stops when `stopping` is cancelled.
async fn start_webhook(
    args: &WebhookArgs,
    client: &kube::Client,
    store: &curio::store::Store,
    namespace: &str,
    replica: String,
    metrics: std::sync::Arc<curio::telemetry::Metrics>,
    stopping: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<Result<(), curio::api::server::ServeError>>>> {
    use curio::{
        api::authz::SubjectAccessReviewer,
        controller::kube_cluster::KubeCluster,
        webhook::{self, self_managed::SelfManaged, tls},
    };
    use std::sync::Arc;

    let certificate = if let Some(dir) = &args.webhook_cert_dir {
        let dir = tls::CertDir { dir: dir.clone() };
        let cert = tls::SwappableCert::new(dir.load().with_context(|| {
            format!("loading the webhook certificate from {}", dir.dir.display())
        })?);
        tokio::spawn(dir.watch(
            cert.clone(),
            std::time::Duration::from_secs(30),
            stopping.clone(),
        ));
        cert
    } else if args.webhook_self_managed {
        let mut dns_names = vec![
            format!("{}.{namespace}.svc", args.webhook_service),
            format!("{}.{namespace}.svc.cluster.local", args.webhook_service),
        ];
        dns_names.extend(args.webhook_dns_names.iter().cloned());
        let manager = SelfManaged {
            namespace: namespace.to_owned(),
            secret_name: args.webhook_secret.clone(),
            dns_names,
            webhook_configuration: args.webhook_configuration.clone(),
        };
        let issued = manager
            .ensure(client)
            .await
            .context("preparing the self-managed webhook certificate")?;
        let cert = tls::SwappableCert::new(
            tls::certified_key(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
                .context("loading the self-managed webhook certificate")?,
        );
        tokio::spawn(manager.maintain(
            client.clone(),
            cert.clone(),
            std::time::Duration::from_secs(600),
            stopping.clone(),
        ));
        cert
    } else {
        return Ok(None);
    };
    let handler = Arc::new(webhook::Webhook {
        store: store.clone(),
        authorizer: Arc::new(SubjectAccessReviewer::new(
            client.clone(),
            args.webhook_sar_timeout,
        )),
        cluster: Some(Arc::new(KubeCluster::new(client.clone(), Some(replica)))),
        allow_http: args.webhook_allow_http_urls,
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(args.webhook_address)
        .await
        .with_context(|| format!("binding the webhook address {}", args.webhook_address))?;
    let config = certificate.server_config()?;
    tracing::info!(address = %args.webhook_address, path = webhook::VALIDATE_PATH, "admission webhook serving");
    Ok(Some(tokio::spawn(curio::api::server::serve_tls(
        listener,
        webhook::router(handler),
        config,
        Vec::new(),
        stopping.cancelled_owned(),
    ))))
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

/// The Kubernetes client, connected on first use.
async fn kube_client(slot: &mut Option<kube::Client>) -> anyhow::Result<kube::Client> {
    if let Some(client) = slot {
        return Ok(client.clone());
    }
    let client = kube::Client::try_default().await.context(
        "connecting to Kubernetes for TokenReview/SubjectAccessReview (or pass --token-file and --rbac-manifests)",
    )?;
    *slot = Some(client.clone());
    Ok(client)
}

async fn run_api(args: ApiArgs) -> anyhow::Result<ExitCode> {
    use curio::api::{self, authn, authz};
    use std::sync::Arc;

    let metrics = Arc::new(curio::telemetry::Metrics::new());
    let store = connect_store(&args.database_url, args.db_max_connections).await?;
    // Connected only if a TokenReview or SubjectAccessReview backend is chosen.
    let mut cluster: Option<kube::Client> = None;
    let authn: Arc<dyn authn::Authenticator> = match &args.token_file {
        Some(path) => Arc::new(authn::StaticTokens::load(path)?),
        None => Arc::new(authn::TokenReviewAuthenticator::new(
            kube_client(&mut cluster).await?,
            authn::TokenReviewOptions {
                valid_ttl: args.authn_cache_ttl,
                invalid_ttl: args.authn_cache_ttl / 6,
                timeout: args.review_timeout,
                ..Default::default()
            },
            metrics.clone(),
        )),
    };
    let authz: Arc<dyn authz::Authorizer> = match &args.rbac_manifests {
        Some(dir) => Arc::new(authz::manifests::load_dir(dir)?),
        None => Arc::new(authz::CachedAuthorizer::new(
            authz::SubjectAccessReviewer::new(
                kube_client(&mut cluster).await?,
                args.review_timeout,
            ),
            authz::CacheOptions {
                allowed_ttl: args.authz_allowed_ttl,
                denied_ttl: args.authz_denied_ttl,
                capacity: args.authz_cache_size,
            },
            metrics.clone(),
        )),
    };
    let router = api::router(api::ApiState {
        store,
        authn,
        authz,
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => {
            tracing::info!(listen = %args.listen, "serving the API over HTTPS");
            api::server::serve_https(
                listener,
                router,
                api::server::TlsSettings {
                    cert,
                    key,
                    proxy_client_ca: args.proxy_client_ca,
                    proxy_allowed_names: args.proxy_allowed_names,
                },
                shutdown_signal(),
            )
            .await?;
        }
        _ => {
            tracing::info!(listen = %args.listen, "serving the API over HTTP");
            api::server::serve_http(listener, router, shutdown_signal()).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    curio::telemetry::init_logging();
    match cli.command {
        Command::Crds { check, write, dir } => crds(check, write, &dir),
        Command::Api(args) => run_api(args).await,
        Command::Controller(args) => run_controller(args).await,
        Command::Standalone(args) => run_standalone(args).await,
        Command::Migrate { database_url } => {
            let applied = curio::store::migrate(&database_url)
                .await
                .context("running migrations")?;
            tracing::info!(applied, "migrations complete");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn crds(check: bool, write: bool, dirs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    use curio::crd::generate;
    if check {
        let mut stale = Vec::new();
        for dir in dirs {
            let found = generate::stale_files(dir)?;
            if found.is_empty() {
                println!("{} is up to date", dir.display());
            }
            stale.extend(found);
        }
        if stale.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for path in stale {
            eprintln!("{} differs from the Rust types", path.display());
        }
        eprintln!("run `cargo run -- crds --write` and commit the result");
        return Ok(ExitCode::FAILURE);
    }
    if write {
        for dir in dirs {
            for path in generate::write_all(dir)? {
                println!("wrote {}", path.display());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let docs: Vec<String> = generate::manifests()?.into_iter().map(|m| m.yaml).collect();
    print!("{}", docs.join("---\n"));
    Ok(ExitCode::SUCCESS)
}
