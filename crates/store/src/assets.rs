//! Asset writes (one transaction per refresh, batched statements) and tenant-scoped reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Query, SimpleExpr},
};

use super::{
    FeedHead, NamespaceScope, Store, StoreError,
    asset_row::{self, RowContent},
    audit::{self, NewAuditEvent},
    entity::asset,
    facets, feed,
    pg_copy::{self, CopyTransaction},
    query::{AssetCursor, AssetQuery, AssetSort, LabelRequirement, Page, escape_like},
    scope::Namespace,
};
use curio_core::catalog::{AssetKey, AssetKind, AssetRecord, Diff, search_terms};

/// What one refresh wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Audit rows written; fewer than given when some idempotency keys were already there.
    pub audit_events: u64,
}

/// Rows per multi-row `VALUES` statement: 23 binds a row, under SQLite's 32,766 limit.
/// A refresh adding or removing at least this many rows refreshes the planner's statistics.
const ANALYZE_AFTER_ROWS: usize = 1000;
const SQLITE_UPSERT_CHUNK: usize = 1_000;
/// Rows per PostgreSQL upsert; the rows travel as one array per column.
const PG_ARRAY_CHUNK: usize = 5_000;
const DELETE_CHUNK: usize = 1_000;

/// One multi-row `INSERT … ON CONFLICT (natural key) DO UPDATE` for `records`.
pub fn upsert_statement(
    namespace: &Namespace,
    source: &str,
    records: &[&AssetRecord],
    now: DateTime<Utc>,
    revision: i64,
) -> Result<InsertStatement, StoreError> {
    let content: Vec<(String, asset_row::ValueType)> = asset_row::content_columns()
        .map(|c| Ok((asset_row::json_key(c), asset_row::value_type(c)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut insert = Query::insert();
    insert
        .into_table(asset::Entity)
        .columns(asset_row::insert_columns());
    for record in records {
        let row = serde_json::to_value(RowContent::of(record, source))
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Json(e.to_string())))?;
        let mut values: Vec<SimpleExpr> = Vec::with_capacity(content.len() + 6);
        values.push(namespace.as_str().into());
        values.push(source.into());
        for (key, kind) in &content {
            let value = row.get(key).unwrap_or(&serde_json::Value::Null);
            values.push(asset_row::bind_value(value, *kind).into());
        }
        values.push(now.into());
        values.push(now.into());
        values.push(revision.into());
        values.push(revision.into());
        insert
            .values(values)
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
    }
    insert.on_conflict(
        OnConflict::columns(asset_row::KEY)
            .update_columns(asset_row::updated_on_conflict())
            .to_owned(),
    );
    Ok(insert)
}

/// The PostgreSQL insert or upsert (`sql`) of `records`: one array per column
/// ([`asset_row::pg_array_values`]), whatever the row count, and no per-row statement text
/// to build or parse.
fn pg_array_rows(
    sql: &str,
    namespace: &Namespace,
    source: &str,
    records: &[&AssetRecord],
    now: DateTime<Utc>,
    revision: i64,
) -> Result<sea_orm::Statement, StoreError> {
    Ok(sea_orm::Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        asset_row::pg_array_values(namespace.as_str(), source, records, now, revision)?,
    ))
}

/// The steps of one refresh's transaction, in order: [`remove`](Self::remove), the new and
/// changed rows (by backend), the audit events, [`finish`](Self::finish).
struct RefreshWrite<'a> {
    namespace: &'a Namespace,
    source: &'a str,
    diff: &'a Diff,
    now: DateTime<Utc>,
}

impl RefreshWrite<'_> {
    /// Draws the refresh's revision and deletes the removed rows, leaving their tombstones.
    async fn remove(&self, txn: &impl ConnectionTrait) -> Result<i64, StoreError> {
        let (namespace, source, diff) = (self.namespace, self.source, self.diff);
        // Drawn first and held to commit: see the change feed's ordering (`feed`).
        let revision = if diff.is_empty() {
            0
        } else {
            feed::draw_revision(txn, txn.get_database_backend()).await?
        };
        if !diff.removed.is_empty() {
            feed::write_tombstones(txn, namespace, source, &diff.removed, revision, self.now)
                .await?;
        }
        for chunk in diff.removed.chunks(DELETE_CHUNK) {
            let keys = chunk.iter().map(|r| {
                (
                    r.key.kind.as_str().to_owned(),
                    r.key.name.clone(),
                    r.key.version.clone(),
                )
            });
            let delete = Query::delete()
                .from_table(asset::Entity)
                .and_where(asset::Column::Namespace.eq(namespace.as_str()))
                .and_where(asset::Column::Source.eq(source))
                .and_where(
                    Expr::tuple([
                        Expr::col(asset::Column::Kind),
                        Expr::col(asset::Column::Name),
                        Expr::col(asset::Column::Version),
                    ])
                    .in_tuples(keys),
                )
                .to_owned();
            txn.execute(&delete).await?;
        }
        Ok(revision)
    }

    /// PostgreSQL: the added rows by `COPY`, built a batch at a time while the server parses
    /// the one before.
    async fn copy_added(&self, txn: &CopyTransaction, revision: i64) -> Result<(), StoreError> {
        if self.diff.added.is_empty() {
            return Ok(());
        }
        let batches = self.diff.added.chunks(pg_copy::BATCH_ROWS).map(|chunk| {
            asset_row::pg_copy_rows(
                self.namespace.as_str(),
                self.source,
                chunk,
                self.now,
                revision,
            )
        });
        txn.copy_in(asset_row::pg_copy_statement(), batches).await?;
        Ok(())
    }

    /// PostgreSQL: the updated rows as column arrays, upserted.
    async fn upsert_updated_pg(
        &self,
        txn: &impl ConnectionTrait,
        revision: i64,
    ) -> Result<(), StoreError> {
        let updated: Vec<&AssetRecord> = self.diff.updated.iter().map(|u| &u.record).collect();
        let sql = asset_row::pg_array_upsert_sql()?;
        for chunk in updated.chunks(PG_ARRAY_CHUNK) {
            txn.execute_raw(pg_array_rows(
                sql,
                self.namespace,
                self.source,
                chunk,
                self.now,
                revision,
            )?)
            .await?;
        }
        Ok(())
    }

    /// SQLite: the added and updated rows, upserted by multi-row `VALUES`.
    async fn upsert_changed(
        &self,
        txn: &impl ConnectionTrait,
        revision: i64,
    ) -> Result<(), StoreError> {
        let upserts: Vec<&AssetRecord> = self
            .diff
            .added
            .iter()
            .chain(self.diff.updated.iter().map(|u| &u.record))
            .collect();
        for chunk in upserts.chunks(SQLITE_UPSERT_CHUNK) {
            txn.execute(&upsert_statement(
                self.namespace,
                self.source,
                chunk,
                self.now,
                revision,
            )?)
            .await?;
        }
        Ok(())
    }

    /// The facet counts, the namespace's revision, the feed's compaction and notification.
    async fn finish(
        &self,
        txn: &impl ConnectionTrait,
        feed_retention: chrono::Duration,
        revision: i64,
    ) -> Result<(), StoreError> {
        let (namespace, source, diff) = (self.namespace, self.source, self.diff);
        if diff.is_empty() {
            return Ok(());
        }
        let backend = txn.get_database_backend();
        // Every stored asset of the source is in the diff as updated, removed or unchanged,
        // so one with only additions found the source empty: the counts are the added
        // records' own, and nothing need be read back to count them.
        if diff.updated.is_empty() && diff.removed.is_empty() && diff.unchanged == 0 {
            facets::write_counts_of(txn, namespace, source, &diff.added).await?;
        } else {
            facets::rewrite_counts(txn, backend, namespace, source).await?;
        }
        bump_revision(txn, backend, namespace, revision).await?;
        feed::compact(txn, backend, self.now - feed_retention).await?;
        feed::notify(txn, backend, namespace, revision).await?;
        Ok(())
    }
}

impl Store {
    /// The stored digests of one source's assets: the left side of a refresh's diff.
    /// How many assets `source` has in the store.
    pub async fn source_asset_count(
        &self,
        namespace: &Namespace,
        source: &str,
    ) -> Result<i64, StoreError> {
        let count = asset::Entity::find()
            .filter(asset::Column::Namespace.eq(namespace.as_str()))
            .filter(asset::Column::Source.eq(source))
            .count(&self.db)
            .await?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }

    pub async fn source_digests(
        &self,
        namespace: &Namespace,
        source: &str,
    ) -> Result<HashMap<AssetKey, String>, StoreError> {
        let rows: Vec<(String, String, String, String)> = asset::Entity::find()
            .select_only()
            .columns([
                asset::Column::Kind,
                asset::Column::Name,
                asset::Column::Version,
                asset::Column::Digest,
            ])
            .filter(asset::Column::Namespace.eq(namespace.as_str()))
            .filter(asset::Column::Source.eq(source))
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(kind, name, version, digest)| {
                let kind = kind
                    .parse::<AssetKind>()
                    .map_err(|e| StoreError::CorruptRow {
                        table: "assets",
                        message: e.to_string(),
                    })?;
                Ok((
                    AssetKey {
                        kind,
                        name,
                        version,
                    },
                    digest,
                ))
            })
            .collect()
    }

    /// Writes a refresh's whole diff and its audit events in one transaction, with batched
    /// statements (on PostgreSQL, new rows by `COPY`). Either all of it lands or none of it
    /// does.
    pub async fn apply_refresh(
        &self,
        namespace: &Namespace,
        source: &str,
        diff: &Diff,
        audit_events: &[NewAuditEvent],
    ) -> Result<ApplyOutcome, StoreError> {
        if let Some(event) = audit_events.iter().find(|e| &e.namespace != namespace) {
            return Err(StoreError::NamespaceMismatch {
                expected: namespace.to_string(),
                found: event.namespace.to_string(),
            });
        }
        let refresh = RefreshWrite {
            namespace,
            source,
            diff,
            now: Utc::now(),
        };
        let (revision, audit_written) = if self.backend() == DatabaseBackend::Postgres {
            let txn = CopyTransaction::begin(self.db.get_postgres_connection_pool()).await?;
            let revision = refresh.remove(&txn).await?;
            refresh.copy_added(&txn, revision).await?;
            refresh.upsert_updated_pg(&txn, revision).await?;
            let audit_written = audit::copy_batch(&txn, audit_events).await?;
            refresh.finish(&txn, self.feed.retention, revision).await?;
            txn.commit().await?;
            (revision, audit_written)
        } else {
            let txn = self.db.begin().await?;
            let revision = refresh.remove(&txn).await?;
            refresh.upsert_changed(&txn, revision).await?;
            let audit_written = audit::insert_batch(&txn, audit_events).await?;
            refresh.finish(&txn, self.feed.retention, revision).await?;
            txn.commit().await?;
            (revision, audit_written)
        };
        if !diff.is_empty() {
            self.feed.committed(self.backend(), namespace, revision);
        }
        if diff.added.len() + diff.removed.len() >= ANALYZE_AFTER_ROWS {
            self.analyze_assets().await;
        }
        Ok(ApplyOutcome {
            added: diff.added.len(),
            updated: diff.updated.len(),
            removed: diff.removed.len(),
            unchanged: diff.unchanged,
            audit_events: audit_written,
        })
    }

    /// Refreshes the planner's statistics of `assets`. After a large ingest they say the
    /// namespace is nearly empty until autovacuum gets to it (a minute or more), and a first
    /// page of 50 sorts every row of the namespace instead of walking the keyset index (140 ms
    /// against 0.1 ms for 100,000 rows). Best effort: a failure only leaves that to autovacuum.
    async fn analyze_assets(&self) {
        let sql = match self.backend() {
            DatabaseBackend::Postgres | DatabaseBackend::Sqlite => "ANALYZE assets",
            _ => return,
        };
        if let Err(e) = self.db.execute_unprepared(sql).await {
            tracing::debug!(error = %e, "ANALYZE assets failed; autovacuum will do it");
        }
    }

    /// One page of assets in `scope`, in keyset order, through the RLS-scoped path.
    pub async fn list_assets(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        sort: AssetSort,
        after: Option<&AssetCursor>,
        limit: u64,
    ) -> Result<Page<asset::Model>, StoreError> {
        Ok(self
            .list_assets_at_head(scope, query, sort, after, limit)
            .await?
            .1)
    }

    /// [`Store::list_assets`], and the change feed's head read before the rows in the same
    /// transaction: every write at or below it is in the page (a watch from it misses nothing).
    pub async fn list_assets_at_head(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        sort: AssetSort,
        after: Option<&AssetCursor>,
        limit: u64,
    ) -> Result<(FeedHead, Page<asset::Model>), StoreError> {
        let txn = self.db.begin().await?;
        let (head, select) = if self.searches_by_id(query) {
            // Under row-level security PostgreSQL applies no operator that is not leakproof
            // (ILIKE is not) before the policy, so a scoped read cannot use the search index.
            // The page's ids are found as the table's owner, with the same namespace filter;
            // the rows are then read in the scope, where RLS still decides what returns.
            let (head, ids) = self
                .search_ids(&txn, scope, query, sort, after, limit)
                .await?;
            if ids.is_empty() {
                txn.commit().await?;
                let empty = Page {
                    items: Vec::new(),
                    next: None,
                };
                return Ok((head, empty));
            }
            self.enter_scope(&txn, scope).await?;
            let select = ordered(
                asset::Entity::find()
                    .filter(
                        asset::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)),
                    )
                    .filter(asset::Column::Id.is_in(ids)),
                sort,
            );
            (head, select)
        } else {
            let head = self.enter_scope_after_head(&txn, scope).await?;
            (head, self.list_select(scope, query, sort, after, limit))
        };
        let mut items = select.all(&txn).await?;
        txn.commit().await?;
        let next = if items.len() as u64 > limit {
            items.truncate(limit as usize);
            items.last().map(|last| AssetCursor {
                namespace: last.namespace.clone(),
                kind: last.kind.clone(),
                name: last.name.clone(),
                version: last.version.clone(),
                updated_at: last.updated_at,
                id: last.id,
            })
        } else {
            None
        };
        Ok((head, Page { items, next }))
    }

    /// Whether a list finds its page's ids first, outside row-level security (see
    /// [`Store::list_assets`]): searches on PostgreSQL.
    pub fn searches_by_id(&self, query: &AssetQuery) -> bool {
        query.text.is_some() && self.backend() == DatabaseBackend::Postgres
    }

    /// The statement that does a list's work, for plan checks (`EXPLAIN`) in tests: for a
    /// search on PostgreSQL the id lookup (run as the table's owner, planned per execution),
    /// otherwise the scoped select.
    pub fn list_assets_statement(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        sort: AssetSort,
        after: Option<&AssetCursor>,
        limit: u64,
    ) -> sea_orm::Statement {
        let select = self.list_select(scope, query, sort, after, limit);
        if self.searches_by_id(query) {
            select
                .select_only()
                .column(asset::Column::Id)
                .build(self.backend())
        } else {
            select.build(self.backend())
        }
    }

    /// The part of a search's `text` looked up in the trigram index on PostgreSQL (the rows it
    /// finds are checked against all of `text`): see [`crate::search_probe`].
    pub async fn search_lookup(&self, text: &str) -> Result<String, StoreError> {
        let frequencies = self.search_sample.frequencies(&self.db).await?;
        Ok(frequencies.probe(text).to_owned())
    }

    /// A search page's ids, in order: the scope's namespace filter and every other filter,
    /// through the search index, planned for this very pattern.
    /// In `txn`, before it is scoped: the feed's head, then the ids (as the owner).
    async fn search_ids(
        &self,
        txn: &DatabaseTransaction,
        scope: &NamespaceScope,
        query: &AssetQuery,
        sort: AssetSort,
        after: Option<&AssetCursor>,
        limit: u64,
    ) -> Result<(FeedHead, Vec<i64>), StoreError> {
        let text = query.text.as_deref().unwrap_or_default();
        let frequencies = match self.search_sample.frequencies(&self.db).await {
            Ok(frequencies) => frequencies,
            Err(e) => {
                // Only the choice of what to look up suffers: look up the whole text.
                tracing::debug!(error = %e, "sampling search trigrams failed");
                Default::default()
            }
        };
        let others = AssetQuery {
            text: None,
            ..query.clone()
        };
        // Planned for this very pattern: a generic plan cannot see how rare it is and walks
        // the namespace in key order instead of taking the index. Set with the head's read.
        let head = feed::head_of(
            txn.query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), {}",
                    feed::HEAD_FROM
                ),
            ))
            .await?,
        )?;
        let ids: Vec<i64> = self
            .list_select(scope, &others, sort, after, limit)
            .filter(search_condition(true, text, frequencies.probe(text)))
            .select_only()
            .column(asset::Column::Id)
            .into_tuple()
            .all(txn)
            .await?;
        Ok((head, ids))
    }

    /// A page's query: the scope, the filters, the keyset and the order, one row past `limit`
    /// (to know whether another page follows).
    fn list_select(
        &self,
        scope: &NamespaceScope,
        query: &AssetQuery,
        sort: AssetSort,
        after: Option<&AssetCursor>,
        limit: u64,
    ) -> sea_orm::Select<asset::Entity> {
        let backend = self.backend();
        let mut select = asset::Entity::find()
            .filter(asset::Column::Namespace.is_in(scope.namespaces().map(Namespace::as_str)));
        for condition in filter_conditions(backend, query) {
            select = select.filter(condition);
        }
        let pg = backend == DatabaseBackend::Postgres;
        if let Some(c) = after {
            select = select.filter(keyset_condition(pg, sort, c));
        }
        ordered(select, sort).limit(limit.saturating_add(1))
    }
}

/// `select` in the sort's total order.
fn ordered(
    mut select: sea_orm::Select<asset::Entity>,
    sort: AssetSort,
) -> sea_orm::Select<asset::Entity> {
    use asset::Column as C;
    let (columns, order): (&[C], Order) = match sort {
        AssetSort::Key => (
            &[C::Namespace, C::Kind, C::Name, C::Version, C::Id],
            Order::Asc,
        ),
        AssetSort::Name => (
            &[C::Name, C::Version, C::Kind, C::Namespace, C::Id],
            Order::Asc,
        ),
        AssetSort::NameDesc => (
            &[C::Name, C::Version, C::Kind, C::Namespace, C::Id],
            Order::Desc,
        ),
        AssetSort::Updated => (&[C::UpdatedAt, C::Id], Order::Asc),
        AssetSort::UpdatedDesc => (&[C::UpdatedAt, C::Id], Order::Desc),
    };
    for column in columns {
        select = select.order_by(*column, order.clone());
    }
    select
}

/// Sets the namespace's catalog revision to the change feed's `revision`, in the transaction
/// that changed its assets.
async fn bump_revision(
    txn: &impl ConnectionTrait,
    backend: DatabaseBackend,
    namespace: &Namespace,
    revision: i64,
) -> Result<(), StoreError> {
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "INSERT INTO catalog_revisions (namespace, revision) VALUES ($1, $2) \
             ON CONFLICT (namespace) DO UPDATE SET revision = EXCLUDED.revision"
        }
        _ => {
            "INSERT INTO catalog_revisions (namespace, revision) VALUES (?, ?) \
             ON CONFLICT (namespace) DO UPDATE SET revision = EXCLUDED.revision"
        }
    };
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [namespace.as_str().into(), revision.into()],
    ))
    .await?;
    Ok(())
}

impl Store {
    /// The catalog revision of each namespace of `scope` (0 for one never written), reflecting
    /// every commit that finished before the call. Concurrent callers share one read
    /// (`revisions`), so under load this costs a round trip per batch, not per call.
    pub async fn catalog_revisions(
        &self,
        scope: &NamespaceScope,
    ) -> Result<crate::CatalogRevisions, StoreError> {
        let names: Vec<&str> = scope.namespaces().map(Namespace::as_str).collect();
        self.revisions.revisions(&self.db, &names).await
    }
}

/// Rows strictly after the cursor in the sort's order, as one row-value comparison.
fn keyset_condition(pg: bool, sort: AssetSort, c: &AssetCursor) -> SimpleExpr {
    let strings = |values: [&str; 4]| values.map(|v| sea_orm::Value::from(v.to_owned()));
    match sort {
        AssetSort::Key => {
            let [a, b, d, e] = strings([&c.namespace, &c.kind, &c.name, &c.version]);
            custom(
                pg,
                "(namespace, kind, name, version, id) > (?, ?, ?, ?, ?)",
                [a, b, d, e, c.id.into()],
            )
        }
        AssetSort::Name | AssetSort::NameDesc => {
            let [a, b, d, e] = strings([&c.name, &c.version, &c.kind, &c.namespace]);
            let op = if sort == AssetSort::Name { ">" } else { "<" };
            custom(
                pg,
                &format!("(name, version, kind, namespace, id) {op} (?, ?, ?, ?, ?)"),
                [a, b, d, e, c.id.into()],
            )
        }
        AssetSort::Updated | AssetSort::UpdatedDesc => {
            let op = if sort == AssetSort::Updated { ">" } else { "<" };
            custom(
                pg,
                &format!("(updated_at, id) {op} (?, ?)"),
                [sea_orm::Value::from(c.updated_at), c.id.into()],
            )
        }
    }
}

pub(crate) fn filter_conditions(backend: DatabaseBackend, query: &AssetQuery) -> Vec<SimpleExpr> {
    let pg = backend == DatabaseBackend::Postgres;
    let mut out = Vec::new();
    if let Some(kinds) = &query.kinds {
        out.push(asset::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())));
    }
    if let Some(by_namespace) = &query.kinds_by_namespace {
        if by_namespace.is_empty() {
            // Nothing is allowed; say so explicitly rather than rely on how an empty OR renders.
            out.push(custom(pg, "1 = 0", Vec::<String>::new()));
        }
        let mut any = Condition::any();
        for (namespace, kinds) in by_namespace {
            any = any.add(
                Condition::all()
                    .add(asset::Column::Namespace.eq(namespace.as_str()))
                    .add(asset::Column::Kind.is_in(kinds.iter().map(|k| k.as_str()))),
            );
        }
        if !by_namespace.is_empty() {
            out.push(any.into());
        }
    }
    if !query.sources.is_empty() {
        out.push(asset::Column::Source.is_in(query.sources.iter().map(String::as_str)));
    }
    if !query.providers.is_empty() {
        out.push(asset::Column::Provider.is_in(query.providers.iter().map(String::as_str)));
    }
    if !query.licenses.is_empty() {
        out.push(asset::Column::License.is_in(query.licenses.iter().map(String::as_str)));
    }
    if let Some(name) = &query.name {
        out.push(asset::Column::Name.eq(name.as_str()));
    }
    if let Some(version) = &query.version {
        out.push(asset::Column::Version.eq(version.as_str()));
    }
    if let Some(object_name) = &query.object_name {
        out.push(asset::Column::ObjectName.eq(object_name.as_str()));
    }
    if let Some(namespace) = &query.namespace {
        out.push(asset::Column::Namespace.eq(namespace.as_str()));
    }
    if !query.stages.is_empty() {
        out.push(asset::Column::Stage.is_in(query.stages.iter().map(String::as_str)));
    }
    if let Some(approved) = query.approved {
        out.push(asset::Column::Approved.eq(approved));
    }
    if !query.tags.is_empty() {
        let mut any = Condition::any();
        for tag in &query.tags {
            any = any.add(if pg {
                custom(pg, "tags @> ?", [serde_json::json!([tag])])
            } else {
                custom(
                    pg,
                    "EXISTS (SELECT 1 FROM json_each(assets.tags) WHERE json_each.value = ?)",
                    [tag.clone()],
                )
            });
        }
        out.push(any.into());
    }
    for requirement in &query.labels {
        out.push(label_condition(pg, requirement));
    }
    if let Some(text) = &query.text {
        out.push(search_condition(pg, text, text));
    }
    out
}

/// `q`: the name or display name holds `text` (ignoring case), or each word of `text` begins
/// a word of the description (`curio_core::catalog::search_terms`). On PostgreSQL the names
/// are looked up by `probe` alone, a part of `text` (see [`crate::search_probe`]); the whole
/// text is then checked on `NAME_SEARCH_EXPRESSION || ''`, which the planner cannot match to
/// the index expression, so its frequent trigrams are never read from the index. (Same match
/// as `ILIKE` on the expression: `||` with an empty string changes nothing.)
fn search_condition(pg: bool, text: &str, probe: &str) -> SimpleExpr {
    let pattern = |s: &str| format!("%{}%", escape_like(s));
    let names = if !pg {
        // SQLite's LIKE ignores ASCII case only; the terms are lowercase already.
        custom(
            pg,
            "(name LIKE ? ESCAPE '\\' OR display_name LIKE ? ESCAPE '\\')",
            [pattern(text), pattern(text)],
        )
    } else if probe == text {
        // One trigram index serves both fields. The separator cannot occur in a field or in
        // `q` (the API refuses control characters), so a match never spans the two.
        custom(
            pg,
            &format!("{} ILIKE ? ESCAPE '\\'", migrations::NAME_SEARCH_EXPRESSION),
            [pattern(text)],
        )
    } else {
        custom(
            pg,
            &format!(
                "({name} ILIKE ? ESCAPE '\\' AND ({name} || '') ILIKE ? ESCAPE '\\')",
                name = migrations::NAME_SEARCH_EXPRESSION
            ),
            [pattern(probe), pattern(text)],
        )
    };
    let words: Vec<String> = search_terms::words(text).collect();
    if words.is_empty() {
        return names;
    }
    let description = if pg {
        // `search_terms::prefix_tsquery` is `Some` whenever `text` has a word.
        let tsquery = search_terms::prefix_tsquery(text).unwrap_or_default();
        custom(
            pg,
            &format!(
                "{} @@ CAST(? AS tsquery)",
                migrations::DESCRIPTION_TERMS_VECTOR
            ),
            [tsquery],
        )
    } else {
        // A term begins after the start or a space: `' ' || terms` holds `' ' || word`.
        let mut all = Condition::all();
        for word in words {
            all = all.add(custom(
                pg,
                "(' ' || description_terms) LIKE ? ESCAPE '\\'",
                [format!("% {}%", escape_like(&word))],
            ));
        }
        all.into()
    };
    Condition::any().add(names).add(description).into()
}

/// A custom SQL fragment with `?` for each bound value. sea-query's placeholder is backend
/// specific (`$N` on PostgreSQL, where a bare `?` is a jsonb operator), so number them there.
fn custom<V, I>(pg: bool, sql: &str, values: I) -> SimpleExpr
where
    V: Into<sea_orm::Value>,
    I: IntoIterator<Item = V>,
{
    let sql = if pg {
        let mut numbered = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                numbered.push_str(&format!("${n}"));
            } else {
                numbered.push(c);
            }
        }
        numbered
    } else {
        sql.to_owned()
    };
    Expr::cust_with_values(sql, values)
}

/// The value of one label, as SQL: `labels ->> key` on PostgreSQL, `json_extract` on SQLite.
fn label_value(pg: bool, key: &str) -> SimpleExpr {
    if pg {
        custom(pg, "(labels ->> ?)", [key.to_owned()])
    } else {
        // Label keys are validated ([A-Za-z0-9._/-]), so quoting them in the path is safe.
        custom(pg, "json_extract(labels, ?)", [format!("$.\"{key}\"")])
    }
}

fn label_condition(pg: bool, requirement: &LabelRequirement) -> SimpleExpr {
    match requirement {
        LabelRequirement::Equals(k, v) if pg => {
            custom(pg, "labels @> ?", [serde_json::json!({ k: v })])
        }
        LabelRequirement::Equals(k, v) => label_value(pg, k).eq(v.as_str()),
        LabelRequirement::NotEquals(k, v) => label_value(pg, k)
            .is_null()
            .or(label_value(pg, k).ne(v.as_str())),
        LabelRequirement::In(k, values) => {
            label_value(pg, k).is_in(values.iter().map(String::as_str))
        }
        LabelRequirement::NotIn(k, values) => label_value(pg, k)
            .is_null()
            .or(label_value(pg, k).is_not_in(values.iter().map(String::as_str))),
        LabelRequirement::Exists(k) => label_value(pg, k).is_not_null(),
        LabelRequirement::NotExists(k) => label_value(pg, k).is_null(),
    }
}
