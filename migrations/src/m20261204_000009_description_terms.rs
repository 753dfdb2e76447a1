//! `q` matches names and display names by substring and descriptions by word prefix
//! (`curio_core::catalog::search_terms`). The trigram index over all three fields was the
//! largest part of a large ingest's cost. Inserting the ingest bench's 100,000 rows in psql
//! into a copy of the table with only the index in question: no index 0.6 s, the trigram
//! index over all three fields 7.3 s, over name and display name alone 2.0 s, the
//! description's distinct words (`description_terms`, written with the row) as a `tsvector`
//! in a GIN index 1.7 s.
//!
//! Both backends get the column (SQLite matches it with `LIKE`); PostgreSQL gets the indexes.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseBackend, Statement},
};

use crate::m20261202_000004_search_index::SEARCH_EXPRESSION;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The text `q` is matched against by substring: name and display name, joined by a
/// separator neither can hold. The store's search filter uses this very expression.
pub const NAME_SEARCH_EXPRESSION: &str = "(name || E'\\x1f' || coalesce(display_name, ''))";

/// The description's words as a `tsvector` (lexemes verbatim, no positions): the store's
/// search filter matches this very expression against `'word':* & …`.
pub const DESCRIPTION_TERMS_VECTOR: &str =
    "array_to_tsvector(string_to_array(description_terms, ' '))";

#[derive(DeriveIden)]
enum Assets {
    Table,
    Id,
    Description,
    DescriptionTerms,
}

/// Rows per backfill statement on PostgreSQL (the rows travel as one JSON parameter).
const BACKFILL_CHUNK: usize = 5_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Assets::Table)
                    .add_column(
                        ColumnDef::new(Assets::DescriptionTerms)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        backfill(manager).await?;
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DROP INDEX IF EXISTS assets_search_trgm;
                 CREATE INDEX assets_name_search_trgm ON assets
                     USING gin ({NAME_SEARCH_EXPRESSION} gin_trgm_ops);
                 CREATE INDEX assets_description_terms ON assets
                     USING gin (({DESCRIPTION_TERMS_VECTOR}));
                 ALTER TABLE assets ALTER COLUMN description_terms SET STATISTICS 0;"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "DROP INDEX IF EXISTS assets_name_search_trgm, assets_description_terms;
                     CREATE INDEX assets_search_trgm ON assets
                         USING gin ({SEARCH_EXPRESSION} gin_trgm_ops);"
                ))
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Assets::Table)
                    .drop_column(Assets::DescriptionTerms)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// Fills `description_terms` for the rows already stored; new rows bring their own.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let select = Query::select()
        .columns([Assets::Id, Assets::Description])
        .from(Assets::Table)
        .and_where(Expr::col(Assets::Description).is_not_null())
        .to_owned();
    let mut terms: Vec<(i64, String)> = Vec::new();
    for row in db.query_all(&select).await? {
        let id: i64 = row.try_get("", "id")?;
        let description: Option<String> = row.try_get("", "description")?;
        let words = curio_core::catalog::description_terms(description.as_deref());
        if !words.is_empty() {
            terms.push((id, words));
        }
    }
    if backend == DatabaseBackend::Postgres {
        for chunk in terms.chunks(BACKFILL_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(id, words)| serde_json::json!({ "id": id, "terms": words }))
                .collect();
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE assets AS a SET description_terms = r.terms \
                 FROM jsonb_to_recordset($1::text::jsonb) AS r(id bigint, terms text) \
                 WHERE a.id = r.id",
                [serde_json::Value::from(rows).to_string().into()],
            ))
            .await?;
        }
        return Ok(());
    }
    for (id, words) in terms {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE assets SET description_terms = ? WHERE id = ?",
            [words.into(), id.into()],
        ))
        .await?;
    }
    Ok(())
}
