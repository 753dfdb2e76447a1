//! The read path's two summaries:
//! - an index on the namespaces' catalog revisions: the API reads "every namespace whose
//!   revision moved above the highest it has seen", one index probe however many namespaces;
//! - `asset_facet_counts`: per namespace, source and kind, how many assets carry each value of
//!   each facet field, rewritten for a source in the refresh transaction that changes it, so
//!   facets without value filters read a few hundred rows instead of counting every asset.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseBackend},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogRevisions {
    Table,
    Revision,
}

#[derive(DeriveIden)]
enum AssetFacetCounts {
    Table,
    Namespace,
    Source,
    Kind,
    Field,
    Value,
    Count,
}

const REVISION_INDEX: &str = "catalog_revisions_revision";

/// The facet fields and, per backend, the value each asset row (`a`) contributes and the
/// FROM items that produce it: `(field, value, extra FROM items)`. A row counts once per
/// value (a tag or label key once per tag or key it carries); NULL values are not counted.
pub fn facet_values(backend: DatabaseBackend) -> [(&'static str, &'static str, &'static str); 8] {
    let pg = backend == DatabaseBackend::Postgres;
    [
        ("kind", "a.kind", ""),
        ("provider", "a.provider", ""),
        ("license", "a.license", ""),
        (
            "tag",
            "t.value",
            if pg {
                ", jsonb_array_elements_text(a.tags) AS t(value)"
            } else {
                ", json_each(a.tags) AS t"
            },
        ),
        ("stage", "a.stage", ""),
        (
            "approved",
            if pg {
                "CASE WHEN a.approved THEN 'true' ELSE 'false' END"
            } else {
                "CASE WHEN a.approved <> 0 THEN 'true' ELSE 'false' END"
            },
            "",
        ),
        ("source", "a.source", ""),
        (
            "labelKey",
            "k.key",
            if pg {
                ", jsonb_object_keys(a.labels) AS k(key)"
            } else {
                ", json_each(a.labels) AS k"
            },
        ),
    ]
}

/// The `asset_facet_counts` rows of the assets matching `condition` (SQL over `a`, the asset
/// row), as a SELECT of `(namespace, source, kind, field, value, count)`.
pub fn facet_count_rows(backend: DatabaseBackend, condition: &str) -> String {
    facet_values(backend)
        .iter()
        .map(|(field, value, from)| {
            format!(
                "SELECT a.namespace, a.source, a.kind, '{field}', {value}, COUNT(*) \
                 FROM assets AS a{from} WHERE {condition} AND {value} IS NOT NULL \
                 GROUP BY a.namespace, a.source, a.kind, {value}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(REVISION_INDEX)
                    .table(CatalogRevisions::Table)
                    .col(CatalogRevisions::Revision)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssetFacetCounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AssetFacetCounts::Namespace)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetFacetCounts::Source)
                            .string_len(253)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetFacetCounts::Kind)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AssetFacetCounts::Field)
                            .string_len(16)
                            .not_null(),
                    )
                    // Values are free text of any length: no unique index over them.
                    .col(ColumnDef::new(AssetFacetCounts::Value).text().not_null())
                    .col(
                        ColumnDef::new(AssetFacetCounts::Count)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, second) in [
            ("asset_facet_counts_source", AssetFacetCounts::Source),
            ("asset_facet_counts_field", AssetFacetCounts::Field),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AssetFacetCounts::Table)
                        .col(AssetFacetCounts::Namespace)
                        .col(second)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        // Existing catalogs get their counts now; refreshes keep them from here on.
        let all = if backend == DatabaseBackend::Postgres {
            "TRUE"
        } else {
            "1 = 1"
        };
        db.execute_unprepared(&format!(
            "INSERT INTO asset_facet_counts (namespace, source, kind, field, value, count) {}",
            facet_count_rows(backend, all)
        ))
        .await?;
        if backend == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "GRANT SELECT ON asset_facet_counts TO curio_reader;
                 ALTER TABLE asset_facet_counts ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY asset_facet_counts_tenant_read ON asset_facet_counts FOR SELECT
                   TO curio_reader USING (namespace = ANY (curio_allowed_namespaces()));",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AssetFacetCounts::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(REVISION_INDEX)
                    .table(CatalogRevisions::Table)
                    .to_owned(),
            )
            .await
    }
}
