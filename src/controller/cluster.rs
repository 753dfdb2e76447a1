//! The seam between reconcile logic and wherever the resources live: a Kubernetes cluster, a
//! folder of manifests (standalone mode), or a test. Reconcilers never call `kube::Api`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::crd::{CatalogSource, CatalogSourceStatus};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(String),
    #[error("conflict writing {0}: it changed since it was read")]
    Conflict(String),
    #[error("{0}")]
    Other(String),
}

/// A Kubernetes Event to record about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    pub warning: bool,
    /// CamelCase, as Kubernetes reasons are (`Refreshed`, `FetchFailed`, `InvalidCatalog`).
    pub reason: String,
    pub note: String,
}

#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// A ConfigMap's `data` in `namespace`, or `None` if it does not exist.
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError>;
    /// A Secret's `data` in `namespace`, or `None` if it does not exist.
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClusterError>;
    /// Replaces the source's status (guarded by its resourceVersion where the backend has one).
    async fn write_source_status(
        &self,
        source: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError>;
    async fn record_event(
        &self,
        source: &CatalogSource,
        event: EventNote,
    ) -> Result<(), ClusterError>;
}
