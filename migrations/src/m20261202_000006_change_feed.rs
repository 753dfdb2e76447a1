//! The change feed behind watches (`catalog.curio.dev`): one revision sequence for the whole
//! store, the revision of every asset's last write (and of its creation), its object name, and
//! tombstones for deleted assets, kept for a retention window.
//!
//! `catalog_feed` is one row: `revision` is the last revision handed out; `compacted` the
//! newest revision whose tombstones may be gone (a watch from before it gets 410 Gone). A write
//! takes the row's lock to draw its revision and holds it to commit, so revisions become
//! visible in the order they were drawn: a reader that sees revision N sees every write ≤ N.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseBackend, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Assets {
    Table,
    Id,
    Source,
    Name,
    Version,
    ObjectName,
    Revision,
    CreatedRevision,
}

#[derive(DeriveIden)]
enum CatalogFeed {
    Table,
    Id,
    Revision,
    Compacted,
}

#[derive(DeriveIden)]
enum AssetTombstones {
    Table,
    Id,
    Namespace,
    Source,
    Kind,
    ObjectName,
    Revision,
    Content,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Assets::ObjectName)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Assets::Revision)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Assets::CreatedRevision)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Assets::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        backfill_object_names(manager).await?;
        manager
            .create_index(
                Index::create()
                    .name("assets_object_name")
                    .table(Assets::Table)
                    .col(Alias::new("namespace"))
                    .col(Alias::new("kind"))
                    .col(Assets::ObjectName)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("assets_revision")
                    .table(Assets::Table)
                    .col(Alias::new("namespace"))
                    .col(Assets::Revision)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CatalogFeed::Table)
                    .col(
                        ColumnDef::new(CatalogFeed::Id)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CatalogFeed::Revision)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(CatalogFeed::Compacted)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(CatalogFeed::Table)
                    .columns([CatalogFeed::Id])
                    .values_panic([1.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssetTombstones::Table)
                    .col(
                        ColumnDef::new(AssetTombstones::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AssetTombstones::Namespace)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AssetTombstones::Source).text().not_null())
                    .col(ColumnDef::new(AssetTombstones::Kind).text().not_null())
                    .col(
                        ColumnDef::new(AssetTombstones::ObjectName)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetTombstones::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetTombstones::Content)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetTombstones::DeletedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("asset_tombstones_revision")
                    .table(AssetTombstones::Table)
                    .col(AssetTombstones::Namespace)
                    .col(AssetTombstones::Revision)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "GRANT SELECT ON catalog_feed, asset_tombstones TO curio_reader;
                     ALTER TABLE asset_tombstones ENABLE ROW LEVEL SECURITY;
                     CREATE POLICY asset_tombstones_tenant_read ON asset_tombstones FOR SELECT
                       TO curio_reader USING (namespace = ANY (curio_allowed_namespaces()));",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AssetTombstones::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CatalogFeed::Table).to_owned())
            .await?;
        for index in ["assets_object_name", "assets_revision"] {
            manager
                .drop_index(Index::drop().name(index).table(Assets::Table).to_owned())
                .await?;
        }
        for column in [
            Assets::ObjectName,
            Assets::Revision,
            Assets::CreatedRevision,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Rows written before this migration get their object names (computed in Rust: SQLite has
/// no SHA-256).
async fn backfill_object_names(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let select = Query::select()
        .columns([Assets::Id, Assets::Source, Assets::Name, Assets::Version])
        .from(Assets::Table)
        .to_owned();
    let rows = db.query_all(&select).await?;
    let update = match backend {
        DatabaseBackend::Postgres => "UPDATE assets SET object_name = $1 WHERE id = $2",
        _ => "UPDATE assets SET object_name = ? WHERE id = ?",
    };
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let source: String = row.try_get("", "source")?;
        let name: String = row.try_get("", "name")?;
        let version: String = row.try_get("", "version")?;
        let object = curio_core::catalog_api::names::object_name(&source, &name, &version);
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            update,
            [object.into(), id.into()],
        ))
        .await?;
    }
    Ok(())
}
