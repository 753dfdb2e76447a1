//! Curio's schema migrations (sea-orm-migration). Run them through `curio migrate` or
//! `curio::store::migrate`, which hold an advisory lock so concurrent replicas migrate once.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_postgres_security;
mod m20261202_000003_asset_details;
mod m20261202_000004_search_index;
mod m20261202_000005_catalog_revisions;
mod m20261202_000006_change_feed;
mod m20261203_000007_read_path;
mod m20261203_000008_planner_statistics;
mod m20261204_000009_description_terms;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_postgres_security::Migration),
            Box::new(m20261202_000003_asset_details::Migration),
            Box::new(m20261202_000004_search_index::Migration),
            Box::new(m20261202_000005_catalog_revisions::Migration),
            Box::new(m20261202_000006_change_feed::Migration),
            Box::new(m20261203_000007_read_path::Migration),
            Box::new(m20261203_000008_planner_statistics::Migration),
            Box::new(m20261204_000009_description_terms::Migration),
        ]
    }
}

pub use m20261204_000009_description_terms::{DESCRIPTION_TERMS_VECTOR, NAME_SEARCH_EXPRESSION};

/// The role the API's tenant-scoped reads run as; row-level security applies to it.
pub const READER_ROLE: &str = "curio_reader";
/// The transaction-local setting carrying the comma-separated namespaces a read may see.
pub const ALLOWED_NAMESPACES_SETTING: &str = "curio.allowed_namespaces";
/// The transaction-local setting that lets the retention path delete audit events.
pub const AUDIT_RETENTION_SETTING: &str = "curio.audit_retention";
pub use m20261203_000007_read_path::{facet_count_rows, facet_values};
pub use m20261203_000008_planner_statistics::UNPLANNED_ASSET_COLUMNS;
