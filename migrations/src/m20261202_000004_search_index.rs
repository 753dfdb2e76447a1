//! PostgreSQL only: one trigram index over everything `q` matches (name, display name and
//! description, joined by a separator no field can hold), in place of the name and
//! display-name trigram indexes. A search is then a bitmap scan of one index instead of a
//! sequential scan of the namespace, and no equality on `name` can be planned onto a trigram
//! index (a generic plan did that for gets: ~4 ms instead of ~0.07 ms through the btree).

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The text `q` is matched against; the store's search filter uses this very expression.
pub const SEARCH_EXPRESSION: &str =
    "(name || E'\\x1f' || coalesce(display_name, '') || E'\\x1f' || coalesce(description, ''))";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DROP INDEX IF EXISTS assets_name_trgm, assets_display_name_trgm;
                 CREATE INDEX assets_search_trgm ON assets USING gin ({SEARCH_EXPRESSION} gin_trgm_ops);"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX IF EXISTS assets_search_trgm;
                 CREATE INDEX assets_name_trgm ON assets USING gin (name gin_trgm_ops);
                 CREATE INDEX assets_display_name_trgm ON assets USING gin (display_name gin_trgm_ops);",
            )
            .await?;
        Ok(())
    }
}
