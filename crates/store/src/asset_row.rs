//! How an [`AssetRecord`] becomes an `assets` row. The columns come from the entity and the
//! values from the record's one shape ([`AssetFields`], serialized), so neither list is
//! written again here; a test holds the table and the shape to each other.

use std::sync::OnceLock;

use sea_orm::{ColumnTrait, ColumnType, Iterable, sea_query::Iden};
use serde::Serialize;

use super::{
    StoreError,
    entity::asset,
    pg_arrays::{self, ArrayColumn, ArrayKind, ArrayRows},
    pg_copy::{self, CopyText},
};
use chrono::{DateTime, Utc};
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

/// PostgreSQL's `INSERT … SELECT … FROM unnest(…) … ON CONFLICT … DO UPDATE`: `$1`
/// namespace, `$2` source, `$3` the time, `$4` the revision, then the content columns' arrays
/// ([`pg_array_values`]).
pub(crate) fn pg_array_upsert_sql() -> Result<&'static str, StoreError> {
    static SQL: OnceLock<String> = OnceLock::new();
    built_once(&SQL)
}

/// `COPY assets (…) FROM STDIN` into [`insert_columns`], for rows the refresh's diff found
/// absent. Not an upsert: a row that is there after all (a stale diff) fails the refresh's
/// transaction, which then retries with a fresh diff, instead of being overwritten under a
/// "create" audit event.
pub(crate) fn pg_copy_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| pg_copy::statement("assets", insert_columns().iter().map(|c| c.to_string())))
}

/// `records` as [`pg_copy_statement`]'s rows.
pub(crate) fn pg_copy_rows(
    namespace: &str,
    source: &str,
    records: &[AssetRecord],
    now: DateTime<Utc>,
    revision: i64,
) -> Result<CopyText, StoreError> {
    let content: Vec<(String, ValueType)> = content_columns()
        .map(|c| Ok((json_key(c), value_type(c)?)))
        .collect::<Result<_, StoreError>>()?;
    let now = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let revision = revision.to_string();
    let json_error =
        |e: serde_json::Error| StoreError::Database(sea_orm::DbErr::Json(e.to_string()));
    // About 1 KiB a row; a guess that saves the buffer most of its regrowth.
    let mut rows = CopyText::with_capacity(records.len() * 1024);
    for record in records {
        let row = serde_json::to_value(RowContent::of(record, source)).map_err(json_error)?;
        rows.text(Some(namespace));
        rows.text(Some(source));
        for (key, kind) in &content {
            let value = row.get(key).unwrap_or(&serde_json::Value::Null);
            match kind {
                ValueType::Text => rows.text(value.as_str()),
                // An absent detail is SQL NULL, not JSON null.
                ValueType::Json => rows
                    .json((!value.is_null()).then_some(value))
                    .map_err(json_error)?,
                ValueType::Boolean => rows.boolean(value.as_bool()),
            }
        }
        for statement_value in [&now, &now, &revision, &revision] {
            rows.text(Some(statement_value));
        }
        rows.end_row();
    }
    Ok(rows)
}

/// The first array's parameter number: after namespace, source, time and revision.
const FIRST_ARRAY_PARAMETER: usize = 5;

/// The statement in `cell`, built on first use (building can fail; `OnceLock` cannot hold an
/// error, so a failed build is retried next time).
fn built_once(cell: &'static OnceLock<String>) -> Result<&'static str, StoreError> {
    if let Some(sql) = cell.get() {
        return Ok(sql);
    }
    let built = build_pg_array_upsert()?;
    Ok(cell.get_or_init(|| built))
}

/// The content columns as `unnest` sources, typed and nullable as the entity says.
fn content_arrays() -> Result<Vec<(asset::Column, ArrayColumn)>, StoreError> {
    content_columns()
        .map(|column| {
            let kind = match value_type(column)? {
                ValueType::Text => ArrayKind::Text,
                ValueType::Json => ArrayKind::Json,
                ValueType::Boolean => ArrayKind::Boolean,
            };
            let nullable = column.def().is_null();
            Ok((column, ArrayColumn { kind, nullable }))
        })
        .collect()
}

fn build_pg_array_upsert() -> Result<String, StoreError> {
    let arrays: Vec<ArrayColumn> = content_arrays()?.into_iter().map(|(_, a)| a).collect();
    let names = |columns: &[asset::Column]| {
        columns
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (source, reads) = pg_arrays::unnest_source(&arrays, FIRST_ARRAY_PARAMETER);
    let updates: Vec<String> = updated_on_conflict()
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}", c = c.to_string()))
        .collect();
    let insert = format!(
        "INSERT INTO assets ({columns}) SELECT $1, $2, {reads}, $3, $3, $4, $4 FROM {source}",
        columns = names(&insert_columns()),
        reads = reads.join(", "),
    );
    Ok(format!(
        "{insert} ON CONFLICT ({key}) DO UPDATE SET {updates}",
        key = names(&KEY),
        updates = updates.join(", "),
    ))
}

/// The bound parameters of [`pg_array_upsert_sql`] for `records`:
/// namespace, source, time, revision, then one array per content column.
pub(crate) fn pg_array_values(
    namespace: &str,
    source: &str,
    records: &[&AssetRecord],
    now: DateTime<Utc>,
    revision: i64,
) -> Result<Vec<sea_orm::Value>, StoreError> {
    let columns = content_arrays()?;
    let keys: Vec<String> = columns.iter().map(|(c, _)| json_key(*c)).collect();
    let arrays: Vec<ArrayColumn> = columns.iter().map(|(_, a)| *a).collect();
    let mut rows = ArrayRows::new(&arrays, records.len());
    for record in records {
        let serde_json::Value::Object(mut row) =
            serde_json::to_value(RowContent::of(record, source))
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Json(e.to_string())))?
        else {
            return Err(StoreError::Database(sea_orm::DbErr::Json(
                "an asset row serialized to something other than an object".into(),
            )));
        };
        for (i, (key, array)) in keys.iter().zip(&arrays).enumerate() {
            let value = row.remove(key).unwrap_or(serde_json::Value::Null);
            let pushed = match array.kind {
                ArrayKind::Text => rows.push_text(
                    i,
                    match value {
                        serde_json::Value::String(s) => Some(s),
                        _ => None,
                    },
                ),
                // An absent detail is SQL NULL, not JSON null.
                ArrayKind::Json => rows.push_text(i, (!value.is_null()).then(|| value.to_string())),
                ArrayKind::Boolean => rows.push_bool(i, value.as_bool()),
                // `content_arrays` types no content column so.
                ArrayKind::Timestamp => Err(pg_arrays::ArrayError::WrongKind(i, array.kind)),
            };
            pushed
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(format!("{key}: {e}"))))?;
        }
    }
    let mut values: Vec<sea_orm::Value> =
        vec![namespace.into(), source.into(), now.into(), revision.into()];
    values.extend(rows.into_values());
    Ok(values)
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
    fn the_postgres_upsert_reads_each_column_from_its_array() {
        let expected = r#"
INSERT INTO assets (namespace, source, kind, name, version, display_name, description, provider,
                    license, tags, labels, stage, approved, links, metadata, mcp, agent, digest,
                    object_name, description_terms, created_at, updated_at, revision,
                    created_revision)
SELECT $1, $2, r.c0, r.c1, r.c2, CASE WHEN r.p3 THEN r.c3 END, CASE WHEN r.p4 THEN r.c4 END,
       CASE WHEN r.p5 THEN r.c5 END, CASE WHEN r.p6 THEN r.c6 END, r.c7::jsonb, r.c8::jsonb,
       CASE WHEN r.p9 THEN r.c9 END, r.c10, r.c11::jsonb, r.c12::jsonb,
       CASE WHEN r.p13 THEN r.c13::jsonb END, CASE WHEN r.p14 THEN r.c14::jsonb END, r.c15, r.c16,
       r.c17, $3, $3, $4, $4
FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[], $10::text[],
            $11::boolean[], $12::text[], $13::boolean[], $14::text[], $15::boolean[], $16::text[],
            $17::text[], $18::text[], $19::boolean[], $20::boolean[], $21::text[], $22::text[],
            $23::text[], $24::boolean[], $25::text[], $26::boolean[], $27::text[], $28::text[],
            $29::text[])
     AS r(c0, c1, c2, c3, p3, c4, p4, c5, p5, c6, p6, c7, c8, c9, p9, c10, c11, c12, c13, p13,
          c14, p14, c15, c16, c17)
ON CONFLICT (namespace, source, kind, name, version) DO UPDATE SET
    display_name = EXCLUDED.display_name, description = EXCLUDED.description,
    provider = EXCLUDED.provider, license = EXCLUDED.license, tags = EXCLUDED.tags,
    labels = EXCLUDED.labels, stage = EXCLUDED.stage, approved = EXCLUDED.approved,
    links = EXCLUDED.links, metadata = EXCLUDED.metadata, mcp = EXCLUDED.mcp,
    agent = EXCLUDED.agent, digest = EXCLUDED.digest, object_name = EXCLUDED.object_name,
    description_terms = EXCLUDED.description_terms, updated_at = EXCLUDED.updated_at, revision = EXCLUDED.revision"#;
        let built = pg_array_upsert_sql().unwrap();
        assert_eq!(squeeze(built), squeeze(expected));
    }

    #[test]
    fn the_copy_fills_the_columns_the_upsert_inserts() {
        let upsert = pg_array_upsert_sql().unwrap();
        let copy = pg_copy_statement();
        let columns = |sql: &str, head: &str| {
            let rest = sql.strip_prefix(head).unwrap();
            rest[..rest.find(')').unwrap()].to_owned()
        };
        assert_eq!(
            columns(copy, "COPY assets ("),
            columns(upsert, "INSERT INTO assets (")
        );
        assert!(copy.ends_with(") FROM STDIN"));
    }

    #[test]
    fn the_copy_rows_have_a_field_per_column() {
        let records = [
            AssetRecord::from_asset(asset(AssetKind::Model, "granite", "3")),
            AssetRecord::from_asset(curio_core::catalog::Asset {
                description: Some("tab\there\nnewline".into()),
                ..asset(AssetKind::Agent, "a\tb", "1")
            }),
        ];
        let rows = pg_copy_rows("team-a", "s", &records, chrono::Utc::now(), 7).unwrap();
        let text = String::from_utf8(rows.into_bytes()).unwrap();
        let lines: Vec<&str> = text.strip_suffix('\n').unwrap().split('\n').collect();
        assert_eq!(lines.len(), 2, "a line per record");
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), insert_columns().len(), "{line}");
            assert_eq!(fields[..2], ["team-a", "s"]);
            assert_eq!(fields[fields.len() - 2..], ["7", "7"]);
        }
    }

    #[test]
    fn the_postgres_values_are_one_array_per_parameter() {
        let record = AssetRecord::from_asset(asset(AssetKind::Model, "granite", "3"));
        let values =
            pg_array_values("team-a", "s", &[&record, &record], chrono::Utc::now(), 7).unwrap();
        let sql = pg_array_upsert_sql().unwrap();
        let highest = (1..=values.len() + 1)
            .rev()
            .find(|n| sql.contains(&format!("${n}:")) || sql.contains(&format!("${n},")))
            .unwrap();
        assert_eq!(highest, values.len(), "a parameter for every value");
        for value in &values[4..] {
            let sea_orm::Value::Array(_, Some(elements)) = value else {
                panic!("{value:?} is not an array");
            };
            assert_eq!(elements.len(), 2, "one element per record");
        }
    }
}
