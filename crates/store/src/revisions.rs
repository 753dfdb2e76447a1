//! Catalog revisions, read in shared batches. A caller is answered from a read that *started
//! after it asked*, so every commit that finished before it asked is reflected — the same
//! guarantee as a query of its own — while concurrent callers share that one read. Under load
//! this turns a round trip per cached answer into a round trip per batch.
//!
//! Reads are incremental: revisions are drawn from the change feed's one row, locked until
//! commit (`feed::draw_revision`), so they commit in increasing order and everything committed
//! since the last read has a revision above the highest one seen.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};
use tokio::sync::watch;

use crate::StoreError;

/// What a batch's read ended with: `Err` carries the failure's text to every caller.
type Outcome = Option<Result<(), String>>;

#[derive(Debug, Default)]
pub(crate) struct RevisionReader {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every namespace's revision as of the last completed read (absent: never written).
    known: HashMap<String, i64>,
    /// The highest revision seen: the next read asks only for rows above it.
    high_water: i64,
    /// Which database the revisions were read from (PostgreSQL: its OID), as last read.
    database: Option<String>,
    /// Bumped whenever the revisions start again: a database dropped and created, or restored
    /// from a backup, numbers its writes from where it stands, so a namespace's revision can
    /// come back to a value it had before with other contents. Keys built on revisions carry it.
    generation: u64,
    /// The batch callers join now; its read starts only after it is taken from here.
    next: Option<watch::Sender<Outcome>>,
    /// Whether a task is reading (it takes `next` when done, so no batch waits for nobody).
    reading: bool,
}

impl RevisionReader {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every await-free step; a panic elsewhere cannot
        // leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The revision of each of `namespaces` (0 for one never written), reflecting every
    /// commit that finished before this call.
    pub(crate) async fn revisions(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        namespaces: &[&str],
    ) -> Result<CatalogRevisions, StoreError> {
        let mut done = {
            let mut state = self.lock();
            let batch = state
                .next
                .get_or_insert_with(|| watch::channel(None).0)
                .subscribe();
            if !state.reading {
                state.reading = true;
                // Its own task: a caller that goes away must not strand the others.
                tokio::spawn(Arc::clone(self).read_batches(db.clone()));
            }
            batch
        };
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::Database(DbErr::Custom("revision read abandoned".into())))?
            .clone();
        if let Some(Err(message)) = outcome {
            return Err(StoreError::Database(DbErr::Custom(message)));
        }
        let state = self.lock();
        Ok(CatalogRevisions {
            generation: state.generation,
            namespaces: namespaces
                .iter()
                .map(|n| ((*n).to_owned(), state.known.get(*n).copied().unwrap_or(0)))
                .collect(),
        })
    }

    /// Reads for batch after batch until no caller is waiting.
    async fn read_batches(self: Arc<Self>, db: DatabaseConnection) {
        loop {
            let (batch, high_water) = {
                let mut state = self.lock();
                match state.next.take() {
                    Some(batch) => (batch, state.high_water),
                    None => {
                        state.reading = false;
                        return;
                    }
                }
            };
            let mut outcome = changed_since(&db, high_water).await;
            let restarted = outcome.as_ref().is_ok_and(|read| {
                let state = self.lock();
                read.head < state.high_water
                    || state.database.as_ref().is_some_and(|d| *d != read.database)
            });
            if restarted {
                // Everything known is of another history: read it all again.
                {
                    let mut state = self.lock();
                    state.known.clear();
                    state.high_water = 0;
                    state.generation += 1;
                }
                outcome = changed_since(&db, 0).await;
            }
            let outcome = match outcome {
                Ok(read) => {
                    let mut state = self.lock();
                    for (namespace, revision) in read.rows {
                        state.high_water = state.high_water.max(revision);
                        state.known.insert(namespace, revision);
                    }
                    state.database = Some(read.database);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            };
            // Nobody waiting any more is fine: they went away.
            let _ = batch.send(Some(outcome));
        }
    }
}

/// Namespaces' catalog revisions, as a key for what was built from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRevisions {
    /// How many times the revisions started again in this process (see `State::generation`).
    pub generation: u64,
    pub namespaces: Vec<(String, i64)>,
}

/// One read: the namespaces whose revision moved above the mark, the newest revision, and
/// which database answered.
struct Read {
    rows: Vec<(String, i64)>,
    head: i64,
    database: String,
}

/// Namespaces whose revision moved above `high_water`, in one round trip with the head and
/// the database's identity (rows of `part` 1 and 2).
async fn changed_since(db: &DatabaseConnection, high_water: i64) -> Result<Read, StoreError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT namespace, revision, 0 AS part FROM catalog_revisions WHERE revision > $1 \
             UNION ALL SELECT NULL, coalesce(max(revision), 0), 1 FROM catalog_revisions \
             UNION ALL SELECT NULL, oid::bigint, 2 FROM pg_database \
             WHERE datname = current_database()"
        }
        // An embedded database is one process's own file: only the head can tell.
        _ => {
            "SELECT namespace, revision, 0 AS part FROM catalog_revisions WHERE revision > ? \
             UNION ALL SELECT NULL, coalesce(max(revision), 0), 1 FROM catalog_revisions"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [high_water.into()],
        ))
        .await?;
    let mut read = Read {
        rows: Vec::with_capacity(rows.len()),
        head: 0,
        database: String::new(),
    };
    for row in &rows {
        let part: i32 = row.try_get("", "part")?;
        let revision: i64 = row.try_get("", "revision")?;
        match part {
            0 => read.rows.push((row.try_get("", "namespace")?, revision)),
            1 => read.head = revision,
            _ => read.database = revision.to_string(),
        }
    }
    Ok(read)
}
