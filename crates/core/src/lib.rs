//! Curio's core: the custom resources, the catalog format and the pure decisions the controller,
//! webhook and API make. Values in, values out: this crate has no async runtime, HTTP, database or
//! Kubernetes client in its dependency tree, and the compiler holds that line.

pub mod catalog;
pub mod catalog_api;
pub mod crd;
pub mod decisions;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod registry;
pub mod schema;
