//! Migrations under a PostgreSQL session advisory lock, so N replicas starting at once
//! migrate exactly once. sea-orm-migration takes no lock of its own.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};

use super::StoreError;

/// "curio" in ASCII, then a 1: the advisory lock key for migrations.
pub const MIGRATION_LOCK_KEY: i64 = 0x6375_7269_6f00_0001;

/// Applies pending migrations and returns how many this call applied.
///
/// On PostgreSQL it opens a pool of exactly one connection so that the lock, the migrations
/// and the unlock share one session; a failed unlock is an error. On SQLite it just migrates.
pub async fn migrate(url: &str) -> Result<usize, StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let result = match db.get_database_backend() {
        DatabaseBackend::Postgres => migrate_locked(&db).await,
        _ => migrate_unlocked(&db).await,
    };
    db.close().await?;
    result
}

async fn migrate_unlocked(db: &DatabaseConnection) -> Result<usize, StoreError> {
    let pending = Migrator::get_pending_migrations(db).await?.len();
    Migrator::up(db, None).await?;
    Ok(pending)
}

async fn migrate_locked(db: &DatabaseConnection) -> Result<usize, StoreError> {
    advisory(db, "SELECT pg_advisory_lock($1)").await?;
    let migrated = migrate_unlocked(db).await;
    let unlocked = advisory(db, "SELECT pg_advisory_unlock($1)").await;
    let applied = migrated?;
    match unlocked? {
        Some(true) => Ok(applied),
        _ => Err(StoreError::MigrationLockLost),
    }
}

async fn advisory(db: &DatabaseConnection, sql: &str) -> Result<Option<bool>, StoreError> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    // pg_advisory_lock returns void, pg_advisory_unlock a boolean.
    Ok(row.and_then(|r| r.try_get_by_index::<bool>(0).ok()))
}
