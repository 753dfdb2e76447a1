//! PostgreSQL's `COPY … FROM STDIN` for a refresh's bulk rows, and the transaction it needs.
//!
//! `COPY` is the server's cheapest way in for many rows: no statement to plan per batch, no
//! parameters to bind, no arrays to expand. sea-orm's transaction does not lend out its
//! connection, so a PostgreSQL refresh runs on a sqlx transaction of its own
//! ([`CopyTransaction`]); the rest of the refresh's statements reach it through sea-orm's
//! [`ConnectionTrait`], bound as sea-orm binds them.
//!
//! `COPY FROM` refuses tables whose row-level security applies to the writer. Curio's tables
//! enable RLS (not `FORCE`) with read policies only, so their owner, the role the controller
//! writes as, bypasses it; a role it applied to could not insert at all.

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement, Values,
    sqlx::{self, Postgres},
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

/// A PostgreSQL transaction that can `COPY`. Dropped without [`commit`](Self::commit), it
/// rolls back (sqlx's [`sqlx::Transaction`] queues the rollback before the connection is
/// reused).
pub(crate) struct CopyTransaction {
    // `ConnectionTrait` takes `&self`, and a connection serves one statement at a time.
    txn: Mutex<sqlx::Transaction<'static, Postgres>>,
}

impl CopyTransaction {
    pub(crate) async fn begin(pool: &sqlx::PgPool) -> Result<Self, DbErr> {
        let txn = pool.begin().await.map_err(connection_error)?;
        Ok(Self {
            txn: Mutex::new(txn),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        self.txn.into_inner().commit().await.map_err(exec_error)
    }

    /// Runs `statement` (a `COPY … FROM STDIN`, text format) with the data of `batches`, each
    /// a whole number of rows ([`CopyText`]). A batch that fails to build aborts the copy and
    /// is returned; the server parses each batch while the next one is built. Returns the
    /// rows copied.
    pub(crate) async fn copy_in<E: From<DbErr>>(
        &self,
        statement: &str,
        batches: impl Iterator<Item = Result<CopyText, E>>,
    ) -> Result<u64, E> {
        let mut txn = self.txn.lock().await;
        let mut copy = txn.copy_in_raw(statement).await.map_err(exec_error)?;
        for batch in batches {
            match batch {
                Ok(batch) => {
                    copy.send(batch.into_bytes()).await.map_err(exec_error)?;
                }
                Err(e) => {
                    // The server answers an abort with an error of its own, which says
                    // nothing the caller's error does not.
                    let _ = copy.abort("the client could not encode a row").await;
                    return Err(e);
                }
            }
        }
        Ok(copy.finish().await.map_err(exec_error)?)
    }
}

/// Rows per `COPY` message: a few MiB, small enough that building the next batch overlaps the
/// server's parsing of this one.
pub(crate) const BATCH_ROWS: usize = 5_000;

/// `COPY {table} ({columns}) FROM STDIN`.
pub(crate) fn statement(table: &str, columns: impl IntoIterator<Item = String>) -> String {
    let columns: Vec<String> = columns.into_iter().collect();
    format!("COPY {table} ({}) FROM STDIN", columns.join(", "))
}

fn sqlx_query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

// As sea-orm's own transaction classifies sqlx's errors, so callers that inspect a `DbErr`
// (a unique violation, say) see the same thing on either transaction.
fn exec_error(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

fn query_error(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

fn connection_error(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(e.into()))
}

#[async_trait::async_trait]
impl ConnectionTrait for CopyTransaction {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut txn = self.txn.lock().await;
        sqlx_query(&stmt)
            .execute(&mut **txn)
            .await
            .map(Into::into)
            .map_err(exec_error)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut txn = self.txn.lock().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut **txn)
            .await
            .map(Into::into)
            .map_err(exec_error)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut txn = self.txn.lock().await;
        sqlx_query(&stmt)
            .fetch_optional(&mut **txn)
            .await
            .map(|row| row.map(Into::into))
            .map_err(query_error)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut txn = self.txn.lock().await;
        sqlx_query(&stmt)
            .fetch_all(&mut **txn)
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .map_err(query_error)
    }
}

/// Rows in `COPY`'s text format: fields separated by tabs, rows ended by newlines, `\N` for
/// NULL, and a backslash escape for the four bytes that would otherwise end a field or a row.
#[derive(Debug, Default)]
pub(crate) struct CopyText {
    bytes: Vec<u8>,
    /// Whether the current row has a field yet (the next one needs a separator).
    in_row: bool,
}

impl CopyText {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            in_row: false,
        }
    }

    fn separate(&mut self) {
        if self.in_row {
            self.bytes.push(b'\t');
        }
        self.in_row = true;
    }

    /// A text field, or NULL.
    pub(crate) fn text(&mut self, value: Option<&str>) {
        self.separate();
        match value {
            Some(value) => escape_into(&mut self.bytes, value.as_bytes()),
            None => self.bytes.extend_from_slice(b"\\N"),
        }
    }

    pub(crate) fn boolean(&mut self, value: Option<bool>) {
        self.text(value.map(|b| if b { "t" } else { "f" }));
    }

    /// A JSON field, written straight from `value` (or NULL).
    pub(crate) fn json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: Option<&T>,
    ) -> Result<(), serde_json::Error> {
        self.separate();
        match value {
            Some(value) => serde_json::to_writer(Escaping(&mut self.bytes), value),
            None => {
                self.bytes.extend_from_slice(b"\\N");
                Ok(())
            }
        }
    }

    pub(crate) fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.in_row = false;
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn escape(byte: u8) -> Option<&'static [u8]> {
    match byte {
        b'\\' => Some(b"\\\\"),
        b'\t' => Some(b"\\t"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        _ => None,
    }
}

fn escape_into(out: &mut Vec<u8>, value: &[u8]) {
    let mut plain = 0;
    for (i, &byte) in value.iter().enumerate() {
        if let Some(escaped) = escape(byte) {
            out.extend_from_slice(&value[plain..i]);
            out.extend_from_slice(escaped);
            plain = i + 1;
        }
    }
    out.extend_from_slice(&value[plain..]);
}

/// Escapes what is written through it, so a serializer writes a field in place.
struct Escaping<'a>(&'a mut Vec<u8>);

impl std::io::Write for Escaping<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        escape_into(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fill: impl FnOnce(&mut CopyText)) -> String {
        let mut text = CopyText::default();
        fill(&mut text);
        text.end_row();
        String::from_utf8(text.into_bytes()).unwrap()
    }

    #[test]
    fn fields_are_tab_separated_and_rows_newline_ended() {
        let line = row(|t| {
            t.text(Some("a"));
            t.text(None);
            t.boolean(Some(true));
            t.boolean(None);
        });
        assert_eq!(line, "a\t\\N\tt\t\\N\n");
    }

    #[test]
    fn the_bytes_that_end_fields_and_rows_are_escaped() {
        let line = row(|t| t.text(Some("a\tb\nc\rd\\e \\N \\. ü")));
        assert_eq!(line, "a\\tb\\nc\\rd\\\\e \\\\N \\\\. ü\n");
        // An empty string is not NULL.
        assert_eq!(row(|t| t.text(Some(""))), "\n");
    }

    #[test]
    fn json_is_serialized_in_place_and_escaped() {
        let value = serde_json::json!({"k": "line\nnext\ttab \\ slash"});
        let line = row(|t| {
            t.json(Some(&value)).unwrap();
            t.json::<serde_json::Value>(None).unwrap();
        });
        // JSON's own escapes (`\n`, `\t`, `\\`) gain a backslash each.
        assert_eq!(
            line,
            "{\"k\":\"line\\\\nnext\\\\ttab \\\\\\\\ slash\"}\t\\N\n"
        );
    }
}
