//! Curio: a multi-tenant, Kubernetes-native catalog of AI assets.
//!
//! The layers, bottom up: `curio-core` (resource types, catalog format, pure decisions),
//! `curio-store` (PostgreSQL/SQLite), then the seams this crate shares between its consumers
//! (`cluster`: the Kubernetes API; `access`: who is calling and what they may do; `server`: HTTP
//! plumbing), then the consumers (`controller`, `webhook`, `api`, `standalone`).

pub use curio_core::{catalog, crd, decisions};
pub use curio_store as store;

pub mod access;
pub mod api;
pub mod cluster;
pub mod controller;
pub mod server;
pub mod source;
pub mod standalone;
pub mod telemetry;
pub mod ui;
pub mod webhook;
