//! Getting a source's content. A source never reads another namespace.

use std::time::Duration;

use crate::{
    catalog::Asset,
    crd::{CatalogSource, RegistrySync, SecretRef, SourceSpec, UrlSource},
    source::{
        http::{Credentials, UrlError, UrlFetcher, UrlRequest, UrlResponse},
        registry::RegistryError,
    },
};

use crate::{
    cluster::{Cluster, ClusterError},
    decisions::duration::parse_go_duration,
};

const DEFAULT_URL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a fetch produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Assets written in the resource itself (still validated like a document).
    Inline(Vec<Asset>),
    /// A catalog document's bytes, with the ETag a URL source sent.
    Document {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
    /// The URL source answered 304 to the last ETag: nothing to do.
    NotModified,
    /// An MCP registry's servers as one registry answer, and where the next sync starts.
    Registry { bytes: Vec<u8>, state: RegistrySync },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Only a change to the spec or the referenced object fixes it.
    #[error("ConfigMap {name:?} not found in namespace {namespace:?}")]
    ConfigMapMissing { namespace: String, name: String },
    #[error("ConfigMap {name:?} has no key {key:?} (it has: {available})")]
    KeyMissing {
        name: String,
        key: String,
        available: String,
    },
    #[error("Secret {name:?} not found in namespace {namespace:?}")]
    SecretMissing { namespace: String, name: String },
    #[error("Secret {0:?} has neither `token` nor `username` and `password`")]
    SecretIncomplete(String),
    #[error("fetching the URL: {0}")]
    Url(#[from] UrlError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reading what a registry source already holds; a retry may fix it.
    #[error("reading the source's servers from the store: {0}")]
    Store(String),
    #[error("{0}")]
    Unsupported(String),
    /// A retry may fix it.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl FetchError {
    /// Whether retrying without a change could help.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Cluster(_) | FetchError::Store(_) => true,
            FetchError::Url(e) => e.is_transient(),
            FetchError::Registry(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The Kubernetes-style reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::ConfigMapMissing { .. } | FetchError::KeyMissing { .. } => {
                "ConfigMapNotFound"
            }
            FetchError::SecretMissing { .. } | FetchError::SecretIncomplete(_) => "SecretNotFound",
            FetchError::Url(UrlError::Refused(_)) => "URLRefused",
            FetchError::Url(_) => "FetchFailed",
            FetchError::Registry(e) => e.reason(),
            FetchError::Store(_) => "StoreUnavailable",
            FetchError::Unsupported(_) => "UnsupportedSource",
            FetchError::Cluster(_) => "FetchFailed",
        }
    }
}

pub async fn fetch(
    source: &CatalogSource,
    cluster: &dyn Cluster,
    urls: &UrlFetcher,
    max_bytes: usize,
    ceiling: Option<usize>,
) -> Result<Content, FetchError> {
    let namespace = source.metadata.namespace.clone().unwrap_or_default();
    match &source.spec.source {
        SourceSpec {
            inline: Some(inline),
            ..
        } => Ok(Content::Inline(inline.assets.clone())),
        SourceSpec {
            config_map: Some(reference),
            ..
        } => {
            let data = cluster
                .config_map(&namespace, &reference.name)
                .await?
                .ok_or_else(|| FetchError::ConfigMapMissing {
                    namespace: namespace.clone(),
                    name: reference.name.clone(),
                })?;
            match data.get(&reference.key) {
                Some(text) => Ok(Content::Document {
                    bytes: text.clone().into_bytes(),
                    etag: None,
                }),
                None => Err(FetchError::KeyMissing {
                    name: reference.name.clone(),
                    key: reference.key.clone(),
                    available: data.keys().cloned().collect::<Vec<_>>().join(", "),
                }),
            }
        }
        SourceSpec {
            url: Some(spec), ..
        } => fetch_url(source, spec, cluster, urls, &namespace, max_bytes, ceiling).await,
        _ => Err(FetchError::Unsupported(
            "exactly one of inline, configMap or url must be set (mcpRegistry sources sync through registry_sync)".into(),
        )),
    }
}

/// The ETag to send: only when the spec has not changed since the last fetch and that fetch
/// succeeded, or a 304 would hide new curation rules or a failed document.
fn reusable_etag(source: &CatalogSource) -> Option<&str> {
    let status = source.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    (ready && status.observed_generation == source.metadata.generation)
        .then_some(status.etag.as_deref())
        .flatten()
}

/// The credentials a `secretRef` names, if any.
pub(super) async fn credentials(
    cluster: &dyn Cluster,
    namespace: &str,
    secret_ref: Option<&SecretRef>,
) -> Result<Option<Credentials>, FetchError> {
    let Some(reference) = secret_ref else {
        return Ok(None);
    };
    let data = cluster
        .secret(namespace, &reference.name)
        .await?
        .ok_or_else(|| FetchError::SecretMissing {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
        })?;
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    };
    match (text("token"), text("username"), text("password")) {
        (Some(token), _, _) => Ok(Some(Credentials::Bearer(token))),
        (None, Some(username), Some(password)) => {
            Ok(Some(Credentials::Basic { username, password }))
        }
        _ => Err(FetchError::SecretIncomplete(reference.name.clone())),
    }
}

async fn fetch_url(
    source: &CatalogSource,
    spec: &UrlSource,
    cluster: &dyn Cluster,
    urls: &UrlFetcher,
    namespace: &str,
    max_bytes: usize,
    ceiling: Option<usize>,
) -> Result<Content, FetchError> {
    let request = UrlRequest {
        url: &spec.url,
        timeout: spec
            .timeout
            .as_deref()
            .and_then(parse_go_duration)
            .unwrap_or(DEFAULT_URL_TIMEOUT),
        max_bytes: spec
            .max_size_bytes
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(max_bytes)
            .min(ceiling.unwrap_or(usize::MAX)),
        credentials: credentials(cluster, namespace, spec.secret_ref.as_ref()).await?,
        if_none_match: reusable_etag(source),
    };
    Ok(match urls.fetch(request).await? {
        UrlResponse::NotModified => Content::NotModified,
        UrlResponse::Document { bytes, etag } => Content::Document { bytes, etag },
    })
}
