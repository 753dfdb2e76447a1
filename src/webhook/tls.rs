//! The webhook's TLS: a certificate that can be swapped while serving (cert-manager rotates
//! the mounted files; the self-managed path renews its own), so rotation needs no restart.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use rustls::{
    ServerConfig,
    crypto::ring::sign::any_supported_type,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_util::sync::CancellationToken;

use crate::server::ServeError;

/// The certificate served now.
#[derive(Debug)]
pub struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

/// A certified key from PEM texts.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, ServeError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::PemText {
            what: "certificate",
            source,
        })?;
    if certs.is_empty() {
        return Err(ServeError::NoCertificate {
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| ServeError::PemText {
        what: "key",
        source,
    })?;
    let signing = any_supported_type(&key)?;
    Ok(CertifiedKey::new(certs, signing))
}

impl SwappableCert {
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(key)),
        })
    }

    pub fn set(&self, key: CertifiedKey) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(key);
    }

    /// A server configuration that always presents the current certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, ServeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

/// `tls.crt` and `tls.key` in a directory (a mounted `kubernetes.io/tls` Secret).
#[derive(Clone, Debug)]
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    fn paths(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("tls.crt"), self.dir.join("tls.key"))
    }

    pub fn read(&self) -> Result<(Vec<u8>, Vec<u8>), ServeError> {
        let (cert, key) = self.paths();
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ServeError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok((read(&cert)?, read(&key)?))
    }

    pub fn load(&self) -> Result<CertifiedKey, ServeError> {
        let (cert, key) = self.read()?;
        certified_key(&cert, &key)
    }

    /// Re-reads the files every `period` and swaps in a changed pair; a half-written or bad
    /// pair is logged and the current certificate kept.
    pub async fn watch(
        self,
        target: Arc<SwappableCert>,
        period: Duration,
        stop: CancellationToken,
    ) {
        let mut last = self.read().ok();
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.cancelled() => return,
            }
            let Ok(now) = self.read() else { continue };
            if last.as_ref() == Some(&now) {
                continue;
            }
            match certified_key(&now.0, &now.1) {
                Ok(key) => {
                    target.set(key);
                    tracing::info!(dir = %self.dir.display(), "webhook certificate reloaded");
                    last = Some(now);
                }
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "webhook certificate files changed but do not load; keeping the current one");
                }
            }
        }
    }
}
