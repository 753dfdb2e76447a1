//! The seam between reconcile logic and wherever the resources live: a Kubernetes cluster, a
//! folder of manifests (standalone mode), or a test. Reconcilers never call `kube::Api`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::Selector;

use crate::crd::{CatalogSource, CatalogSourceStatus, RefreshJob, RefreshJobStatus};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(String),
    #[error("conflict {0}: it changed since it was read")]
    Conflict(String),
    #[error("{0} no longer exists")]
    Gone(String),
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

impl EventNote {
    pub fn normal(reason: &str, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            note: note.into(),
        }
    }

    pub fn warning(reason: &str, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason: reason.into(),
            note: note.into(),
        }
    }
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
    /// The current CatalogSource, or `None` if it does not exist.
    async fn source(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CatalogSource>, ClusterError>;
    /// The CatalogSources of `namespace` whose labels `selector` matches.
    async fn sources(
        &self,
        namespace: &str,
        selector: &Selector,
    ) -> Result<Vec<CatalogSource>, ClusterError>;
    /// Replaces the source's status (guarded by its resourceVersion where the backend has one).
    async fn write_source_status(
        &self,
        source: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError>;
    /// The current RefreshJob, or `None` if it does not exist.
    async fn job(&self, namespace: &str, name: &str) -> Result<Option<RefreshJob>, ClusterError>;
    /// Replaces the job's status under its resourceVersion; returns the job as written.
    async fn write_job_status(
        &self,
        job: &RefreshJob,
        status: &RefreshJobStatus,
    ) -> Result<RefreshJob, ClusterError>;
    /// Makes `owner` the job's controlling owner, so the job goes when its source goes.
    async fn adopt_job(&self, job: &RefreshJob, owner: &CatalogSource) -> Result<(), ClusterError>;
    /// Deletes the job (its TTL ran out), if it is still the same object.
    async fn delete_job(&self, job: &RefreshJob) -> Result<(), ClusterError>;
    async fn record_event(
        &self,
        regarding: &ObjectReference,
        event: EventNote,
    ) -> Result<(), ClusterError>;
}
