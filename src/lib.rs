//! Curio: a multi-tenant, Kubernetes-native catalog of AI assets.

pub mod catalog;
pub mod crd;
pub mod telemetry;
pub mod store;
