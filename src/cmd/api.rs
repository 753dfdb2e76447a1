//! `curio api`: the read-only HTTP API, authenticating with TokenReview (or a token file) and
//! authorizing with SubjectAccessReview (or RBAC manifests).

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use curio::{
    access::{authn, authz, metrics::AccessMetrics},
    api, server, telemetry,
};

use super::{connect_store, shutdown_signal};

#[derive(clap::Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "CURIO_API_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Address of /metrics (Prometheus), kept off the API port: its series name tenants.
    #[arg(
        long,
        env = "CURIO_API_METRICS_ADDRESS",
        default_value = "0.0.0.0:9091"
    )]
    metrics_address: std::net::SocketAddr,
    #[command(flatten)]
    rate_limits: super::RateLimitArgs,
    #[command(flatten)]
    response_cache: super::ResponseCacheArgs,
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
    /// by this CA (PEM) and named in --proxy-allowed-names, on the HTTPS listeners.
    #[arg(
        long,
        env = "CURIO_PROXY_CLIENT_CA",
        requires = "proxy_allowed_names",
        value_name = "FILE"
    )]
    proxy_client_ca: Option<PathBuf>,
    /// Common names of the authenticating proxy's client certificates.
    #[arg(
        long,
        env = "CURIO_PROXY_ALLOWED_NAMES",
        value_delimiter = ',',
        value_name = "NAMES"
    )]
    proxy_allowed_names: Vec<String>,
    /// Also serve HTTPS here, HOST:PORT, for the cluster's aggregation layer (the APIService
    /// v1alpha1.catalog.curio.dev). With --tls-cert that certificate, else one made at start.
    #[arg(long, env = "CURIO_API_SECURE_LISTEN", value_name = "HOST:PORT")]
    secure_listen: Option<std::net::SocketAddr>,
    /// On the HTTPS listeners, also trust the front proxy the cluster names in
    /// kube-system/extension-apiserver-authentication (watched for rotation).
    #[arg(long, env = "CURIO_FRONT_PROXY_FROM_CLUSTER", default_value_t = true, action = clap::ArgAction::Set)]
    front_proxy_from_cluster: bool,
}

pub async fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let mut registry = telemetry::registry();
    let access_metrics = AccessMetrics::register(&mut registry);
    let api_metrics = api::ApiMetrics::register(&mut registry);
    let responses = args.response_cache.cache(&mut registry);
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
            access_metrics.clone(),
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
            access_metrics.clone(),
        )),
    };
    // With a cluster at hand, CatalogPolicies set namespaces' rate limits.
    let policies = cluster.as_ref().map(|client| {
        curio::cluster::policies::Policies::new(
            curio::cluster::policies::WatchedPolicies::start(client),
            false,
        )
    });
    let registry = Arc::new(registry);
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("binding {}", args.metrics_address))?;
    tracing::info!(address = %args.metrics_address, "serving /metrics");
    let metrics = tokio::spawn(server::serve_http(
        metrics_listener,
        telemetry::metrics_router(registry.clone()),
        shutdown_signal(),
    ));
    let stop_streams = tokio_util::sync::CancellationToken::new();
    // At the signal, watch streams end first, so the drain does not wait on them.
    let shutdown = {
        let stop_streams = stop_streams.clone();
        async move {
            shutdown_signal().await;
            stop_streams.cancel();
        }
    };
    let secure_shutdown = {
        let stop_streams = stop_streams.clone();
        async move { stop_streams.cancelled().await }
    };
    let router = api::router(api::ApiState {
        store,
        authn,
        authz,
        metrics: api_metrics,
        access_metrics,
        registry,
        notices: Arc::new(api::notices::NoNotices),
        rate_limits: args.rate_limits.rate_limits(policies.clone()),
        flows: args.rate_limits.flow_limits(),
        responses,
        watch: api::kube::watch::WatchSettings::default(),
        stop_streams,
        policies,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::TlsSettings {
            cert: cert.clone(),
            key: key.clone(),
            proxy_client_ca: args.proxy_client_ca.clone(),
            proxy_allowed_names: args.proxy_allowed_names.clone(),
        }),
        _ => None,
    };
    let trust = server::proxy_trust(&server::TlsSettings {
        cert: PathBuf::new(),
        key: PathBuf::new(),
        proxy_client_ca: args.proxy_client_ca.clone(),
        proxy_allowed_names: args.proxy_allowed_names.clone(),
    })?;
    if args.front_proxy_from_cluster && (tls.is_some() || args.secure_listen.is_some()) {
        match kube_client(&mut cluster).await {
            Ok(client) => curio::cluster::front_proxy::watch(client, trust.clone()),
            Err(e) => tracing::warn!(error = %e, "not reading the cluster's front proxy"),
        }
    }
    let secure = match args.secure_listen {
        Some(address) => {
            let config = match &tls {
                Some(settings) => server::server_config(settings, &trust)?,
                None => {
                    let names = vec!["localhost".to_owned(), address.ip().to_string()];
                    let issued = curio::webhook::certs::issue_named(
                        &names,
                        chrono::Utc::now(),
                        "curio-api",
                    )?;
                    server::server_config_pem(&issued.cert_pem, &issued.key_pem, &trust)?
                }
            };
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding {address}"))?;
            tracing::info!(listen = %address, "serving the API over HTTPS for the aggregation layer");
            Some(tokio::spawn(server::serve_tls(
                listener,
                router.clone(),
                config,
                Some(trust.clone()),
                secure_shutdown,
            )))
        }
        None => None,
    };
    match tls {
        Some(settings) => {
            tracing::info!(listen = %args.listen, "serving the API over HTTPS");
            server::serve_https(listener, router, settings, trust, shutdown).await?;
        }
        None => {
            tracing::info!(listen = %args.listen, "serving the API over HTTP");
            server::serve_http(listener, router, shutdown).await?;
        }
    }
    if let Some(secure) = secure {
        secure.await.context("the HTTPS server panicked")??;
    }
    metrics.await.context("the metrics server panicked")??;
    Ok(ExitCode::SUCCESS)
}

/// The Kubernetes client, connected on first use: only the TokenReview and
/// SubjectAccessReview backends need one.
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
