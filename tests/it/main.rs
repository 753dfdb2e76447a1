//! Curio's integration tests, in one binary: each module drives real parts (PostgreSQL or
//! SQLite, HTTP, TLS, the `curio` binary itself), with the Kubernetes API mocked or in memory
//! where no cluster exists. The cluster suite is `e2e/`.

// Test support code: a panic here is a failed test, which is what an unwrap should be.
#![allow(clippy::unwrap_used)]

mod common;

mod api_audit;
mod api_cache;
mod api_contract;
mod api_isolation;
mod api_kube;
mod api_ratelimit;
mod api_registry;
mod api_reviews;
mod api_tls;
mod argocd_health;
mod audit_retention;
mod chart;
mod controller_health;
mod controller_jobs;
mod controller_kube;
mod controller_policy;
mod controller_reconcile;
mod controller_registry;
mod crds;
mod standalone_manifests;
mod standalone_process;
mod store_postgres;
mod store_queries;
mod store_search;
mod webhook_admission;
mod webhook_lifecycle;
mod webhook_policy;
