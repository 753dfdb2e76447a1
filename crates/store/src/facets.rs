//! Counts per value of an asset field (facets), and per namespace and kind: through the
//! scoped path, like lists, so row-level security bounds them as it bounds pages.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect,
    QueryTrait, Statement,
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

    /// The selected column the outer query groups by, and the FROM that produces it.
    fn sql(self, pg: bool, inner: &str) -> String {
        let column = |c: &str| format!("SELECT {c} AS value FROM ({inner}) AS a");
        match (self, pg) {
            (Self::Kind, _) => column("a.kind"),
            (Self::Provider, _) => column("a.provider"),
            (Self::License, _) => column("a.license"),
            (Self::Stage, _) => column("a.stage"),
            (Self::Source, _) => column("a.source"),
            (Self::Approved, true) => column("CASE WHEN a.approved THEN 'true' ELSE 'false' END"),
            (Self::Approved, false) => {
                column("CASE WHEN a.approved <> 0 THEN 'true' ELSE 'false' END")
            }
            (Self::Tag, true) => format!(
                "SELECT t.value AS value FROM ({inner}) AS a, jsonb_array_elements_text(a.tags) AS t(value)"
            ),
            (Self::Tag, false) => {
                format!("SELECT t.value AS value FROM ({inner}) AS a, json_each(a.tags) AS t")
            }
            (Self::LabelKey, true) => format!(
                "SELECT k.key AS value FROM ({inner}) AS a, jsonb_object_keys(a.labels) AS k(key)"
            ),
            (Self::LabelKey, false) => {
                format!("SELECT k.key AS value FROM ({inner}) AS a, json_each(a.labels) AS k")
            }
        }
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
    /// (each field counted without its own filter), in one scoped transaction.
    pub async fn asset_facets(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        fields: &[FacetField],
        top: u64,
    ) -> Result<Vec<Facet>, StoreError> {
        let backend = self.backend();
        let pg = backend == DatabaseBackend::Postgres;
        let txn = self.begin_scoped(scope).await?;
        let mut facets = Vec::with_capacity(fields.len());
        for field in fields {
            let query = field.without_own_filter(query);
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
            for condition in filter_conditions(backend, &query) {
                inner = inner.filter(condition);
            }
            // `top` is a number of ours, not a bound value: the statement's own placeholders
            // stay as built.
            let statement = wrapped(inner.build(backend), |inner| {
                format!(
                    "SELECT value, COUNT(*) AS count FROM ({}) AS f WHERE value IS NOT NULL \
                     GROUP BY value ORDER BY count DESC, value LIMIT {}",
                    field.sql(pg, inner),
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

    /// How many assets of each kind each namespace of `scope` holds (pairs with none omitted).
    pub async fn asset_counts(&self, scope: &NamespaceScope) -> Result<Vec<KindCount>, StoreError> {
        let backend = self.backend();
        let inner = asset::Entity::find()
            .select_only()
            .columns([asset::Column::Namespace, asset::Column::Kind])
            .filter(asset::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)))
            .build(backend);
        let statement = wrapped(inner, |inner| {
            format!(
                "SELECT namespace, kind, COUNT(*) AS count FROM ({inner}) AS a \
                 GROUP BY namespace, kind ORDER BY namespace, kind"
            )
        });
        let txn = self.begin_scoped(scope).await?;
        let rows = txn.query_all_raw(statement).await?;
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

/// `inner` inside an outer query built around its SQL, with its bound values kept.
fn wrapped(inner: Statement, outer: impl FnOnce(&str) -> String) -> Statement {
    Statement::from_sql_and_values(
        inner.db_backend,
        outer(&inner.sql),
        inner.values.map(|v| v.0).unwrap_or_default(),
    )
}
