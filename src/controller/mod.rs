//! The controller: turns CatalogSources into catalog rows.
//!
//! Built so far: the pure decisions (conditions, retry delays, fair job order, curation), the
//! cluster seam, the fetch step (inline, ConfigMap, URL), the CatalogSource reconcile and
//! cleanup, the Lease elector and the fair job pool. Not built yet (issue 3): the kube
//! implementation of [`cluster::Cluster`], the kube-runtime controllers and finalizer, the
//! RefreshJob reconcile (phases, retries, TTL), the controller's metrics and health endpoints,
//! the `curio controller` command and the e2e suite.

pub mod backoff;
pub mod cluster;
pub mod conditions;
pub mod curation;
pub mod duration;
pub mod fairness;
pub mod fetch;
pub mod leader;
pub mod pool;
pub mod reconcile;
