//! The controller: turns CatalogSources into catalog rows.
//!
//! Built so far: the pure decisions (conditions, retry delays, fair job order, curation), the
//! cluster seam, the fetch step (inline, ConfigMap, URL), and the CatalogSource reconcile.
//! Not built yet (issue 3): the kube implementation of [`cluster::Cluster`], the RefreshJob pool, leader election, metrics and the `curio controller` command.

pub mod backoff;
pub mod cluster;
pub mod conditions;
pub mod curation;
pub mod duration;
pub mod fairness;
pub mod fetch;
pub mod reconcile;
