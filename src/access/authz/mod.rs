//! Authorization: may this user do this verb on this resource in this namespace?

mod cached;
mod rbac;
mod sar;

use async_trait::async_trait;

pub use cached::{CacheOptions, CachedAuthorizer};
pub use rbac::{RbacError, StaticRbac, manifests};
pub use sar::SubjectAccessReviewer;

use super::identity::UserInfo;

pub const API_GROUP: &str = "curio.dev";

/// The aggregated API's group: the catalog's assets as Kubernetes objects.
pub const CATALOG_API_GROUP: &str = "catalog.curio.dev";

/// One access question, in the `curio.dev` group or the aggregated `catalog.curio.dev`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub user: UserInfo,
    pub group: &'static str,
    pub verb: &'static str,
    pub resource: String,
    pub namespace: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny { reason: String },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthzError {
    #[error("authorization backend failed: {source}")]
    Backend {
        // Shared, so one failed review can answer every caller it was coalesced with.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered without a decision (a SubjectAccessReview's evaluation error).
    #[error("authorization backend failed: {0}")]
    Undecided(String),
    #[error("authorization check timed out")]
    Timeout,
}

#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// `Err` means no decision: callers fail closed.
    async fn authorize(&self, attributes: &Attributes) -> Result<Decision, AuthzError>;
}
