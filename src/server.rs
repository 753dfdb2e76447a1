//! Serving the router: plain HTTP, or HTTPS whose connections may present a client certificate.
//! A certificate signed by the proxy CA with an allowed common name marks its connection as a
//! verified authenticating proxy (kube-apiserver's request-header convention); every other
//! connection's identity headers are ignored.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use axum::{Router, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::access::proxy::{
    AllowedNames, ProxyClientVerifier, ProxyHeaders, ProxyTrust, ProxyTrustError,
    RequestHeaderConfig,
};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// PEM text handed over in memory (a self-managed certificate).
    #[error("TLS configuration: {what}: {source}")]
    PemText {
        what: &'static str,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS configuration: {what}: no PEM certificate found")]
    NoCertificate { what: &'static str },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS configuration: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS configuration: {0}")]
    ProxyTrust(#[from] ProxyTrustError),
}

#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA that signs the authenticating proxy's client certificate; `None` disables the proxy.
    pub proxy_client_ca: Option<PathBuf>,
    /// Common names accepted from that CA.
    pub proxy_allowed_names: Vec<String>,
}

fn certificates(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| ServeError::Pem {
            path: path.clone(),
            source,
        })
}

/// The proxies `settings` trusts by flag (none without `proxy_client_ca`); the cluster's
/// ConfigMap may add its own later ([`ProxyTrust::set_cluster`]).
pub fn proxy_trust(settings: &TlsSettings) -> Result<Arc<ProxyTrust>, ServeError> {
    let flags = match &settings.proxy_client_ca {
        Some(path) => Some(RequestHeaderConfig {
            ca_pem: std::fs::read_to_string(path).map_err(|source| ServeError::Read {
                path: path.clone(),
                source,
            })?,
            allowed: AllowedNames::Listed(settings.proxy_allowed_names.clone()),
            headers: ProxyHeaders::default(),
        }),
        None => None,
    };
    Ok(ProxyTrust::new(flags)?)
}

/// The serving certificate from `settings`; client certificates are checked against `trust`.
pub fn server_config(
    settings: &TlsSettings,
    trust: &Arc<ProxyTrust>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|source| ServeError::Pem {
        path: settings.key.clone(),
        source,
    })?;
    config_with(certificates(&settings.cert)?, key, trust)
}

/// [`server_config`] for a certificate held in memory (PEM texts).
pub fn server_config_pem(
    cert_pem: &str,
    key_pem: &str,
    trust: &Arc<ProxyTrust>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::PemText {
            what: "certificate",
            source,
        })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| {
        ServeError::PemText {
            what: "key",
            source,
        }
    })?;
    config_with(certs, key, trust)
}

fn config_with(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    trust: &Arc<ProxyTrust>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        // Ordinary clients present no certificate; a presented one must chain to a proxy CA.
        .with_client_cert_verifier(ProxyClientVerifier::new(trust.clone()));
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves plain HTTP until `shutdown` resolves, then drains in-flight requests.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::from)
}

/// Serves HTTPS until `shutdown` resolves, then drains in-flight connections (up to 30 s).
pub async fn serve_https(
    listener: TcpListener,
    router: Router,
    settings: TlsSettings,
    trust: Arc<ProxyTrust>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = server_config(&settings, &trust)?;
    serve_tls(listener, router, config, Some(trust), shutdown).await
}

/// Serves HTTPS with `config` until `shutdown` resolves, then drains in-flight connections
/// (up to 30 s). A client certificate `trust` identifies marks its connection as a verified
/// proxy.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    trust: Option<Arc<ProxyTrust>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let trust = trust.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let proxy = match (&trust, tls.get_ref().1.peer_certificates()) {
                (Some(trust), Some(chain)) => trust.identify(chain),
                _ => None,
            };
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                if let Some(proxy) = &proxy {
                    request.extensions_mut().insert(proxy.clone());
                }
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open after 30 s; closing");
        }
    }
    Ok(())
}
