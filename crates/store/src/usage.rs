//! How much each namespace holds, for `CatalogPolicy` quotas and their status. Controller-side
//! reads across namespaces (the controller's own connection, not a tenant's scoped one).

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    Store, StoreError,
    entity::{asset, catalog_source},
    scope::Namespace,
};

/// One namespace's sources and assets, as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub sources: i64,
    pub assets: i64,
}

impl Store {
    /// The assets of `namespace` that come from sources other than `source`.
    pub async fn assets_outside_source(
        &self,
        namespace: &Namespace,
        source: &str,
    ) -> Result<i64, StoreError> {
        let count: Option<i64> = asset::Entity::find()
            .select_only()
            .column_as(asset::Column::Name.count(), "count")
            .filter(asset::Column::Namespace.eq(namespace.as_str()))
            .filter(asset::Column::Source.ne(source))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(count.unwrap_or(0))
    }

    /// Sources and assets per namespace, for every namespace that has either.
    pub async fn usage_by_namespace(&self) -> Result<BTreeMap<String, Usage>, StoreError> {
        let assets: Vec<(String, i64)> = asset::Entity::find()
            .select_only()
            .column(asset::Column::Namespace)
            .column_as(asset::Column::Name.count(), "count")
            .group_by(asset::Column::Namespace)
            .into_tuple()
            .all(&self.db)
            .await?;
        let sources: Vec<(String, i64)> = catalog_source::Entity::find()
            .select_only()
            .column(catalog_source::Column::Namespace)
            .column_as(catalog_source::Column::Name.count(), "count")
            .group_by(catalog_source::Column::Namespace)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
        for (namespace, count) in assets {
            usage.entry(namespace).or_default().assets = count;
        }
        for (namespace, count) in sources {
            usage.entry(namespace).or_default().sources = count;
        }
        Ok(usage)
    }
}
