//! Trusted authenticating proxies (the request-header convention of kube-apiserver's
//! aggregation layer): which client certificates may vouch for a user, and in which headers.
//!
//! Two sources, each a CA, a rule for the certificate's common name, and header names:
//! `curio api`'s flags (`--proxy-client-ca`, `--proxy-allowed-names`), and the cluster's
//! `kube-system/extension-apiserver-authentication` ConfigMap, which is watched and may rotate.
//! A connection's certificate is checked against each; the first that chains it and allows its
//! name decides the headers its requests are read with.

use std::sync::{Arc, RwLock};

use rustls::{
    DistinguishedName, RootCertStore, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{CertificateDer, UnixTime, pem::PemObject};

pub const DEFAULT_USERNAME_HEADER: &str = "x-remote-user";
pub const DEFAULT_GROUP_HEADER: &str = "x-remote-group";
pub const DEFAULT_EXTRA_PREFIX: &str = "x-remote-extra-";

#[derive(Debug, thiserror::Error)]
pub enum ProxyTrustError {
    #[error("the request-header CA: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("the request-header CA holds no certificate")]
    NoCertificate,
    #[error("the request-header CA: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the request-header CA: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{key}: {message}")]
    Field { key: String, message: String },
}

/// The header names a proxy's requests are read with (lower case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHeaders {
    pub username: Vec<String>,
    pub group: Vec<String>,
    pub extra_prefixes: Vec<String>,
}

impl Default for ProxyHeaders {
    fn default() -> Self {
        Self {
            username: vec![DEFAULT_USERNAME_HEADER.into()],
            group: vec![DEFAULT_GROUP_HEADER.into()],
            extra_prefixes: vec![DEFAULT_EXTRA_PREFIX.into()],
        }
    }
}

impl ProxyHeaders {
    /// Whether `name` (lower case) is one of these identity headers.
    pub fn carries(&self, name: &str) -> bool {
        self.username.iter().any(|h| h == name)
            || self.group.iter().any(|h| h == name)
            || self
                .extra_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    }
}

/// Which common names a CA's certificates may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedNames {
    /// Only these (the flags' rule: an empty list allows none).
    Listed(Vec<String>),
    /// Any certificate the CA signed (the ConfigMap's rule when its list is empty, as
    /// k8s.io/apiserver reads it).
    Any,
}

/// One source of trust, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeaderConfig {
    pub ca_pem: String,
    pub allowed: AllowedNames,
    pub headers: ProxyHeaders,
}

/// The ConfigMap's keys, parsed (values are JSON string arrays, as kube-apiserver writes them).
pub fn from_configmap(
    data: &std::collections::BTreeMap<String, String>,
) -> Result<Option<RequestHeaderConfig>, ProxyTrustError> {
    let Some(ca_pem) = data
        .get("requestheader-client-ca-file")
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let list = |key: &str| -> Result<Vec<String>, ProxyTrustError> {
        match data.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(Vec::new()),
            Some(raw) => {
                serde_json::from_str::<Vec<String>>(raw).map_err(|e| ProxyTrustError::Field {
                    key: key.into(),
                    message: format!("not a JSON list of strings: {e}"),
                })
            }
        }
    };
    let lower = |v: Vec<String>, default: &str| -> Vec<String> {
        if v.is_empty() {
            vec![default.to_owned()]
        } else {
            v.into_iter().map(|h| h.to_ascii_lowercase()).collect()
        }
    };
    let names = list("requestheader-allowed-names")?;
    Ok(Some(RequestHeaderConfig {
        ca_pem: ca_pem.clone(),
        allowed: if names.is_empty() {
            AllowedNames::Any
        } else {
            AllowedNames::Listed(names)
        },
        headers: ProxyHeaders {
            username: lower(
                list("requestheader-username-headers")?,
                DEFAULT_USERNAME_HEADER,
            ),
            group: lower(list("requestheader-group-headers")?, DEFAULT_GROUP_HEADER),
            extra_prefixes: lower(
                list("requestheader-extra-headers-prefix")?,
                DEFAULT_EXTRA_PREFIX,
            ),
        },
    }))
}

/// One source, ready to verify.
struct Source {
    verifier: Arc<dyn ClientCertVerifier>,
    allowed: AllowedNames,
    headers: Arc<ProxyHeaders>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("allowed", &self.allowed)
            .field("headers", &self.headers)
            .finish()
    }
}

fn source(config: &RequestHeaderConfig) -> Result<Source, ProxyTrustError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let mut any = false;
    for cert in CertificateDer::pem_slice_iter(config.ca_pem.as_bytes()) {
        roots.add(cert?)?;
        any = true;
    }
    if !any {
        return Err(ProxyTrustError::NoCertificate);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()?;
    Ok(Source {
        verifier,
        allowed: config.allowed.clone(),
        headers: Arc::new(config.headers.clone()),
    })
}

/// A proxy this connection's certificate was verified as.
#[derive(Clone, Debug)]
pub struct VerifiedProxy {
    pub common_name: String,
    pub headers: Arc<ProxyHeaders>,
}

/// The trusted proxies now: the flags' source, and the cluster's (replaced on rotation).
#[derive(Debug, Default)]
pub struct ProxyTrust {
    flags: Option<Source>,
    cluster: RwLock<Option<Arc<Source>>>,
}

impl ProxyTrust {
    pub fn new(flags: Option<RequestHeaderConfig>) -> Result<Arc<Self>, ProxyTrustError> {
        Ok(Arc::new(Self {
            flags: flags.as_ref().map(source).transpose()?,
            cluster: RwLock::new(None),
        }))
    }

    /// Replaces the cluster's source (`None`: the ConfigMap no longer names a CA).
    pub fn set_cluster(&self, config: Option<&RequestHeaderConfig>) -> Result<(), ProxyTrustError> {
        let next = config.map(source).transpose()?.map(Arc::new);
        *self
            .cluster
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = next;
        Ok(())
    }

    fn cluster(&self) -> Option<Arc<Source>> {
        self.cluster
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn is_configured(&self) -> bool {
        self.flags.is_some() || self.cluster().is_some()
    }

    /// Who a presented chain vouches as: the first source that verifies it and allows its
    /// common name.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Option<VerifiedProxy> {
        let (end_entity, intermediates) = chain.split_first()?;
        let common_name = common_name(end_entity)?;
        let cluster = self.cluster();
        let sources = self.flags.iter().chain(cluster.as_deref());
        for source in sources {
            let verified = source
                .verifier
                .verify_client_cert(end_entity, intermediates, UnixTime::now())
                .is_ok();
            let allowed = match &source.allowed {
                AllowedNames::Any => true,
                AllowedNames::Listed(names) => names.contains(&common_name),
            };
            if verified && allowed {
                return Some(VerifiedProxy {
                    common_name,
                    headers: source.headers.clone(),
                });
            }
        }
        None
    }
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()
        .map(str::to_owned)
}

/// The TLS layer's client verifier over [`ProxyTrust`]: a client may present no certificate
/// (ordinary callers); a presented one must chain to one of the trusted CAs.
#[derive(Debug)]
pub struct ProxyClientVerifier {
    trust: Arc<ProxyTrust>,
    schemes: Vec<SignatureScheme>,
}

impl ProxyClientVerifier {
    pub fn new(trust: Arc<ProxyTrust>) -> Arc<Self> {
        let schemes = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes();
        Arc::new(Self { trust, schemes })
    }
}

impl ClientCertVerifier for ProxyClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.trust.is_configured()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let cluster = self.trust.cluster();
        let mut last = rustls::Error::General("no request-header CA is configured".into());
        for source in self.trust.flags.iter().chain(cluster.as_deref()) {
            match source
                .verifier
                .verify_client_cert(end_entity, intermediates, now)
            {
                Ok(verified) => return Ok(verified),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_reads_as_kube_apiserver_writes_it() {
        let data = [
            (
                "requestheader-client-ca-file",
                "-----BEGIN CERTIFICATE-----\n",
            ),
            ("requestheader-allowed-names", "[\"front-proxy-client\"]"),
            ("requestheader-username-headers", "[\"X-Remote-User\"]"),
            ("requestheader-group-headers", "[\"X-Remote-Group\"]"),
            (
                "requestheader-extra-headers-prefix",
                "[\"X-Remote-Extra-\"]",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = from_configmap(&data).unwrap().unwrap();
        assert_eq!(
            config.allowed,
            AllowedNames::Listed(vec!["front-proxy-client".into()])
        );
        assert_eq!(config.headers, ProxyHeaders::default());
    }

    #[test]
    fn an_empty_name_list_allows_any_name_and_no_ca_means_no_proxy() {
        let mut data = std::collections::BTreeMap::new();
        assert_eq!(from_configmap(&data).unwrap(), None);
        data.insert("requestheader-client-ca-file".into(), "PEM".into());
        data.insert("requestheader-allowed-names".into(), "[]".into());
        assert_eq!(
            from_configmap(&data).unwrap().unwrap().allowed,
            AllowedNames::Any
        );
        data.insert("requestheader-allowed-names".into(), "front-proxy".into());
        assert!(
            from_configmap(&data).is_err(),
            "not JSON: refused, not guessed"
        );
    }
}
