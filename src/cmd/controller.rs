//! `curio controller`: the leader-elected CatalogSource and RefreshJob controllers, the audit
//! retention worker, the health and metrics endpoints, and (on every replica) the admission
//! webhook.

use std::{process::ExitCode, sync::Arc};

use anyhow::Context as _;
use curio::{
    access::authz::SubjectAccessReviewer,
    cluster::{
        kubernetes::KubeCluster,
        leader::{LeaderMetrics, LeaseConfig, LeaseElector},
        policies::{Policies, WatchedPolicies},
    },
    controller::{
        health::{self, HealthState, PoolMetrics},
        job::JobSettings,
        metrics::ControllerMetrics,
        reconcile::Context,
        retention::{self, RetentionSettings},
        runtime,
    },
    server::{self, ServeError},
    source::{http::UrlFetcher, policy::AddressPolicy},
    store::{Namespace, Store},
    telemetry,
    webhook::{self, metrics::AdmissionMetrics, self_managed::SelfManaged, tls},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{connect_store, shutdown_signal};

#[derive(clap::Args)]
pub struct ControllerArgs {
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
    /// The kill switch: pause every namespace's refreshes (sources keep their last good
    /// catalog and say `Reconciling=False/PausedByPolicy`; RefreshJobs wait). Restart without
    /// it to resume; jobs then start at the pool's normal pace.
    #[arg(long, env = "CURIO_PAUSE_REFRESHES")]
    pause_refreshes: bool,
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
pub struct WebhookArgs {
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

/// Where this replica runs and who it is, from flags and the pod's environment.
struct Identity {
    lease_namespace: String,
    replica: String,
    /// The actor of the controller's audit events.
    actor: String,
}

impl Identity {
    fn resolve(args: &ControllerArgs, client: &kube::Client) -> Self {
        let pod_namespace = std::env::var("POD_NAMESPACE").ok();
        let lease_namespace = args
            .lease_namespace
            .clone()
            .or_else(|| pod_namespace.clone())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let replica = args.replica.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "curio".into());
            format!("{host}-{}", std::process::id())
        });
        let actor = args.controller_identity.clone().unwrap_or_else(|| {
            match (pod_namespace, std::env::var("SERVICE_ACCOUNT").ok()) {
                (Some(ns), Some(sa)) => format!("system:serviceaccount:{ns}:{sa}"),
                _ => "system:curio-controller".into(),
            }
        });
        Self {
            lease_namespace,
            replica,
            actor,
        }
    }
}

impl ControllerArgs {
    fn runtime_settings(&self) -> runtime::Settings {
        runtime::Settings {
            namespaces: self.watch_namespaces.clone(),
            source_concurrency: self.source_concurrency.max(1),
            jobs_global: self.max_jobs.max(1),
            jobs_per_namespace: self.max_jobs_per_namespace.max(1),
            job: JobSettings {
                retry_base: self.retry_base,
                retry_cap: self.retry_cap,
            },
            retry_base: self.retry_base,
            retry_cap: self.retry_cap,
            drain_timeout: self.drain_timeout,
        }
    }
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let mut registry = telemetry::registry();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    let leader_metrics = LeaderMetrics::register(&mut registry);
    let admission_metrics = AdmissionMetrics::register(&mut registry);
    let pool_metrics = PoolMetrics::register(&mut registry);
    let registry = Arc::new(registry);

    let store = connect_store(&args.database_url, args.db_max_connections).await?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let me = Identity::resolve(&args, &client);
    let urls = UrlFetcher::new(
        AddressPolicy::new(args.allow_url_cidrs.clone(), args.deny_url_cidrs.clone()),
        args.url_connect_timeout,
    )?;
    let (elector, leadership) = LeaseElector::new(
        client.clone(),
        LeaseConfig::new(&args.lease_name, &me.lease_namespace, &me.replica),
        leader_metrics,
    );
    // Every replica watches the policies: the webhook (served by all) judges by them too.
    let policies = Policies::new(WatchedPolicies::start(&client), args.pause_refreshes);
    controller_metrics
        .kill_switch
        .set(i64::from(args.pause_refreshes));
    if args.pause_refreshes {
        tracing::warn!("--pause-refreshes: every namespace's refreshes are paused");
    }
    let ctx = Context::new(
        store.clone(),
        Arc::new(KubeCluster::new(client.clone(), Some(me.replica.clone()))),
        me.actor.clone(),
        urls,
    )
    .with_metrics(controller_metrics.clone())
    .with_leadership(leadership.clone())
    .with_policies(policies.clone());

    let stopping = CancellationToken::new();
    let health = serve_health(
        &args,
        HealthState {
            store: store.clone(),
            pool: pool_metrics,
            registry,
        },
        stopping.clone(),
    )
    .await?;
    // The elector keeps renewing until the controllers have drained, then releases the Lease.
    let released = CancellationToken::new();
    let election = tokio::spawn(elector.run(released.clone().cancelled_owned()));
    tracing::info!(
        replica = %me.replica,
        lease = %format!("{}/{}", me.lease_namespace, args.lease_name),
        identity = %me.actor,
        metrics = %args.metrics_address,
        "controller started; waiting for leadership"
    );
    let webhook = start_webhook(
        &args.webhook,
        &client,
        &store,
        &me,
        policies,
        admission_metrics,
        stopping.clone(),
    )
    .await?;
    if webhook.is_none() {
        tracing::info!("admission webhook off (no --webhook-cert-dir or --webhook-self-managed)");
    }
    let retention = tokio::spawn(retention::run(
        store.clone(),
        RetentionSettings {
            retention: args.audit_retention,
            interval: args.audit_retention_interval,
            batch: 1_000,
            namespace: Namespace::new(me.lease_namespace.clone())
                .context("the controller's namespace")?,
            actor: me.actor.clone(),
        },
        leadership.clone(),
        controller_metrics,
        stopping.clone(),
    ));
    runtime::run(
        client,
        Arc::new(ctx),
        leadership,
        args.runtime_settings(),
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

/// `/healthz`, `/readyz` and `/metrics` on `--metrics-address`, until `stopping`.
async fn serve_health(
    args: &ControllerArgs,
    state: HealthState,
    stopping: CancellationToken,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("binding {}", args.metrics_address))?;
    let router = health::router(state);
    Ok(tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stopping.cancelled_owned())
            .await
    }))
}

/// The webhook's certificate: mounted files re-read as they rotate, or a self-managed CA
/// and certificate kept in a Secret. `None` when neither is configured.
async fn webhook_certificate(
    args: &WebhookArgs,
    client: &kube::Client,
    namespace: &str,
    stopping: &CancellationToken,
) -> anyhow::Result<Option<Arc<tls::SwappableCert>>> {
    if let Some(dir) = &args.webhook_cert_dir {
        let dir = tls::CertDir { dir: dir.clone() };
        let cert = tls::SwappableCert::new(dir.load().with_context(|| {
            format!("loading the webhook certificate from {}", dir.dir.display())
        })?);
        tokio::spawn(dir.watch(
            cert.clone(),
            std::time::Duration::from_secs(30),
            stopping.clone(),
        ));
        return Ok(Some(cert));
    }
    if !args.webhook_self_managed {
        return Ok(None);
    }
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
    Ok(Some(cert))
}

/// Starts the webhook's HTTPS server if a certificate source is configured; it stops when
/// `stopping` is cancelled.
async fn start_webhook(
    args: &WebhookArgs,
    client: &kube::Client,
    store: &Store,
    me: &Identity,
    policies: Policies,
    metrics: AdmissionMetrics,
    stopping: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<Result<(), ServeError>>>> {
    let Some(certificate) =
        webhook_certificate(args, client, &me.lease_namespace, &stopping).await?
    else {
        return Ok(None);
    };
    let handler = Arc::new(webhook::Webhook {
        store: store.clone(),
        authorizer: Arc::new(SubjectAccessReviewer::new(
            client.clone(),
            args.webhook_sar_timeout,
        )),
        cluster: Some(Arc::new(KubeCluster::new(
            client.clone(),
            Some(me.replica.clone()),
        ))),
        allow_http: args.webhook_allow_http_urls,
        policies: Some(policies),
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(args.webhook_address)
        .await
        .with_context(|| format!("binding the webhook address {}", args.webhook_address))?;
    let config = certificate.server_config()?;
    tracing::info!(address = %args.webhook_address, path = webhook::VALIDATE_PATH, "admission webhook serving");
    Ok(Some(tokio::spawn(server::serve_tls(
        listener,
        webhook::router(handler),
        config,
        None,
        stopping.cancelled_owned(),
    ))))
}
