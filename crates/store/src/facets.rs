//! Counts per value of an asset field (facets), and per namespace and kind: through the
//! scoped path, like lists, so row-level security bounds them as it bounds pages.

use std::collections::BTreeMap;

use curio_core::catalog::AssetRecord;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, Order, QueryFilter, QuerySelect,
    QueryTrait, Statement,
    sea_query::{Alias, Expr, ExprTrait, Query},
};

use crate::{
    AssetQuery, Namespace, NamespaceScope, Store, StoreError, assets::filter_conditions,
    entity::asset,
};

/// A field an asset list can be counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FacetField {
    Kind,
    Provider,
    License,
    Tag,
    Stage,
    Approved,
    Source,
    /// Label keys (each asset counts once per key it carries).
    LabelKey,
}

impl FacetField {
    pub const ALL: [Self; 8] = [
        Self::Kind,
        Self::Provider,
        Self::License,
        Self::Tag,
        Self::Stage,
        Self::Approved,
        Self::Source,
        Self::LabelKey,
    ];

    /// The API's name for the field (`field=` of the facets route).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kind => "kind",
            Self::Provider => "provider",
            Self::License => "license",
            Self::Tag => "tag",
            Self::Stage => "stage",
            Self::Approved => "approved",
            Self::Source => "source",
            Self::LabelKey => "labelKey",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The query without this field's own filter: a facet counts the values one could switch
    /// to, under every other filter (the usual "disjunctive" facet).
    pub fn without_own_filter(self, query: &AssetQuery) -> AssetQuery {
        let mut query = query.clone();
        match self {
            Self::Kind => query.kinds = None,
            Self::Provider => query.providers.clear(),
            Self::License => query.licenses.clear(),
            Self::Tag => query.tags.clear(),
            Self::Stage => query.stages.clear(),
            Self::Approved => query.approved = None,
            Self::Source => query.sources.clear(),
            Self::LabelKey => {}
        }
        query
    }

    /// The values the outer query groups by, one row per value an asset of `inner` carries
    /// (the same definition `asset_facet_counts` is filled with).
    fn sql(self, backend: DatabaseBackend, inner: &str) -> String {
        let (value, from) = migrations::facet_values(backend)
            .into_iter()
            .find(|(field, _, _)| *field == self.as_str())
            .map(|(_, value, from)| (value, from))
            // Every field is in the list: `fields_match_the_stored_counts` checks it.
            .unwrap_or(("NULL", ""));
        format!("SELECT {value} AS value FROM ({inner}) AS a{from}")
    }

    /// Whether `asset_facet_counts` can answer a count under `query` (kept per namespace,
    /// source and kind, so only those may narrow it).
    fn counted_under(query: &AssetQuery) -> bool {
        let AssetQuery {
            kinds: _,
            kinds_by_namespace: _,
            sources: _,
            namespace: _,
            providers,
            licenses,
            tags,
            labels,
            stages,
            approved,
            text,
            name,
            version,
            object_name,
        } = query;
        providers.is_empty()
            && licenses.is_empty()
            && tags.is_empty()
            && labels.is_empty()
            && stages.is_empty()
            && approved.is_none()
            && text.is_none()
            && name.is_none()
            && version.is_none()
            && object_name.is_none()
    }
}

/// One field's most frequent values, most frequent first (ties by value).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Facet {
    pub field: FacetField,
    pub values: Vec<FacetValue>,
    /// More distinct values exist than were returned.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
}

/// Assets of one kind in one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindCount {
    pub namespace: String,
    pub kind: String,
    pub count: i64,
}

impl Store {
    /// The top `top` values of each of `fields` among the assets in `scope` matching `query`
    /// (each field counted without its own filter), in one scoped transaction: from the
    /// stored counts where the query allows, otherwise by counting the matching assets.
    pub async fn asset_facets(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        fields: &[FacetField],
        top: u64,
    ) -> Result<Vec<Facet>, StoreError> {
        let backend = self.backend();
        let txn = self.begin_scoped(scope).await?;
        if backend == DatabaseBackend::Postgres {
            // Counting a large namespace crosses the JIT threshold, and compiling the plan
            // costs more (~200 ms) than the count itself.
            txn.execute_unprepared("SET LOCAL jit = off").await?;
        }
        let mut facets = Vec::with_capacity(fields.len());
        for field in fields {
            let query = field.without_own_filter(query);
            let counted = if FacetField::counted_under(&query) {
                stored_counts(backend, scope, &query, *field)
            } else {
                counted_rows(backend, scope, &query, *field)
            };
            // `top` is a number of ours, not a bound value: the statement's own placeholders
            // stay as built.
            let statement = wrapped(counted, |inner| {
                format!(
                    "SELECT value, count FROM ({inner}) AS f ORDER BY count DESC, value LIMIT {}",
                    top.saturating_add(1)
                )
            });
            let rows = txn.query_all_raw(statement).await?;
            let mut values = rows
                .iter()
                .map(|row| {
                    Ok(FacetValue {
                        value: row.try_get("", "value")?,
                        count: row.try_get("", "count")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let truncated = values.len() as u64 > top;
            values.truncate(top as usize);
            facets.push(Facet {
                field: *field,
                values,
                truncated,
            });
        }
        txn.commit().await?;
        Ok(facets)
    }

    /// How many assets of each kind each namespace of `scope` holds (pairs with none omitted),
    /// from the stored counts.
    pub async fn asset_counts(&self, scope: &NamespaceScope) -> Result<Vec<KindCount>, StoreError> {
        let backend = self.backend();
        let mut select = counts_of(scope, FacetField::Kind);
        select
            .column(asset::Column::Namespace)
            .column(asset::Column::Kind)
            .group_by_col(asset::Column::Namespace)
            .group_by_col(asset::Column::Kind)
            .order_by(asset::Column::Namespace, Order::Asc)
            .order_by(asset::Column::Kind, Order::Asc);
        let txn = self.begin_scoped(scope).await?;
        let rows = txn.query_all_raw(backend.build(&select)).await?;
        txn.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(KindCount {
                    namespace: row.try_get("", "namespace")?,
                    kind: row.try_get("", "kind")?,
                    count: row.try_get("", "count")?,
                })
            })
            .collect()
    }
}

/// The table of stored counts (migration 7).
const COUNTS_TABLE: &str = "asset_facet_counts";

/// The stored counts of `field` in `scope`, summed as `count` over whatever the caller groups
/// by.
fn counts_of(scope: &NamespaceScope, field: FacetField) -> sea_orm::sea_query::SelectStatement {
    let mut select = Query::select();
    select
        .expr_as(
            Expr::cust("CAST(SUM(count) AS BIGINT)"),
            Alias::new("count"),
        )
        .from_as(Alias::new(COUNTS_TABLE), asset::Entity)
        .and_where(asset::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)))
        .and_where(Expr::col(Alias::new("field")).eq(field.as_str()));
    select
}

/// `(value, count)` of `field` from the stored counts. The table is aliased as `assets`, so
/// the asset filters it can answer (namespace, kind, source: `counted_under`) apply to it
/// unchanged.
fn stored_counts(
    backend: DatabaseBackend,
    scope: &NamespaceScope,
    query: &AssetQuery,
    field: FacetField,
) -> Statement {
    let mut select = counts_of(scope, field);
    select.column(Alias::new("value"));
    for condition in filter_conditions(backend, query) {
        select.and_where(condition);
    }
    select.group_by_col(Alias::new("value"));
    backend.build(&select)
}

/// `(value, count)` of `field`, counted over the matching assets.
fn counted_rows(
    backend: DatabaseBackend,
    scope: &NamespaceScope,
    query: &AssetQuery,
    field: FacetField,
) -> Statement {
    let mut inner = asset::Entity::find()
        .select_only()
        .columns([
            asset::Column::Kind,
            asset::Column::Provider,
            asset::Column::License,
            asset::Column::Stage,
            asset::Column::Source,
            asset::Column::Approved,
            asset::Column::Tags,
            asset::Column::Labels,
        ])
        .filter(asset::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)));
    for condition in filter_conditions(backend, query) {
        inner = inner.filter(condition);
    }
    wrapped(inner.build(backend), |inner| {
        format!(
            "SELECT value, COUNT(*) AS count FROM ({}) AS v WHERE value IS NOT NULL GROUP BY value",
            field.sql(backend, inner)
        )
    })
}

/// Rewrites `source`'s stored counts from its assets, in the refresh transaction that changed
/// them.
pub(crate) async fn rewrite_counts(
    txn: &impl ConnectionTrait,
    backend: DatabaseBackend,
    namespace: &Namespace,
    source: &str,
) -> Result<(), StoreError> {
    let pg = backend == DatabaseBackend::Postgres;
    let condition = if pg {
        "a.namespace = $1 AND a.source = $2"
    } else {
        "a.namespace = ?1 AND a.source = ?2"
    };
    let values = || [namespace.as_str().into(), source.into()];
    delete_counts(txn, namespace, source).await?;
    if pg {
        // A large source's count crosses the JIT threshold; compiling costs more than counting.
        txn.execute_unprepared("SET LOCAL jit = off").await?;
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO asset_facet_counts (namespace, source, kind, field, value, count) {}",
            migrations::facet_count_rows(backend, condition)
        ),
        values(),
    ))
    .await?;
    Ok(())
}

/// Drops `source`'s stored counts, the first half of both ways of rewriting them.
async fn delete_counts(
    txn: &impl ConnectionTrait,
    namespace: &Namespace,
    source: &str,
) -> Result<(), StoreError> {
    txn.execute(
        &Query::delete()
            .from_table(Alias::new(COUNTS_TABLE))
            .and_where(Expr::col(Alias::new("namespace")).eq(namespace.as_str()))
            .and_where(Expr::col(Alias::new("source")).eq(source))
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// Rows per facet-count `INSERT` (six binds a row, far under either backend's limit).
const COUNT_CHUNK: usize = 1_000;

/// What [`rewrite_counts`] would store for `source` if its assets were exactly `records`:
/// `(kind, field, value) → count`, each record counting once per value it carries (per tag,
/// per label key), absent values not at all. Pure, so a refresh that finds its source empty
/// counts the records it is inserting instead of reading them back.
pub(crate) fn counts_of_records<'a>(
    source: &str,
    records: impl IntoIterator<Item = &'a AssetRecord>,
) -> BTreeMap<(&'static str, FacetField, String), i64> {
    let mut counts = BTreeMap::new();
    for record in records {
        let fields = record.fields();
        let kind = fields.kind.as_str();
        let mut count = |field: FacetField, value: &str| {
            *counts.entry((kind, field, value.to_owned())).or_insert(0) += 1;
        };
        count(FacetField::Kind, kind);
        if let Some(provider) = &fields.provider {
            count(FacetField::Provider, provider);
        }
        if let Some(license) = &fields.license {
            count(FacetField::License, license);
        }
        for tag in &fields.tags {
            count(FacetField::Tag, tag);
        }
        if let Some(stage) = &fields.stage {
            count(FacetField::Stage, stage);
        }
        count(
            FacetField::Approved,
            if fields.approved { "true" } else { "false" },
        );
        count(FacetField::Source, source);
        for key in fields.labels.keys() {
            count(FacetField::LabelKey, key);
        }
    }
    counts
}

/// Replaces `source`'s stored counts with those of `records`, in the refresh transaction
/// that stores exactly them (see [`counts_of_records`]).
pub(crate) async fn write_counts_of(
    txn: &impl ConnectionTrait,
    namespace: &Namespace,
    source: &str,
    records: &[AssetRecord],
) -> Result<(), StoreError> {
    delete_counts(txn, namespace, source).await?;
    let table = Alias::new(COUNTS_TABLE);
    let counts: Vec<_> = counts_of_records(source, records).into_iter().collect();
    for chunk in counts.chunks(COUNT_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(table.clone())
            .columns(["namespace", "source", "kind", "field", "value", "count"].map(Alias::new));
        for ((kind, field, value), count) in chunk {
            insert
                .values([
                    namespace.as_str().into(),
                    source.into(),
                    (*kind).into(),
                    field.as_str().into(),
                    value.clone().into(),
                    (*count).into(),
                ])
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        }
        txn.execute(&insert).await?;
    }
    Ok(())
}

/// `inner` inside an outer query built around its SQL, with its bound values kept.
fn wrapped(inner: Statement, outer: impl FnOnce(&str) -> String) -> Statement {
    Statement::from_sql_and_values(
        inner.db_backend,
        outer(&inner.sql),
        inner.values.map(|v| v.0).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::FacetField;

    #[test]
    fn fields_match_the_stored_counts() {
        for backend in [
            sea_orm::DatabaseBackend::Postgres,
            sea_orm::DatabaseBackend::Sqlite,
        ] {
            let stored: Vec<&str> = migrations::facet_values(backend)
                .iter()
                .map(|(field, _, _)| *field)
                .collect();
            let ours: Vec<&str> = FacetField::ALL.iter().map(|f| f.as_str()).collect();
            assert_eq!(stored, ours);
        }
    }
}
