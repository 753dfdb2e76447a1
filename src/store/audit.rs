//! The audit trail: append-only rows, written in the same transaction as the change.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
    sea_query::{OnConflict, Query},
};

use super::{NamespaceScope, Store, StoreError, entity::audit_event, scope::Namespace};

/// One audit event to record: who, what, when, where and why.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    pub namespace: Namespace,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub actor_groups: Vec<String>,
    pub verb: String,
    pub resource: String,
    pub object_name: String,
    pub object_uid: Option<String>,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client: Option<String>,
    pub details: Option<serde_json::Value>,
    /// Makes a retried write record the event once (for example job uid + attempt + object).
    pub idempotency_key: Option<String>,
}

const AUDIT_COLUMNS: [audit_event::Column; 15] = [
    audit_event::Column::Namespace,
    audit_event::Column::OccurredAt,
    audit_event::Column::Actor,
    audit_event::Column::ActorGroups,
    audit_event::Column::Verb,
    audit_event::Column::Resource,
    audit_event::Column::ObjectName,
    audit_event::Column::ObjectUid,
    audit_event::Column::BeforeDigest,
    audit_event::Column::AfterDigest,
    audit_event::Column::Reason,
    audit_event::Column::RequestId,
    audit_event::Column::Client,
    audit_event::Column::Details,
    audit_event::Column::IdempotencyKey,
];

const AUDIT_CHUNK: usize = 2_000;

/// Inserts events in multi-row statements; an event whose idempotency key exists is skipped.
pub(super) async fn insert_batch<C: ConnectionTrait>(
    conn: &C,
    events: &[NewAuditEvent],
) -> Result<u64, StoreError> {
    let mut written = 0;
    for chunk in events.chunks(AUDIT_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(audit_event::Entity)
            .columns(AUDIT_COLUMNS);
        for e in chunk {
            insert
                .values([
                    e.namespace.as_str().into(),
                    e.occurred_at.into(),
                    e.actor.clone().into(),
                    serde_json::json!(e.actor_groups).into(),
                    e.verb.clone().into(),
                    e.resource.clone().into(),
                    e.object_name.clone().into(),
                    e.object_uid.clone().into(),
                    e.before_digest.clone().into(),
                    e.after_digest.clone().into(),
                    e.reason.clone().into(),
                    e.request_id.clone().into(),
                    e.client.clone().into(),
                    e.details.clone().into(),
                    e.idempotency_key.clone().into(),
                ])
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        }
        insert.on_conflict(
            OnConflict::column(audit_event::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        );
        written += conn.execute(&insert).await?.rows_affected();
    }
    Ok(written)
}

impl Store {
    /// Records events on their own (changes that are not a refresh).
    pub async fn record_audit_events(&self, events: &[NewAuditEvent]) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let written = insert_batch(&txn, events).await?;
        txn.commit().await?;
        Ok(written)
    }

    /// Audit events in `scope`, oldest first, after the given id.
    pub async fn list_audit_events(
        &self,
        scope: &NamespaceScope,
        after_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<audit_event::Model>, StoreError> {
        let mut select = audit_event::Entity::find().filter(
            audit_event::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)),
        );
        if let Some(id) = after_id {
            select = select.filter(audit_event::Column::Id.gt(id));
        }
        let txn = self.begin_scoped(scope).await?;
        let rows = select
            .order_by_asc(audit_event::Column::Id)
            .limit(limit)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// The retention path: deletes up to `batch` events older than `cutoff` and returns how
    /// many it deleted. The only way past the append-only trigger.
    pub async fn purge_audit_events_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let backend = self.backend();
        if backend == DatabaseBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "SELECT set_config($1, 'on', true)",
                [migrations::AUDIT_RETENTION_SETTING.into()],
            ))
            .await?;
        }
        let ids: Vec<i64> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Id)
            .filter(audit_event::Column::OccurredAt.lt(cutoff))
            .order_by_asc(audit_event::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(&txn)
            .await?;
        let deleted = if ids.is_empty() {
            0
        } else {
            audit_event::Entity::delete_many()
                .filter(audit_event::Column::Id.is_in(ids))
                .exec(&txn)
                .await?
                .rows_affected
        };
        txn.commit().await?;
        Ok(deleted)
    }
}
