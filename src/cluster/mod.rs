//! The seam between reconcile logic and wherever the resources live: a Kubernetes cluster, a
//! folder of manifests (standalone mode), or a test. Reconcilers never call `kube::Api`.

pub mod front_proxy;
pub mod kubernetes;
pub mod leader;
pub mod memory;
pub mod policies;

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::Selector;

use crate::crd::{
    CatalogPolicyStatus, CatalogSource, CatalogSourceStatus, RefreshJob, RefreshJobStatus,
};

/// The cause behind a cluster error, kept for the error chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Worth retrying: the API did not answer, or answered 5xx or 429.
    #[error("the Kubernetes API is unavailable: {what}: {source}")]
    Unavailable {
        what: String,
        #[source]
        source: Cause,
    },
    #[error("conflict {0}: it changed since it was read")]
    Conflict(String),
    #[error("{0} no longer exists")]
    Gone(String),
    /// The API refused the request (4xx): retrying the same request will not help.
    #[error("{what}: {message}")]
    Refused {
        what: String,
        message: String,
        #[source]
        source: Cause,
    },
}

impl ClusterError {
    pub fn unavailable(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: source.into(),
        }
    }
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
    /// Replaces a (cluster-scoped) CatalogPolicy's status.
    async fn write_policy_status(
        &self,
        name: &str,
        status: &CatalogPolicyStatus,
    ) -> Result<(), ClusterError>;
}
