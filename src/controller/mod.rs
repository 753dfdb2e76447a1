//! The controller: turns CatalogSources into catalog rows.
//!
//! Built so far: the pure decisions (conditions, retry delays, fair job order, curation), the
//! cluster seam, the fetch step (inline, ConfigMap, URL), the CatalogSource reconcile and
//! cleanup, the Lease elector, the fair job pool, and the seam on a real Kubernetes API
//! ([`kube_cluster::KubeCluster`]). Not built yet (issue 3): the kube-runtime controllers and
//! finalizer, the RefreshJob reconcile (phases, retries, TTL), the controller's metrics and health endpoints,
//! the `curio controller` command and the e2e suite.

pub mod backoff;
pub mod cluster;
pub mod conditions;
pub mod curation;
pub mod duration;
pub mod fairness;
pub mod fetch;
pub mod health;
pub mod job;
pub mod kube_cluster;
pub mod leader;
pub mod locks;
pub mod memory_cluster;
pub mod pool;
pub mod reconcile;
pub mod retention;
pub mod runtime;
