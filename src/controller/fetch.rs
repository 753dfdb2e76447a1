//! Getting a source's content. A source never reads another namespace.

use crate::{
    catalog::Asset,
    crd::{CatalogSource, SourceSpec},
};

use super::cluster::{Cluster, ClusterError};

/// What a fetch produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Assets written in the resource itself (still validated like a document).
    Inline(Vec<Asset>),
    /// A catalog document's bytes.
    Document(Vec<u8>),
}

#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("{0}")]
    Unsupported(String),
    /// A retry may fix it.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl FetchError {
    /// Whether retrying without a change could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, FetchError::Cluster(_))
    }

    /// The Kubernetes-style reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::ConfigMapMissing { .. } | FetchError::KeyMissing { .. } => {
                "ConfigMapNotFound"
            }
            FetchError::Unsupported(_) => "UnsupportedSource",
            FetchError::Cluster(_) => "FetchFailed",
        }
    }
}

pub async fn fetch(source: &CatalogSource, cluster: &dyn Cluster) -> Result<Content, FetchError> {
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
                Some(text) => Ok(Content::Document(text.clone().into_bytes())),
                None => Err(FetchError::KeyMissing {
                    name: reference.name.clone(),
                    key: reference.key.clone(),
                    available: data.keys().cloned().collect::<Vec<_>>().join(", "),
                }),
            }
        }
        SourceSpec { url: Some(_), .. } => Err(FetchError::Unsupported(
            "url sources are not supported yet".into(),
        )),
        _ => Err(FetchError::Unsupported(
            "exactly one of inline, configMap or url must be set".into(),
        )),
    }
}
