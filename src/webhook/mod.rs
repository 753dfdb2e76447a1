//! The validating admission webhook: every change people make to CatalogSources and
//! RefreshJobs passes through it, is recorded in the audit trail with the apiserver's
//! `userInfo`, and is refused when it approves or promotes without the `approve` or
//! `promote` verb.

pub mod certs;
pub mod handler;
pub mod metrics;
pub mod review;
pub mod self_managed;
pub mod tls;

pub use handler::{VALIDATE_PATH, Webhook, router};
