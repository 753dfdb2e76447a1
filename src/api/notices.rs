//! Problems the process knows about a namespace's configuration (standalone mode's manifest
//! problems), shown in that namespace's discovery document to callers who may read its
//! sources. Behind a trait so the API does not know where they come from.

use serde::Serialize;

/// One problem: where and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The file, relative to the manifests folder.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

pub trait Notices: Send + Sync + 'static {
    /// The problems concerning objects of `namespace`.
    fn in_namespace(&self, namespace: &str) -> Vec<Notice>;
}

/// A cluster has none: the apiserver refuses bad objects itself.
pub struct NoNotices;

impl Notices for NoNotices {
    fn in_namespace(&self, _: &str) -> Vec<Notice> {
        Vec::new()
    }
}
