//! The audit trail: append-only rows, written in the same transaction as the change.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
    sea_query::{Iden, OnConflict, Query},
};

use std::sync::OnceLock;

use super::{
    NamespaceScope, Store, StoreError,
    entity::audit_event,
    pg_arrays::{self, ArrayColumn, ArrayKind, ArrayRows},
    pg_copy::{self, CopyText, CopyTransaction},
    scope::Namespace,
};

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
/// Rows per PostgreSQL statement; the rows travel as one array per column.
const PG_ARRAY_CHUNK: usize = 5_000;

const fn array(kind: ArrayKind, nullable: bool) -> ArrayColumn {
    ArrayColumn { kind, nullable }
}

/// [`AUDIT_COLUMNS`] as `unnest` sources, in the same order.
const AUDIT_ARRAYS: [ArrayColumn; 15] = [
    array(ArrayKind::Text, false),      // namespace
    array(ArrayKind::Timestamp, false), // occurred_at
    array(ArrayKind::Text, false),      // actor
    array(ArrayKind::Json, false),      // actor_groups
    array(ArrayKind::Text, false),      // verb
    array(ArrayKind::Text, false),      // resource
    array(ArrayKind::Text, false),      // object_name
    array(ArrayKind::Text, true),       // object_uid
    array(ArrayKind::Text, true),       // before_digest
    array(ArrayKind::Text, true),       // after_digest
    array(ArrayKind::Text, true),       // reason
    array(ArrayKind::Text, true),       // request_id
    array(ArrayKind::Text, true),       // client
    array(ArrayKind::Json, true),       // details
    array(ArrayKind::Text, true),       // idempotency_key
];

/// The PostgreSQL insert of events from column arrays. Events with an idempotency key skip
/// the ones already recorded (`keyed`). Events without one cannot conflict, and a plain
/// insert spares them the speculative insertion (a unique-index probe and a second heap
/// write per row).
fn pg_array_insert_sql(keyed: bool) -> &'static str {
    static PLAIN: OnceLock<String> = OnceLock::new();
    static KEYED: OnceLock<String> = OnceLock::new();
    let build = || {
        let columns: Vec<String> = AUDIT_COLUMNS.iter().map(Iden::to_string).collect();
        let (source, reads) = pg_arrays::unnest_source(&AUDIT_ARRAYS, 1);
        let insert = format!(
            "INSERT INTO audit_events ({}) SELECT {} FROM {source}",
            columns.join(", "),
            reads.join(", ")
        );
        if keyed {
            format!("{insert} ON CONFLICT (idempotency_key) DO NOTHING")
        } else {
            insert
        }
    };
    if keyed {
        KEYED.get_or_init(build)
    } else {
        PLAIN.get_or_init(build)
    }
}

fn pg_array_insert(events: &[NewAuditEvent], keyed: bool) -> Result<Statement, StoreError> {
    let mut rows = ArrayRows::new(&AUDIT_ARRAYS, events.len());
    for e in events {
        let texts = [
            (0, Some(e.namespace.as_str())),
            (2, Some(e.actor.as_str())),
            (4, Some(e.verb.as_str())),
            (5, Some(e.resource.as_str())),
            (6, Some(e.object_name.as_str())),
            (7, e.object_uid.as_deref()),
            (8, e.before_digest.as_deref()),
            (9, e.after_digest.as_deref()),
            (10, e.reason.as_deref()),
            (11, e.request_id.as_deref()),
            (12, e.client.as_deref()),
            (14, e.idempotency_key.as_deref()),
        ];
        let pushed = rows
            .push_timestamp(1, Some(e.occurred_at))
            .and_then(|()| rows.push_text(3, Some(serde_json::json!(e.actor_groups).to_string())))
            .and_then(|()| rows.push_text(13, e.details.as_ref().map(|d| d.to_string())))
            .and_then(|()| {
                texts
                    .into_iter()
                    .try_for_each(|(i, text)| rows.push_text(i, text.map(str::to_owned)))
            });
        pushed.map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
    }
    Ok(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        pg_array_insert_sql(keyed),
        rows.into_values(),
    ))
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
            for chunk in run.chunks(PG_ARRAY_CHUNK) {
                written += conn
                    .execute_raw(pg_array_insert(chunk, keyed)?)
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

/// `COPY audit_events (…) FROM STDIN` into [`AUDIT_COLUMNS`].
fn pg_copy_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        pg_copy::statement("audit_events", AUDIT_COLUMNS.iter().map(Iden::to_string))
    })
}

/// `events` as [`pg_copy_statement`]'s rows, in [`AUDIT_COLUMNS`]' order.
fn pg_copy_rows(events: &[NewAuditEvent]) -> Result<CopyText, StoreError> {
    let json_error =
        |e: serde_json::Error| StoreError::Database(sea_orm::DbErr::Json(e.to_string()));
    let mut rows = CopyText::with_capacity(events.len() * 256);
    for e in events {
        let occurred_at = e
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        rows.text(Some(e.namespace.as_str()));
        rows.text(Some(&occurred_at));
        rows.text(Some(&e.actor));
        rows.json(Some(&e.actor_groups)).map_err(json_error)?;
        rows.text(Some(&e.verb));
        rows.text(Some(&e.resource));
        rows.text(Some(&e.object_name));
        rows.text(e.object_uid.as_deref());
        rows.text(e.before_digest.as_deref());
        rows.text(e.after_digest.as_deref());
        rows.text(e.reason.as_deref());
        rows.text(e.request_id.as_deref());
        rows.text(e.client.as_deref());
        rows.json(e.details.as_ref()).map_err(json_error)?;
        rows.text(e.idempotency_key.as_deref());
        rows.end_row();
    }
    Ok(rows)
}

/// [`insert_batch`] in a refresh's PostgreSQL transaction: events without an idempotency key
/// (nothing to conflict on) by `COPY`, the others by the array insert that skips recorded
/// keys. Runs of each keep the events' order.
pub(super) async fn copy_batch(
    txn: &CopyTransaction,
    events: &[NewAuditEvent],
) -> Result<u64, StoreError> {
    let mut written = 0;
    for run in events.chunk_by(|a, b| a.idempotency_key.is_some() == b.idempotency_key.is_some()) {
        written += if run[0].idempotency_key.is_some() {
            insert_batch(txn, run).await?
        } else {
            txn.copy_in(
                pg_copy_statement(),
                run.chunks(pg_copy::BATCH_ROWS).map(pg_copy_rows),
            )
            .await?
        };
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
