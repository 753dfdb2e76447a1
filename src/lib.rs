//! Curio: a multi-tenant, Kubernetes-native catalog of AI assets.

pub mod api;
pub mod catalog;
pub mod controller;
pub mod crd;
pub mod source;
pub mod standalone;
pub mod store;
pub mod telemetry;
pub mod webhook;
