//! The trigram sample behind [`crate::search_probe`]: a few thousand search texts read from a
//! random sample of the table's pages, kept for a while. The GIN index is table-wide, so its
//! posting lists are as long as the whole table's rows make them, whatever the namespace.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::{StoreError, search_probe::TrigramFrequencies};

/// Rows to sample: enough to see any trigram held by more than a few percent of rows.
const SAMPLE_ROWS: u32 = 2_000;
/// How long a sample serves before the next search takes another. Frequencies move slowly;
/// a stale sample only makes some searches slower.
const SAMPLE_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub(crate) struct SearchSample {
    current: RwLock<Option<(Instant, Arc<TrigramFrequencies>)>>,
    /// Held while one search takes a new sample; the others use the old one meanwhile.
    sampling: tokio::sync::Mutex<()>,
}

impl SearchSample {
    /// The current frequencies, sampled now if there are none or they have expired (by one
    /// caller; the others go on with what there is).
    pub(crate) async fn frequencies(
        &self,
        db: &DatabaseConnection,
    ) -> Result<Arc<TrigramFrequencies>, StoreError> {
        let current = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((taken, frequencies)) = &current
            && taken.elapsed() < SAMPLE_LIFETIME
        {
            return Ok(frequencies.clone());
        }
        let Ok(_sampling) = self.sampling.try_lock() else {
            return Ok(current.map(|(_, f)| f).unwrap_or_default());
        };
        let frequencies = Arc::new(sample(db).await?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), frequencies.clone()));
        Ok(frequencies)
    }
}

/// Reads about [`SAMPLE_ROWS`] search texts from random pages (`TABLESAMPLE SYSTEM`, sized by
/// the planner's row estimate) and counts their trigrams. PostgreSQL only.
async fn sample(db: &DatabaseConnection) -> Result<TrigramFrequencies, StoreError> {
    let estimate = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT reltuples::float8 AS rows FROM pg_class WHERE oid = 'assets'::regclass",
        ))
        .await?
        .map(|row| row.try_get::<f64>("", "rows"))
        .transpose()?
        .unwrap_or(-1.0);
    // Never analyzed (-1) or small: read every page, up to the limit.
    let percent = if estimate <= f64::from(SAMPLE_ROWS) {
        100.0
    } else {
        (f64::from(SAMPLE_ROWS) * 150.0 / estimate).clamp(0.01, 100.0)
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            format!(
                "SELECT {} AS text FROM assets TABLESAMPLE SYSTEM ($1) LIMIT $2",
                migrations::NAME_SEARCH_EXPRESSION
            ),
            [(percent as f32).into(), i64::from(SAMPLE_ROWS).into()],
        ))
        .await?;
    let texts = rows
        .iter()
        .map(|row| row.try_get::<String>("", "text"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrigramFrequencies::from_texts(texts.iter().map(String::as_str)).with_table_rows(estimate))
}
