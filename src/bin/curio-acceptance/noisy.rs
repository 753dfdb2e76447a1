//! The noisy tenant: a namespace of its own whose one URL source serves a large catalog that
//! changes completely every so often, and which files a flood of RefreshJobs at once. Nobody
//! reads it: its markers must never reach another tenant's reader, the other tenants' refresh
//! lag must hold while it floods, and every job it files must finish exactly once.

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use serde_json::{Value, json};

use crate::tenants::MARKER_PREFIX;

pub const NAMESPACE: &str = "acc-noisy";
const SOURCE: &str = "big";

#[derive(Clone, Debug)]
pub struct Noisy {
    pub assets: usize,
    /// Bumped at each rewrite of the whole catalog.
    pub revision: u32,
}

/// What became of the filed jobs, from the audit trail (one row per phase of an attempt).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobOutcomes {
    /// Jobs with a `succeed` or `fail` row.
    pub finished: usize,
    /// Jobs that finished more than once (two attempts each ending, or two ends of one).
    pub duplicated: usize,
}

impl Noisy {
    pub fn new(assets: usize) -> Self {
        Self {
            assets,
            revision: 0,
        }
    }

    /// The namespace and its source, as (relative path, content).
    pub fn source_file(&self) -> (String, String) {
        let docs = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
            json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
                   "metadata": {"name": SOURCE, "namespace": NAMESPACE},
                   "spec": {"interval": "1h", "source": {"url": {
                       "url": format!("${{CURIO_URL}}/files/{NAMESPACE}/catalog.json")}}}}),
        ];
        (format!("{NAMESPACE}/source.yaml"), documents(&docs))
    }

    /// The served catalog at the current revision.
    pub fn catalog_file(&self) -> (String, String) {
        let assets: Vec<Value> = (0..self.assets)
            .map(|a| {
                json!({
                    "kind": "Model",
                    "name": format!("noisy-{a:05}"),
                    "version": "1",
                    "description": format!("{MARKER_PREFIX}{NAMESPACE}-{a}-rev-{}", self.revision),
                    "tags": ["bulk"],
                })
            })
            .collect();
        let catalog =
            json!({"apiVersion": "curio.dev/v1alpha1", "kind": "Catalog", "assets": assets});
        (
            format!("files/{NAMESPACE}/catalog.json"),
            serde_json::to_string(&catalog).unwrap_or_default(),
        )
    }

    /// `count` RefreshJobs of the source, filed together in one file.
    pub fn jobs_file(count: usize) -> (String, String) {
        let docs: Vec<Value> = (0..count)
            .map(|i| {
                json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
                       "metadata": {"name": job_name(i), "namespace": NAMESPACE},
                       "spec": {"sourceRef": {"name": SOURCE}, "reason": "acceptance flood"}})
            })
            .collect();
        (format!("{NAMESPACE}/jobs.yaml"), documents(&docs))
    }
}

pub fn job_name(i: usize) -> String {
    format!("flood-{i:04}")
}

/// JSON documents as one YAML stream.
fn documents(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Counts, from the audit trail in `database_url`, how the flood's jobs ended.
pub async fn job_outcomes(database_url: &str) -> anyhow::Result<JobOutcomes> {
    let db = Database::connect(database_url).await?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT object_name, count(*)::bigint AS ends FROM audit_events \
             WHERE namespace = $1 AND resource = 'refreshjobs' AND verb IN ('succeed', 'fail') \
             GROUP BY object_name",
            [NAMESPACE.into()],
        ))
        .await?;
    db.close().await?;
    let mut outcomes = JobOutcomes::default();
    for row in rows {
        let ends: i64 = row.try_get("", "ends")?;
        outcomes.finished += 1;
        if ends > 1 {
            outcomes.duplicated += 1;
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_is_one_file_of_distinct_jobs_on_the_source() {
        let (path, body) = Noisy::jobs_file(3);
        assert_eq!(path, "acc-noisy/jobs.yaml");
        assert_eq!(body.matches("\"kind\":\"RefreshJob\"").count(), 3);
        for i in 0..3 {
            assert!(body.contains(&format!("\"name\":\"{}\"", job_name(i))));
        }
        assert!(body.contains("\"sourceRef\":{\"name\":\"big\"}"));
    }

    #[test]
    fn each_rewrite_changes_every_asset_and_carries_the_noisy_marker() {
        let mut noisy = Noisy::new(4);
        let (_, before) = noisy.catalog_file();
        noisy.revision += 1;
        let (_, after) = noisy.catalog_file();
        assert_eq!(before.matches("-rev-0").count(), 4);
        assert_eq!(after.matches("-rev-1").count(), 4);
        assert_eq!(
            after
                .matches(&format!("{MARKER_PREFIX}{NAMESPACE}-"))
                .count(),
            4
        );
    }
}
