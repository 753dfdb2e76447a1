//! Fetching catalog content from outside the cluster.

pub mod http;
pub mod policy;
pub mod registry;
