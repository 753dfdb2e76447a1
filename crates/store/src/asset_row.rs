//! How an [`AssetRecord`] becomes an `assets` row. The columns come from the entity and the
//! values from the record's one shape ([`AssetFields`], serialized), so neither list is
//! written again here; a test holds the table and the shape to each other.

use std::sync::OnceLock;

use sea_orm::{ColumnTrait, ColumnType, Iterable, sea_query::Iden};
use serde::Serialize;

use super::{StoreError, entity::asset};
use curio_core::{
    catalog::{AssetFields, AssetRecord, search_terms},
    catalog_api::names,
};

/// One record as the row's content: its fields and their digest, keyed like the columns
/// (camelCase).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RowContent<'a> {
    #[serde(flatten)]
    fields: &'a AssetFields,
    digest: &'a str,
    object_name: String,
    description_terms: String,
}

impl<'a> RowContent<'a> {
    pub(crate) fn of(record: &'a AssetRecord, source: &str) -> Self {
        Self {
            fields: record.fields(),
            digest: record.digest(),
            object_name: names::object_name(source, record.name(), record.version()),
            description_terms: search_terms::description_terms(
                record.fields().description.as_deref(),
            ),
        }
    }
}

/// The natural key within a namespace.
pub(crate) const KEY: [asset::Column; 5] = [
    asset::Column::Namespace,
    asset::Column::Source,
    asset::Column::Kind,
    asset::Column::Name,
    asset::Column::Version,
];

/// Set per statement rather than per record.
fn is_statement_column(column: asset::Column) -> bool {
    matches!(
        column,
        asset::Column::Id
            | asset::Column::Namespace
            | asset::Column::Source
            | asset::Column::CreatedAt
            | asset::Column::UpdatedAt
            | asset::Column::Revision
            | asset::Column::CreatedRevision
    )
}

/// The columns a record's [`RowContent`] fills, in the table's order.
pub(crate) fn content_columns() -> impl Iterator<Item = asset::Column> {
    asset::Column::iter().filter(|c| !is_statement_column(*c))
}

/// Every column an insert names: the scope, the content, the timestamps, the revisions.
pub(crate) fn insert_columns() -> Vec<asset::Column> {
    let mut columns = vec![asset::Column::Namespace, asset::Column::Source];
    columns.extend(content_columns());
    columns.extend([
        asset::Column::CreatedAt,
        asset::Column::UpdatedAt,
        asset::Column::Revision,
        asset::Column::CreatedRevision,
    ]);
    columns
}

/// The columns an upsert overwrites on conflict: never the key, `created_at` or
/// `created_revision`.
pub(crate) fn updated_on_conflict() -> Vec<asset::Column> {
    content_columns()
        .filter(|c| !KEY.iter().any(|k| k.to_string() == c.to_string()))
        .chain([asset::Column::UpdatedAt, asset::Column::Revision])
        .collect()
}

/// The column's key in [`RowContent`]'s JSON.
pub(crate) fn json_key(column: asset::Column) -> String {
    let snake = column.to_string();
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How a content value is typed in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    Text,
    Json,
    Boolean,
}

pub(crate) fn value_type(column: asset::Column) -> Result<ValueType, StoreError> {
    match column.def().get_column_type() {
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => Ok(ValueType::Text),
        ColumnType::Json | ColumnType::JsonBinary => Ok(ValueType::Json),
        ColumnType::Boolean => Ok(ValueType::Boolean),
        other => Err(StoreError::UnsupportedColumn {
            column: column.to_string(),
            column_type: format!("{other:?}"),
        }),
    }
}

/// One content value for a bound parameter, typed as its column is.
pub(crate) fn bind_value(value: &serde_json::Value, kind: ValueType) -> sea_orm::Value {
    match kind {
        ValueType::Text => sea_orm::Value::String(value.as_str().map(str::to_owned)),
        // An absent detail is SQL NULL, not JSON null.
        ValueType::Json if value.is_null() => sea_orm::Value::Json(None),
        ValueType::Json => sea_orm::Value::Json(Some(Box::new(value.clone()))),
        ValueType::Boolean => sea_orm::Value::Bool(value.as_bool()),
    }
}

/// PostgreSQL's `INSERT … SELECT … FROM jsonb_to_recordset($3) … ON CONFLICT … DO UPDATE`:
/// `$1` namespace, `$2` source, `$3` the rows as JSON text, `$4` the time, `$5` the revision.
pub(crate) fn pg_json_upsert_sql() -> Result<&'static str, StoreError> {
    static SQL: OnceLock<String> = OnceLock::new();
    built_once(&SQL, OnConflict::Update)
}

/// [`pg_json_upsert_sql`] without `ON CONFLICT`, for rows the refresh's diff found absent. A
/// speculative insertion costs PostgreSQL a unique-index probe and a second heap write per
/// row (about 5% of a 100,000-asset ingest); a row that is there after all (a stale diff)
/// fails the refresh's transaction, which then retries with a fresh one, instead of being
/// overwritten under a "create" audit event.
pub(crate) fn pg_json_insert_sql() -> Result<&'static str, StoreError> {
    static SQL: OnceLock<String> = OnceLock::new();
    built_once(&SQL, OnConflict::Fail)
}

/// The statement in `cell`, built on first use (building can fail; `OnceLock` cannot hold an
/// error, so a failed build is retried next time).
fn built_once(
    cell: &'static OnceLock<String>,
    on_conflict: OnConflict,
) -> Result<&'static str, StoreError> {
    if let Some(sql) = cell.get() {
        return Ok(sql);
    }
    let built = build_pg_json_upsert(on_conflict)?;
    Ok(cell.get_or_init(|| built))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    Update,
    Fail,
}

fn build_pg_json_upsert(on_conflict: OnConflict) -> Result<String, StoreError> {
    let content: Vec<asset::Column> = content_columns().collect();
    let names = |columns: &[asset::Column]| {
        columns
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut record_type = Vec::with_capacity(content.len());
    for column in &content {
        let sql_type = match value_type(*column)? {
            ValueType::Text => "text",
            ValueType::Json => "jsonb",
            ValueType::Boolean => "boolean",
        };
        record_type.push(format!("\"{}\" {sql_type}", json_key(*column)));
    }
    let selected: Vec<String> = content
        .iter()
        .map(|c| format!("r.\"{}\"", json_key(*c)))
        .collect();
    let updates: Vec<String> = updated_on_conflict()
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}", c = c.to_string()))
        .collect();
    let insert = format!(
        "INSERT INTO assets ({columns}) \
         SELECT $1, $2, {selected}, $4, $4, $5, $5 \
         FROM jsonb_to_recordset($3::text::jsonb) AS r({record_type})",
        columns = names(&insert_columns()),
        selected = selected.join(", "),
        record_type = record_type.join(", "),
    );
    Ok(match on_conflict {
        OnConflict::Fail => insert,
        OnConflict::Update => format!(
            "{insert} ON CONFLICT ({key}) DO UPDATE SET {updates}",
            key = names(&KEY),
            updates = updates.join(", "),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use curio_core::{catalog::AssetKind, fixtures::asset};

    fn squeeze(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_table_holds_exactly_the_record_shape() {
        // Every field set, so no optional one is left out of the JSON.
        let record = AssetRecord::from_asset(curio_core::catalog::Asset {
            mcp: Some(Default::default()),
            agent: Some(Default::default()),
            ..asset(AssetKind::Model, "granite", "3")
        });
        let content = serde_json::to_value(RowContent::of(&record, "s")).unwrap();
        let mut keys: Vec<String> = content.as_object().unwrap().keys().cloned().collect();
        let mut columns: Vec<String> = content_columns().map(json_key).collect();
        keys.sort();
        columns.sort();
        assert_eq!(keys, columns);
        for column in content_columns() {
            value_type(column).expect("every content column has a bindable type");
        }
    }

    #[test]
    fn the_postgres_upsert_is_the_statement_it_always_was_plus_the_terms() {
        // The hand-written statement this one replaced, with camelCase record keys, and the
        // description's search terms since they were added.
        let expected = r#"
INSERT INTO assets (namespace, source, kind, name, version, display_name, description, provider,
                    license, tags, labels, stage, approved, links, metadata, mcp, agent, digest,
                    object_name, description_terms, created_at, updated_at, revision,
                    created_revision)
SELECT $1, $2, r."kind", r."name", r."version", r."displayName", r."description", r."provider",
       r."license", r."tags", r."labels", r."stage", r."approved", r."links", r."metadata", r."mcp",
       r."agent", r."digest", r."objectName", r."descriptionTerms", $4, $4, $5, $5
FROM jsonb_to_recordset($3::text::jsonb) AS r(
    "kind" text, "name" text, "version" text, "displayName" text, "description" text, "provider" text,
    "license" text, "tags" jsonb, "labels" jsonb, "stage" text, "approved" boolean, "links" jsonb,
    "metadata" jsonb, "mcp" jsonb, "agent" jsonb, "digest" text, "objectName" text,
    "descriptionTerms" text)
ON CONFLICT (namespace, source, kind, name, version) DO UPDATE SET
    display_name = EXCLUDED.display_name, description = EXCLUDED.description,
    provider = EXCLUDED.provider, license = EXCLUDED.license, tags = EXCLUDED.tags,
    labels = EXCLUDED.labels, stage = EXCLUDED.stage, approved = EXCLUDED.approved,
    links = EXCLUDED.links, metadata = EXCLUDED.metadata, mcp = EXCLUDED.mcp,
    agent = EXCLUDED.agent, digest = EXCLUDED.digest, object_name = EXCLUDED.object_name,
    description_terms = EXCLUDED.description_terms, updated_at = EXCLUDED.updated_at, revision = EXCLUDED.revision"#;
        let built = pg_json_upsert_sql().unwrap();
        assert_eq!(
            squeeze(built).replace("( ", "("),
            squeeze(expected).replace("( ", "(")
        );
    }

    #[test]
    fn the_postgres_insert_is_the_upsert_without_its_conflict_clause() {
        let upsert = pg_json_upsert_sql().unwrap();
        let insert = pg_json_insert_sql().unwrap();
        let (head, conflict) = upsert.split_once(" ON CONFLICT ").unwrap();
        assert_eq!(insert, head);
        assert!(conflict.starts_with("(namespace, source, kind, name, version) DO UPDATE"));
        assert!(!insert.contains("CONFLICT"));
    }
}
