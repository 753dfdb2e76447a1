//! sea-orm entities, one per table.

pub mod asset;
pub mod audit_event;
pub mod catalog_source;
pub mod refresh_job;
