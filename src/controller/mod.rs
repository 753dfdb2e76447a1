//! The controller: turns CatalogSources into catalog rows and runs RefreshJobs.
//!
//! `reconcile` (fetch → parse → validate → curate → diff → one store transaction), `job`
//! (RefreshJob attempts), `pool` (the fair, bounded job pool), `policy_status` (CatalogPolicy usage), `retention` (audit retention),
//! `runtime` (the leader-gated kube-runtime controllers) and `health`. The decisions it makes
//! live in `curio_core::decisions`; the cluster it talks to is behind `crate::cluster::Cluster`.

pub mod cpu;
pub mod fetch;
pub mod health;
pub mod job;
pub mod locks;
pub mod metrics;
pub mod policy_status;
pub mod pool;
pub mod reconcile;
pub mod registry_sync;
pub mod retention;
pub mod runtime;

// What other layers (standalone mode, tests) drive: one reconcile, one job attempt, cleanup.
pub use job::{JobResult, JobSettings, expire, run_job};
pub use reconcile::{
    Context, Report, cleanup_source, interval, reconcile_source, refetch_source,
    write_source_status,
};
