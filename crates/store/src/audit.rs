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

/// Filters of an audit list; empty lists and `None` match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AuditQuery {
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
    pub actors: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    /// The object's name.
    pub name: Option<String>,
    /// The object's uid.
    pub uid: Option<String>,
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

/// Rows per multi-row `VALUES` statement on SQLite (under its 32,766 bind limit).
const AUDIT_CHUNK: usize = 2_000;
/// Rows per PostgreSQL statement; the rows travel as one JSON parameter.
const PG_JSON_CHUNK: usize = 5_000;

#[derive(serde::Serialize)]
struct PgAuditRow<'a> {
    namespace: &'a str,
    occurred_at: DateTime<Utc>,
    actor: &'a str,
    actor_groups: &'a [String],
    verb: &'a str,
    resource: &'a str,
    object_name: &'a str,
    object_uid: Option<&'a str>,
    before_digest: Option<&'a str>,
    after_digest: Option<&'a str>,
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
    client: Option<&'a str>,
    details: Option<&'a serde_json::Value>,
    idempotency_key: Option<&'a str>,
}

const PG_JSON_INSERT: &str = r#"
INSERT INTO audit_events (namespace, occurred_at, actor, actor_groups, verb, resource, object_name,
                          object_uid, before_digest, after_digest, reason, request_id, client,
                          details, idempotency_key)
SELECT r.namespace, r.occurred_at, r.actor, r.actor_groups, r.verb, r.resource, r.object_name,
       r.object_uid, r.before_digest, r.after_digest, r.reason, r.request_id, r.client,
       r.details, r.idempotency_key
FROM jsonb_to_recordset($1::text::jsonb) AS r(
    namespace text, occurred_at timestamptz, actor text, actor_groups jsonb, verb text,
    resource text, object_name text, object_uid text, before_digest text, after_digest text,
    reason text, request_id text, client text, details jsonb, idempotency_key text)"#;

/// Events with an idempotency key skip the ones already recorded. Events without one cannot
/// conflict, and a plain insert spares them the speculative insertion (a unique-index probe
/// and a second heap write per row).
fn pg_json_insert(events: &[NewAuditEvent], keyed: bool) -> Statement {
    let rows: Vec<PgAuditRow<'_>> = events
        .iter()
        .map(|e| PgAuditRow {
            namespace: e.namespace.as_str(),
            occurred_at: e.occurred_at,
            actor: &e.actor,
            actor_groups: &e.actor_groups,
            verb: &e.verb,
            resource: &e.resource,
            object_name: &e.object_name,
            object_uid: e.object_uid.as_deref(),
            before_digest: e.before_digest.as_deref(),
            after_digest: e.after_digest.as_deref(),
            reason: e.reason.as_deref(),
            request_id: e.request_id.as_deref(),
            client: e.client.as_deref(),
            details: e.details.as_ref(),
            idempotency_key: e.idempotency_key.as_deref(),
        })
        .collect();
    // Borrowed plain data with string keys: serialization cannot fail.
    let rows = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
    let sql = if keyed {
        format!("{PG_JSON_INSERT} ON CONFLICT (idempotency_key) DO NOTHING")
    } else {
        PG_JSON_INSERT.to_owned()
    };
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, [rows.into()])
}

/// Inserts events in batched statements; an event whose idempotency key exists is skipped.
pub(super) async fn insert_batch<C: ConnectionTrait>(
    conn: &C,
    events: &[NewAuditEvent],
) -> Result<u64, StoreError> {
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        let mut written = 0;
        // Runs of keyed and unkeyed events, so the rows keep the events' order.
        for run in
            events.chunk_by(|a, b| a.idempotency_key.is_some() == b.idempotency_key.is_some())
        {
            let keyed = run[0].idempotency_key.is_some();
            for chunk in run.chunks(PG_JSON_CHUNK) {
                written += conn
                    .execute_raw(pg_json_insert(chunk, keyed))
                    .await?
                    .rows_affected();
            }
        }
        return Ok(written);
    }
    let mut written = 0;
    for chunk in events.chunks(AUDIT_CHUNK) {
        written += conn
            .execute(&audit_insert_statement(chunk)?)
            .await?
            .rows_affected();
    }
    Ok(written)
}

/// One multi-row `INSERT … ON CONFLICT (idempotency_key) DO NOTHING` for `events`.
pub fn audit_insert_statement(
    events: &[NewAuditEvent],
) -> Result<sea_orm::sea_query::InsertStatement, StoreError> {
    let mut insert = Query::insert();
    insert
        .into_table(audit_event::Entity)
        .columns(AUDIT_COLUMNS);
    for e in events {
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
    Ok(insert)
}

impl Store {
    /// Records events on their own (changes that are not a refresh).
    pub async fn record_audit_events(&self, events: &[NewAuditEvent]) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let written = insert_batch(&txn, events).await?;
        txn.commit().await?;
        Ok(written)
    }

    /// Audit events in `scope` that match `query`, oldest first, after the given id.
    pub async fn list_audit_events(
        &self,
        scope: &NamespaceScope,
        query: &AuditQuery,
        after_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<audit_event::Model>, StoreError> {
        let mut select = audit_event::Entity::find().filter(
            audit_event::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)),
        );
        if let Some(since) = query.since {
            select = select.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = query.until {
            select = select.filter(audit_event::Column::OccurredAt.lt(until));
        }
        if !query.actors.is_empty() {
            select = select.filter(audit_event::Column::Actor.is_in(query.actors.iter().cloned()));
        }
        if !query.verbs.is_empty() {
            select = select.filter(audit_event::Column::Verb.is_in(query.verbs.iter().cloned()));
        }
        if !query.resources.is_empty() {
            select =
                select.filter(audit_event::Column::Resource.is_in(query.resources.iter().cloned()));
        }
        if let Some(name) = &query.name {
            select = select.filter(audit_event::Column::ObjectName.eq(name.clone()));
        }
        if let Some(uid) = &query.uid {
            select = select.filter(audit_event::Column::ObjectUid.eq(uid.clone()));
        }
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
