//! Rows bound to a PostgreSQL statement as one array per column and expanded by `unnest`.
//!
//! Arrays travel in the binary protocol: the server copies each element and parses nothing
//! but the JSON columns' own values. The rows used to travel as one JSON document, which the
//! server lexed whole and then took apart key by key: for a 100,000-asset ingest that cost
//! more CPU than the `assets` table's heap writes. The driver binds arrays without NULL
//! elements, so a nullable column goes with a mask saying which elements are present.

use chrono::{DateTime, Utc};
use sea_orm::{Value, sea_query::ArrayType};

/// How a column's array is typed in SQL and read back into the column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArrayKind {
    Text,
    /// JSON text, cast to `jsonb` per element.
    Json,
    Boolean,
    Timestamp,
}

impl ArrayKind {
    /// The driver's type of the elements.
    fn array_type(self) -> ArrayType {
        match self {
            ArrayKind::Text | ArrayKind::Json => ArrayType::String,
            ArrayKind::Boolean => ArrayType::Bool,
            ArrayKind::Timestamp => ArrayType::ChronoDateTimeUtc,
        }
    }

    fn sql_type(self) -> &'static str {
        match self {
            ArrayKind::Text | ArrayKind::Json => "text[]",
            ArrayKind::Boolean => "boolean[]",
            ArrayKind::Timestamp => "timestamptz[]",
        }
    }
}

/// One column of an `unnest` source: its kind and whether it may be NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArrayColumn {
    pub kind: ArrayKind,
    pub nullable: bool,
}

/// `unnest($first::text[], …) AS r(c0, …)` and the expression reading each column, in order.
/// A nullable column takes two parameters, its values then its presence mask.
pub(crate) fn unnest_source(columns: &[ArrayColumn], first: usize) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let mut names = Vec::new();
    let mut reads = Vec::with_capacity(columns.len());
    let mut next = first;
    for (i, column) in columns.iter().enumerate() {
        params.push(format!("${next}::{}", column.kind.sql_type()));
        names.push(format!("c{i}"));
        next += 1;
        let value = match column.kind {
            ArrayKind::Json => format!("r.c{i}::jsonb"),
            _ => format!("r.c{i}"),
        };
        if column.nullable {
            params.push(format!("${next}::boolean[]"));
            names.push(format!("p{i}"));
            next += 1;
            reads.push(format!("CASE WHEN r.p{i} THEN {value} END"));
        } else {
            reads.push(value);
        }
    }
    let source = format!("unnest({}) AS r({})", params.join(", "), names.join(", "));
    (source, reads)
}

/// The values of the columns of [`unnest_source`], row by row: per column its elements and,
/// for a nullable one, its presence mask.
#[derive(Debug)]
pub(crate) struct ArrayRows {
    columns: Vec<(ArrayColumn, Vec<Value>, Option<Vec<Value>>)>,
}

impl ArrayRows {
    pub(crate) fn new(columns: &[ArrayColumn], rows: usize) -> Self {
        let columns = columns
            .iter()
            .map(|c| {
                let mask = c.nullable.then(|| Vec::with_capacity(rows));
                (*c, Vec::with_capacity(rows), mask)
            })
            .collect();
        Self { columns }
    }

    /// Pushes column `i`'s value for the current row; `None` is SQL NULL.
    pub(crate) fn push_text(&mut self, i: usize, value: Option<String>) -> Result<(), ArrayError> {
        let present = value.is_some();
        let element = Value::String(Some(value.unwrap_or_default()));
        self.push(i, ArrayType::String, present, element)
    }

    pub(crate) fn push_bool(&mut self, i: usize, value: Option<bool>) -> Result<(), ArrayError> {
        let present = value.is_some();
        let element = Value::Bool(Some(value.unwrap_or_default()));
        self.push(i, ArrayType::Bool, present, element)
    }

    pub(crate) fn push_timestamp(
        &mut self,
        i: usize,
        value: Option<DateTime<Utc>>,
    ) -> Result<(), ArrayError> {
        let present = value.is_some();
        let element = Value::ChronoDateTimeUtc(Some(value.unwrap_or_default()));
        self.push(i, ArrayType::ChronoDateTimeUtc, present, element)
    }

    /// Pushes `element` (a placeholder when not `present`) if column `i` holds `element_type`.
    fn push(
        &mut self,
        i: usize,
        element_type: ArrayType,
        present: bool,
        element: Value,
    ) -> Result<(), ArrayError> {
        let (column, values, mask) = self.columns.get_mut(i).ok_or(ArrayError::NoSuchColumn(i))?;
        if !present && mask.is_none() {
            return Err(ArrayError::NullInRequiredColumn(i));
        }
        if column.kind.array_type() != element_type {
            return Err(ArrayError::WrongKind(i, column.kind));
        }
        values.push(element);
        if let Some(mask) = mask {
            mask.push(Value::Bool(Some(present)));
        }
        Ok(())
    }

    /// The bound parameters, in [`unnest_source`]'s order.
    pub(crate) fn into_values(self) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.columns.len() * 2);
        for (column, values, mask) in self.columns {
            out.push(array(column.kind.array_type(), values));
            if let Some(mask) = mask {
                out.push(array(ArrayType::Bool, mask));
            }
        }
        out
    }
}

fn array(kind: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(kind, Some(Box::new(values)))
}

/// A row that does not fit its columns: a bug in the caller, reported instead of a panic in
/// the driver.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArrayError {
    #[error("no column {0} in the row arrays")]
    NoSuchColumn(usize),
    #[error("column {0} is not nullable but was given NULL")]
    NullInRequiredColumn(usize),
    #[error("column {0} holds {1:?} values")]
    WrongKind(usize, ArrayKind),
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [ArrayColumn; 3] = [
        ArrayColumn {
            kind: ArrayKind::Text,
            nullable: false,
        },
        ArrayColumn {
            kind: ArrayKind::Json,
            nullable: true,
        },
        ArrayColumn {
            kind: ArrayKind::Boolean,
            nullable: false,
        },
    ];

    #[test]
    fn a_nullable_column_reads_through_its_mask() {
        let (source, reads) = unnest_source(&COLUMNS, 3);
        assert_eq!(
            source,
            "unnest($3::text[], $4::text[], $5::boolean[], $6::boolean[]) AS r(c0, c1, p1, c2)"
        );
        assert_eq!(
            reads,
            ["r.c0", "CASE WHEN r.p1 THEN r.c1::jsonb END", "r.c2"]
        );
    }

    #[test]
    fn values_come_out_in_the_parameters_order() {
        let mut rows = ArrayRows::new(&COLUMNS, 2);
        for (name, json) in [("a", Some("{}")), ("b", None)] {
            rows.push_text(0, Some(name.into())).unwrap();
            rows.push_text(1, json.map(str::to_owned)).unwrap();
            rows.push_bool(2, Some(true)).unwrap();
        }
        let values = rows.into_values();
        let strings = |v: &[&str]| {
            array(
                ArrayType::String,
                v.iter().map(|s| Value::String(Some((*s).into()))).collect(),
            )
        };
        let bools = |v: &[bool]| {
            array(
                ArrayType::Bool,
                v.iter().map(|b| Value::Bool(Some(*b))).collect(),
            )
        };
        assert_eq!(
            values,
            [
                strings(&["a", "b"]),
                strings(&["{}", ""]),
                bools(&[true, false]),
                bools(&[true, true]),
            ]
        );
    }

    #[test]
    fn a_row_that_does_not_fit_is_an_error() {
        let mut rows = ArrayRows::new(&COLUMNS, 1);
        assert_eq!(
            rows.push_text(0, None),
            Err(ArrayError::NullInRequiredColumn(0))
        );
        assert_eq!(
            rows.push_bool(0, Some(true)),
            Err(ArrayError::WrongKind(0, ArrayKind::Text))
        );
        assert_eq!(rows.push_text(3, None), Err(ArrayError::NoSuchColumn(3)));
    }
}
