//! A revision per namespace, bumped in every refresh transaction that changes its assets: the
//! API's response cache keys on it, so a change anywhere in a namespace retires exactly that
//! namespace's cached answers.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogRevisions {
    Table,
    Namespace,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CatalogRevisions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(CatalogRevisions::Namespace)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CatalogRevisions::Revision)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "GRANT SELECT ON catalog_revisions TO curio_reader;
                     ALTER TABLE catalog_revisions ENABLE ROW LEVEL SECURITY;
                     CREATE POLICY catalog_revisions_tenant_read ON catalog_revisions FOR SELECT
                       TO curio_reader USING (namespace = ANY (curio_allowed_namespaces()));",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CatalogRevisions::Table).to_owned())
            .await
    }
}
