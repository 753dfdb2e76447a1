//! The change feed: one revision sequence for the whole store, drawn by every write that
//! changes assets, and tombstones for deleted assets. Watches read it (`catalog.curio.dev`
//! and the API's event streams).
//!
//! Ordering: a write draws its revision from the `catalog_feed` row first and holds that row's
//! lock until it commits, so writes commit in revision order. A reader that sees revision N in
//! `catalog_feed` therefore sees every write ≤ N, and a watch that has delivered everything up
//! to N never misses a later-committed write with a smaller revision.
//!
//! Wake-ups: after a commit, watchers in the same process hear of it through a broadcast
//! channel; on PostgreSQL every process hears through `LISTEN/NOTIFY` (the controller writes,
//! API replicas serve), and a lost connection wakes everyone once it is back.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use tokio::sync::broadcast;

use super::{NamespaceScope, Store, StoreError, entity::asset, scope::Namespace};
use curio_core::{
    catalog::{AssetKind, Removal},
    catalog_api::names,
};

/// The PostgreSQL notification channel; payload `"{revision}:{namespace}"`.
pub const CHANNEL: &str = "curio_catalog";
/// How long tombstones are kept by default: a watch may resume from this far back.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
const TOMBSTONE_CHUNK: usize = 1_000;
/// The columns a tombstone is written with (and read back with, after its `id`).
const TOMBSTONE_COLUMNS: [&str; 7] = [
    "namespace",
    "source",
    "kind",
    "object_name",
    "revision",
    "content",
    "deleted_at",
];

/// A committed write: in `namespace` (`None`: anywhere, after a lost notification
/// connection), at `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub namespace: Option<String>,
    pub revision: i64,
}

/// The feed's head: the newest revision, and the newest one whose deletions may be forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedHead {
    pub revision: i64,
    pub compacted: i64,
}

/// Where a reader of the feed is: the last asset row and the last tombstone it has seen, each
/// as `(revision, id)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedCursor {
    pub asset: (i64, i64),
    pub tombstone: (i64, i64),
}

impl FeedCursor {
    /// Everything after `revision`.
    pub fn after(revision: i64) -> Self {
        Self {
            asset: (revision, i64::MAX),
            tombstone: (revision, i64::MAX),
        }
    }
}

/// One change of an asset: its row as written, or as it was when deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEvent {
    pub revision: i64,
    pub deleted: bool,
    pub asset: asset::Model,
}

/// The in-process side of the feed, shared by every clone of a [`Store`].
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) retention: chrono::Duration,
    sender: broadcast::Sender<Change>,
    listening: tokio::sync::OnceCell<()>,
}

impl Feed {
    pub(crate) fn new(retention: Duration) -> Arc<Self> {
        let (sender, _) = broadcast::channel(1024);
        Arc::new(Self {
            retention: chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::hours(1)),
            sender,
            listening: tokio::sync::OnceCell::new(),
        })
    }

    /// A write committed in this process. PostgreSQL's own notification reaches every
    /// process, this one included, so only SQLite announces here.
    pub(crate) fn committed(&self, backend: DatabaseBackend, namespace: &Namespace, revision: i64) {
        if backend != DatabaseBackend::Postgres {
            // No receiver is not an error: nobody is watching.
            let _ = self.sender.send(Change {
                namespace: Some(namespace.to_string()),
                revision,
            });
        }
    }
}

/// The head's columns and row, for a `SELECT` that may read other things with it; the row is
/// read by [`head_of`].
pub(crate) const HEAD_FROM: &str = "revision, compacted FROM catalog_feed WHERE id = 1";

fn head_statement(backend: DatabaseBackend) -> Statement {
    Statement::from_string(backend, format!("SELECT {HEAD_FROM}"))
}

/// The feed's head as `txn` sees it.
pub(crate) async fn head_in(txn: &DatabaseTransaction) -> Result<FeedHead, StoreError> {
    head_of(
        txn.query_one_raw(head_statement(txn.get_database_backend()))
            .await?,
    )
}

/// The head from a row with `revision` and `compacted` columns (of the feed's one row).
pub(crate) fn head_of(row: Option<sea_orm::QueryResult>) -> Result<FeedHead, StoreError> {
    let row = row.ok_or(StoreError::CorruptRow {
        table: "catalog_feed",
        message: "the feed row is missing".into(),
    })?;
    Ok(FeedHead {
        revision: row.try_get("", "revision")?,
        compacted: row.try_get("", "compacted")?,
    })
}

/// Draws the write's revision and takes the feed row's lock until commit.
pub(crate) async fn draw_revision(
    txn: &impl ConnectionTrait,
    backend: DatabaseBackend,
) -> Result<i64, StoreError> {
    let row = txn
        .query_one_raw(Statement::from_string(
            backend,
            "UPDATE catalog_feed SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        ))
        .await?
        .ok_or(StoreError::CorruptRow {
            table: "catalog_feed",
            message: "the feed row is missing".into(),
        })?;
    Ok(row.try_get("", "revision")?)
}

/// Tombstones for `removed`, at `revision`: the key and the last digest (a deleted object's
/// event names it; its spec is gone).
pub(crate) async fn write_tombstones(
    txn: &impl ConnectionTrait,
    namespace: &Namespace,
    source: &str,
    removed: &[Removal],
    revision: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in removed.chunks(TOMBSTONE_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("asset_tombstones"))
            .columns(TOMBSTONE_COLUMNS.map(Alias::new));
        for removal in chunk {
            let key = &removal.key;
            let object_name = names::object_name(source, &key.name, &key.version);
            let content = serde_json::json!({
                "name": key.name,
                "version": key.version,
                "digest": removal.previous_digest,
            });
            insert
                .values([
                    namespace.as_str().into(),
                    source.into(),
                    key.kind.as_str().into(),
                    object_name.into(),
                    revision.into(),
                    content.into(),
                    now.into(),
                ])
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        }
        txn.execute(&insert).await?;
    }
    Ok(())
}

/// Forgets tombstones older than `cutoff`; a watch from before the newest forgotten one then
/// gets 410 Gone.
pub(crate) async fn compact(
    txn: &impl ConnectionTrait,
    backend: DatabaseBackend,
    cutoff: DateTime<Utc>,
) -> Result<(), StoreError> {
    let newest_old = Query::select()
        .expr(Expr::col(Alias::new("revision")).max())
        .from(Alias::new("asset_tombstones"))
        .and_where(Expr::col(Alias::new("deleted_at")).lt(cutoff))
        .to_owned();
    let Some(row) = txn.query_one(&newest_old).await? else {
        return Ok(());
    };
    let Some(forgotten) = row.try_get_by_index::<Option<i64>>(0)? else {
        return Ok(());
    };
    txn.execute(
        &Query::delete()
            .from_table(Alias::new("asset_tombstones"))
            .and_where(Expr::col(Alias::new("revision")).lte(forgotten))
            .to_owned(),
    )
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        match backend {
            DatabaseBackend::Postgres => {
                "UPDATE catalog_feed SET compacted = $1 WHERE id = 1 AND compacted < $1"
            }
            _ => "UPDATE catalog_feed SET compacted = ?1 WHERE id = 1 AND compacted < ?1",
        },
        [forgotten.into()],
    ))
    .await?;
    Ok(())
}

/// Tells every listening process, at commit (PostgreSQL only).
pub(crate) async fn notify(
    txn: &impl ConnectionTrait,
    backend: DatabaseBackend,
    namespace: &Namespace,
    revision: i64,
) -> Result<(), StoreError> {
    if backend == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), format!("{revision}:{namespace}").into()],
        ))
        .await?;
    }
    Ok(())
}

fn parse_payload(payload: &str) -> Option<Change> {
    let (revision, namespace) = payload.split_once(':')?;
    Some(Change {
        namespace: Some(namespace.to_owned()),
        revision: revision.parse().ok()?,
    })
}

impl Store {
    /// The newest revision and the compaction point.
    pub async fn feed_head(&self) -> Result<FeedHead, StoreError> {
        head_of(
            self.db
                .query_one_raw(head_statement(self.backend()))
                .await?,
        )
    }

    /// Hears of every committed write from now on. On PostgreSQL the first subscriber starts
    /// the process's one `LISTEN` connection.
    pub async fn subscribe(&self) -> broadcast::Receiver<Change> {
        let receiver = self.feed.sender.subscribe();
        if self.backend() == DatabaseBackend::Postgres {
            self.feed
                .listening
                .get_or_init(|| async {
                    let pool = self.db.get_postgres_connection_pool().clone();
                    tokio::spawn(listen(pool, self.feed.sender.clone()));
                })
                .await;
        }
        receiver
    }

    /// Every namespace that ever held catalog data: assets ever written, or a CatalogSource
    /// (one whose first refresh failed has no assets, and its tenants still need to see why).
    /// For cluster-wide reads; authorization decides which a caller sees.
    pub async fn catalog_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.backend(),
                "SELECT namespace FROM catalog_revisions \
                 UNION SELECT namespace FROM catalog_sources ORDER BY namespace",
            ))
            .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String>("", "namespace")
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// Forgets tombstones older than `cutoff` now (writes do it for the retention window).
    pub async fn compact_feed(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        compact(&txn, self.backend(), cutoff).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The next changes in `scope` of `kinds` after `cursor` and up to `upto`, in revision
    /// order: at most `limit` rows of each table, read through the scoped path. Returns the
    /// events, the cursor after them, and whether everything up to `upto` has been read.
    pub async fn feed_page(
        &self,
        scope: &NamespaceScope,
        kinds: &[AssetKind],
        cursor: FeedCursor,
        upto: i64,
        limit: u64,
        include_deleted: bool,
    ) -> Result<(Vec<FeedEvent>, FeedCursor, bool), StoreError> {
        let namespaces: Vec<&str> = scope.namespaces().map(Namespace::as_str).collect();
        let kind_names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let txn = self.begin_scoped(scope).await?;
        let assets = asset::Entity::find()
            .filter(asset::Column::Namespace.is_in(namespaces.iter().copied()))
            .filter(asset::Column::Kind.is_in(kind_names.iter().copied()))
            .filter(after(
                Expr::col(asset::Column::Revision),
                Expr::col(asset::Column::Id),
                cursor.asset,
            ))
            .filter(asset::Column::Revision.lte(upto))
            .order_by_asc(asset::Column::Revision)
            .order_by_asc(asset::Column::Id)
            .limit(limit)
            .all(&txn)
            .await?;
        let tombstones = Query::select()
            .column(Alias::new("id"))
            .columns(TOMBSTONE_COLUMNS.map(Alias::new))
            .from(Alias::new("asset_tombstones"))
            .and_where(Expr::col(Alias::new("namespace")).is_in(namespaces.iter().copied()))
            .and_where(Expr::col(Alias::new("kind")).is_in(kind_names.iter().copied()))
            .cond_where(after(
                Expr::col(Alias::new("revision")),
                Expr::col(Alias::new("id")),
                cursor.tombstone,
            ))
            .and_where(Expr::col(Alias::new("revision")).lte(upto))
            .order_by(Alias::new("revision"), sea_orm::Order::Asc)
            .order_by(Alias::new("id"), sea_orm::Order::Asc)
            .limit(limit)
            .to_owned();
        let tombstones = if include_deleted {
            txn.query_all(&tombstones).await?
        } else {
            Vec::new()
        };
        txn.commit().await?;

        // A full page may continue at its last revision: emit only up to the smaller bound, so
        // revisions never go backwards across pages. Within one revision order is free: one
        // write never deletes and upserts the same asset.
        let full = |n: usize| n as u64 >= limit;
        let mut bound = upto;
        if full(assets.len()) {
            bound = Ord::min(bound, assets.last().map_or(upto, |a| a.revision));
        }
        let mut deleted = Vec::with_capacity(tombstones.len());
        for row in tombstones {
            deleted.push(tombstone_event(&row)?);
        }
        if full(deleted.len()) {
            bound = Ord::min(bound, deleted.last().map_or(upto, |(_, e)| e.revision));
        }
        let mut next = cursor;
        let mut events = Vec::with_capacity(assets.len() + deleted.len());
        for (id, event) in deleted.into_iter().filter(|(_, e)| e.revision <= bound) {
            next.tombstone = (event.revision, id);
            events.push(event);
        }
        for row in assets.into_iter().filter(|a| a.revision <= bound) {
            next.asset = (row.revision, row.id);
            events.push(FeedEvent {
                revision: row.revision,
                deleted: false,
                asset: row,
            });
        }
        events.sort_by_key(|e| e.revision);
        Ok((events, next, bound == upto))
    }
}

/// `(revision, id) > (r, i)`, spelled out (SQLite and sea-query agree on this form).
fn after(revision: Expr, id: Expr, (r, i): (i64, i64)) -> Condition {
    Condition::any()
        .add(revision.clone().gt(r))
        .add(Condition::all().add(revision.eq(r)).add(id.gt(i)))
}

/// A tombstone row as the asset it names: key, source and last digest; the rest empty.
fn tombstone_event(row: &sea_orm::QueryResult) -> Result<(i64, FeedEvent), StoreError> {
    let id: i64 = row.try_get("", "id")?;
    let revision: i64 = row.try_get("", "revision")?;
    let deleted_at: DateTime<Utc> = row.try_get("", "deleted_at")?;
    let content: serde_json::Value = row.try_get("", "content")?;
    let text = |key: &str| content[key].as_str().unwrap_or_default().to_owned();
    let asset = asset::Model {
        id,
        namespace: row.try_get("", "namespace")?,
        source: row.try_get("", "source")?,
        kind: row.try_get("", "kind")?,
        name: text("name"),
        version: text("version"),
        display_name: None,
        description: None,
        provider: None,
        license: None,
        tags: serde_json::json!([]),
        labels: serde_json::json!({}),
        stage: None,
        approved: false,
        links: serde_json::json!([]),
        metadata: serde_json::json!({}),
        mcp: None,
        agent: None,
        digest: text("digest"),
        object_name: row.try_get("", "object_name")?,
        description_terms: String::new(),
        created_at: deleted_at,
        updated_at: deleted_at,
        revision,
        created_revision: 0,
    };
    Ok((
        id,
        FeedEvent {
            revision,
            deleted: true,
            asset,
        },
    ))
}

/// The process's one `LISTEN`: forwards notifications; after a lost connection (whose
/// notifications are lost with it) wakes every watcher once the connection is back.
async fn listen(pool: sea_orm::sqlx::PgPool, sender: broadcast::Sender<Change>) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "change feed: cannot connect to listen; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "change feed: LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        // Whatever happened while not listening is unknown: everyone looks again.
        let _ = sender.send(Change {
            namespace: None,
            revision: 0,
        });
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(change) = parse_payload(notification.payload()) {
                        let _ = sender.send(change);
                    }
                }
                Ok(None) => {
                    // The connection dropped and was re-established; notifications between
                    // were lost.
                    let _ = sender.send(Change {
                        namespace: None,
                        revision: 0,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change feed: listening failed; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_parse() {
        assert_eq!(
            super::parse_payload("42:team-a"),
            Some(super::Change {
                namespace: Some("team-a".into()),
                revision: 42
            })
        );
        assert_eq!(super::parse_payload("x:team-a"), None);
    }
}
