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
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::access::identity::VerifiedProxy;

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

pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.proxy_client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert)?;
            }
            // Ordinary clients present no certificate; a presented one must chain to the CA.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|source| ServeError::Pem {
        path: settings.key.clone(),
        source,
    })?;
    let mut config = builder.with_single_cert(certificates(&settings.cert)?, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The common name of a verified client certificate, if it is one of `allowed`.
fn proxy_identity(cert: &CertificateDer<'_>, allowed: &[String]) -> Option<VerifiedProxy> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let common_name = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    allowed
        .contains(&common_name)
        .then_some(VerifiedProxy { common_name })
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
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = server_config(&settings)?;
    serve_tls(
        listener,
        router,
        config,
        settings.proxy_allowed_names,
        shutdown,
    )
    .await
}

/// Serves HTTPS with `config` until `shutdown` resolves, then drains in-flight connections
/// (up to 30 s). Client certificates whose common name is in `proxy_allowed_names` mark their
/// connection as a verified proxy.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    proxy_allowed_names: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(config);
    let allowed = Arc::new(proxy_allowed_names);
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
        let allowed = allowed.clone();
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
            let proxy = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| proxy_identity(cert, &allowed));
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
