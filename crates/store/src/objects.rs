//! CatalogSources and RefreshJobs as the controller last saw them, kept for the read API.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use serde_json::Value;

use super::{
    NamespaceScope, Store, StoreError,
    entity::{catalog_source, refresh_job},
    query::{NameCursor, Page},
    scope::Namespace,
};

/// What the controller writes: the object's identity, spec and status.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectRecord {
    pub namespace: Namespace,
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub spec: Value,
    pub status: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// The tables that keep copies of the custom resources, for the read API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectTable {
    CatalogSources,
    RefreshJobs,
}

/// What the API reads back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub generation: i64,
    pub spec: Value,
    pub status: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<catalog_source::Model> for StoredObject {
    fn from(m: catalog_source::Model) -> Self {
        Self {
            namespace: m.namespace,
            name: m.name,
            uid: m.uid,
            generation: m.generation,
            spec: m.spec,
            status: m.status,
            created_at: m.created_at,
        }
    }
}

impl From<refresh_job::Model> for StoredObject {
    fn from(m: refresh_job::Model) -> Self {
        Self {
            namespace: m.namespace,
            name: m.name,
            uid: Some(m.uid),
            generation: 0,
            spec: m.spec,
            status: m.status,
            created_at: m.created_at,
        }
    }
}

fn page<T>(mut items: Vec<T>, limit: u64, key: impl Fn(&T) -> NameCursor) -> Page<T, NameCursor> {
    let next = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

fn after_condition(cursor: &NameCursor) -> sea_orm::sea_query::SimpleExpr {
    Expr::tuple([Expr::col("namespace"), Expr::col("name")]).gt(Expr::tuple([
        Expr::val(cursor.namespace.clone()),
        Expr::val(cursor.name.clone()),
    ]))
}

impl Store {
    pub async fn upsert_source(&self, record: &ObjectRecord) -> Result<(), StoreError> {
        use catalog_source::Column as C;
        let status = record.status.as_ref();
        let field = |name: &str| status.and_then(|s| s.get(name));
        let now = Utc::now();
        let last_refresh: Option<DateTime<Utc>> = field("lastRefreshTime")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let insert = Query::insert()
            .into_table(catalog_source::Entity)
            .columns([
                C::Namespace,
                C::Name,
                C::Uid,
                C::Generation,
                C::Spec,
                C::Status,
                C::AssetCount,
                C::ContentDigest,
                C::LastRefreshTime,
                C::CreatedAt,
                C::UpdatedAt,
            ])
            .values_panic([
                record.namespace.as_str().into(),
                record.name.clone().into(),
                record.uid.clone().into(),
                record.generation.into(),
                record.spec.clone().into(),
                record.status.clone().into(),
                field("assetCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .into(),
                field("contentDigest")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .into(),
                last_refresh.into(),
                record.created_at.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::columns([C::Namespace, C::Name])
                    .update_columns([
                        C::Uid,
                        C::Generation,
                        C::Spec,
                        C::Status,
                        C::AssetCount,
                        C::ContentDigest,
                        C::LastRefreshTime,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .to_owned();
        sea_orm::ConnectionTrait::execute(&self.db, &insert).await?;
        Ok(())
    }

    /// Removes `table`'s copy of an object (it was deleted in the cluster).
    pub async fn delete_object(
        &self,
        table: ObjectTable,
        namespace: &Namespace,
        name: &str,
    ) -> Result<(), StoreError> {
        use {catalog_source::Column as S, refresh_job::Column as J};
        let ns = namespace.as_str();
        match table {
            ObjectTable::CatalogSources => {
                catalog_source::Entity::delete_many()
                    .filter(S::Namespace.eq(ns))
                    .filter(S::Name.eq(name))
                    .exec(&self.db)
                    .await?
            }
            ObjectTable::RefreshJobs => {
                refresh_job::Entity::delete_many()
                    .filter(J::Namespace.eq(ns))
                    .filter(J::Name.eq(name))
                    .exec(&self.db)
                    .await?
            }
        };
        Ok(())
    }

    pub async fn upsert_job(&self, record: &ObjectRecord) -> Result<(), StoreError> {
        use refresh_job::Column as C;
        let status = record.status.as_ref();
        let field = |name: &str| status.and_then(|s| s.get(name));
        let time = |name: &str| -> Option<DateTime<Utc>> {
            field(name)
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let now = Utc::now();
        let insert = Query::insert()
            .into_table(refresh_job::Entity)
            .columns([
                C::Namespace,
                C::Name,
                C::Uid,
                C::SourceName,
                C::Phase,
                C::Attempts,
                C::Reason,
                C::Spec,
                C::Status,
                C::StartedAt,
                C::CompletedAt,
                C::CreatedAt,
                C::UpdatedAt,
            ])
            .values_panic([
                record.namespace.as_str().into(),
                record.name.clone().into(),
                record.uid.clone().into(),
                record
                    .spec
                    .pointer("/sourceRef/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .into(),
                field("phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Pending")
                    .to_owned()
                    .into(),
                (field("attempts").and_then(Value::as_i64).unwrap_or(0) as i32).into(),
                record
                    .spec
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .into(),
                record.spec.clone().into(),
                record.status.clone().into(),
                time("startTime").into(),
                time("completionTime").into(),
                record.created_at.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::columns([C::Namespace, C::Name])
                    .update_columns([
                        C::Uid,
                        C::SourceName,
                        C::Phase,
                        C::Attempts,
                        C::Reason,
                        C::Spec,
                        C::Status,
                        C::StartedAt,
                        C::CompletedAt,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .to_owned();
        sea_orm::ConnectionTrait::execute(&self.db, &insert).await?;
        Ok(())
    }

    /// A page of `table`'s objects in `scope`, in `(namespace, name)` order.
    pub async fn list_objects(
        &self,
        table: ObjectTable,
        scope: &NamespaceScope,
        after: Option<&NameCursor>,
        limit: u64,
    ) -> Result<Page<StoredObject, NameCursor>, StoreError> {
        use {catalog_source::Column as S, refresh_job::Column as J};
        match table {
            ObjectTable::CatalogSources => {
                self.list_table::<catalog_source::Entity>(
                    scope,
                    S::Namespace,
                    S::Name,
                    after,
                    limit,
                )
                .await
            }
            ObjectTable::RefreshJobs => {
                self.list_table::<refresh_job::Entity>(scope, J::Namespace, J::Name, after, limit)
                    .await
            }
        }
    }

    /// One of `table`'s objects by name.
    pub async fn get_object(
        &self,
        table: ObjectTable,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        use {catalog_source::Column as S, refresh_job::Column as J};
        match table {
            ObjectTable::CatalogSources => {
                self.get_from::<catalog_source::Entity>(namespace, S::Namespace, S::Name, name)
                    .await
            }
            ObjectTable::RefreshJobs => {
                self.get_from::<refresh_job::Entity>(namespace, J::Namespace, J::Name, name)
                    .await
            }
        }
    }

    /// A page of one CR table in `(namespace, name)` order, through the RLS-scoped path.
    async fn list_table<E>(
        &self,
        scope: &NamespaceScope,
        namespace_column: E::Column,
        name_column: E::Column,
        after: Option<&NameCursor>,
        limit: u64,
    ) -> Result<Page<StoredObject, NameCursor>, StoreError>
    where
        E: EntityTrait,
        E::Model: Into<StoredObject>,
    {
        let mut select =
            E::find().filter(namespace_column.is_in(scope.namespaces().map(Namespace::as_str)));
        if let Some(cursor) = after {
            select = select.filter(after_condition(cursor));
        }
        let txn = self.begin_scoped(scope).await?;
        let rows = select
            .order_by_asc(namespace_column)
            .order_by_asc(name_column)
            .limit(limit.saturating_add(1))
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(page(
            rows.into_iter().map(Into::into).collect(),
            limit,
            |o| NameCursor {
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            },
        ))
    }

    async fn get_from<E>(
        &self,
        namespace: &Namespace,
        namespace_column: E::Column,
        name_column: E::Column,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError>
    where
        E: EntityTrait,
        E::Model: Into<StoredObject>,
    {
        let scope = NamespaceScope::single(namespace.clone());
        let txn = self.begin_scoped(&scope).await?;
        let row = E::find()
            .filter(namespace_column.eq(namespace.as_str()))
            .filter(name_column.eq(name))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(Into::into))
    }
}
