//! The system of record: PostgreSQL (SQLite for standalone mode), through sea-orm.
//!
//! Writes go through [`Store::apply_refresh`], one transaction per refresh. Tenant reads go
//! through [`Store::begin_scoped`]: on PostgreSQL they run as the `curio_reader` role with the
//! caller's namespaces in a transaction-local setting, so row-level security backs up the
//! application's own `namespace IN (…)` filter.

mod asset_row;
mod assets;
mod audit;
pub mod entity;
mod facets;
mod feed;
mod migrate;
mod objects;
mod pg_arrays;
mod pg_copy;
mod query;
mod revisions;
mod scope;
mod search_probe;
mod search_sample;
mod usage;

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, Statement, TransactionTrait,
};

pub use assets::{ApplyOutcome, upsert_statement};
pub use audit::{AuditQuery, NewAuditEvent, audit_insert_statement};
pub use facets::{Facet, FacetField, FacetValue, KindCount};
pub use feed::{CHANNEL, Change, DEFAULT_RETENTION, FeedCursor, FeedEvent, FeedHead};
pub use migrate::{MIGRATION_LOCK_KEY, migrate};
pub use objects::{ObjectRecord, ObjectTable, StoredObject};
pub use query::{
    AssetCursor, AssetQuery, AssetSort, LabelRequirement, NameCursor, Page, escape_like,
};
pub use revisions::CatalogRevisions;
pub use scope::{Namespace, NamespaceScope, ScopeError};
pub use search_probe::TrigramFrequencies;
pub use usage::Usage;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error(
        "the migration advisory lock was not held at unlock; another session may have migrated concurrently"
    )]
    MigrationLockLost,
    #[error("row in {table} is not valid: {message}")]
    CorruptRow {
        table: &'static str,
        message: String,
    },
    #[error("column {column} has type {column_type}, which the asset upsert cannot bind")]
    UnsupportedColumn { column: String, column_type: String },
    #[error("audit event for namespace {found} in a write scoped to {expected}")]
    NamespaceMismatch { expected: String, found: String },
}

/// Connection settings beyond the URL.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// How long deletions stay in the change feed for watches to resume through.
    pub feed_retention: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            feed_retention: feed::DEFAULT_RETENTION,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    feed: std::sync::Arc<feed::Feed>,
    revisions: std::sync::Arc<revisions::RevisionReader>,
    search_sample: std::sync::Arc<search_sample::SearchSample>,
}

/// Opens a pool. Does not migrate; call [`migrate`] first.
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    connect_with(url, &StoreOptions::default()).await
}

pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
    let mut connect = ConnectOptions::new(url.to_owned());
    connect
        .max_connections(options.max_connections)
        .connect_timeout(options.connect_timeout)
        // Statement logging would put catalog content (and any secret in it) into the logs.
        .sqlx_logging(false);
    let db = Database::connect(connect).await?;
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
            .await?;
    }
    Ok(Store {
        db,
        feed: feed::Feed::new(options.feed_retention),
        revisions: Default::default(),
        search_sample: Default::default(),
    })
}

impl Store {
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Open and idle connections of the pool, for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        // The backend is checked first: the pool getters panic on the other backend.
        match self.backend() {
            DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        }
    }

    /// A cheap round trip, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    /// Begins a transaction that can see only `scope`'s rows. On PostgreSQL it runs as
    /// `curio_reader`, which may only SELECT, under row-level security; the role and the
    /// namespaces are set in one round trip. Every query in it must still filter by namespace
    /// itself (SQLite has no RLS).
    pub async fn begin_scoped(
        &self,
        scope: &NamespaceScope,
    ) -> Result<DatabaseTransaction, StoreError> {
        let txn = self.db.begin().await?;
        self.enter_scope(&txn, scope).await?;
        Ok(txn)
    }

    /// Scopes `txn` to `scope` from here on (see [`Store::begin_scoped`]).
    pub(crate) async fn enter_scope(
        &self,
        txn: &DatabaseTransaction,
        scope: &NamespaceScope,
    ) -> Result<(), StoreError> {
        if self.backend() == DatabaseBackend::Postgres {
            txn.execute_raw(scope_statement("", scope)).await?;
        }
        Ok(())
    }

    /// In `txn`, reads the change feed's head and then (PostgreSQL) enters `scope` as
    /// [`Store::begin_scoped`] does, in one round trip. The head is read before any row of
    /// the scope, so every write at or below it is in what `txn` reads next.
    pub(crate) async fn enter_scope_after_head(
        &self,
        txn: &DatabaseTransaction,
        scope: &NamespaceScope,
    ) -> Result<FeedHead, StoreError> {
        match self.backend() {
            DatabaseBackend::Postgres => {
                // No feed row, no settings: `head_of` refuses it before anything is read.
                let row = txn
                    .query_one_raw(scope_statement(&format!(", {}", feed::HEAD_FROM), scope))
                    .await?;
                feed::head_of(row)
            }
            _ => feed::head_in(txn).await,
        }
    }
}

/// `SELECT` of the settings that scope a transaction to `scope` (see [`Store::begin_scoped`]),
/// then `rest` (more columns, a `FROM`). The settings are evaluated for each row, after the
/// statement's permissions were checked: what `rest` reads, it reads as the connection's role.
fn scope_statement(rest: &str, scope: &NamespaceScope) -> Statement {
    // set_config('role', …, true) is SET LOCAL ROLE, with the same membership check.
    Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!("SELECT set_config('role', $1, true), set_config($2, $3, true){rest}"),
        [
            migrations::READER_ROLE.into(),
            migrations::ALLOWED_NAMESPACES_SETTING.into(),
            scope.setting_value().into(),
        ],
    )
}
