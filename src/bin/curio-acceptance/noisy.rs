//! The noisy tenant: a namespace of its own whose one URL source serves a large catalog that
//! changes completely every so often, and which files a flood of RefreshJobs at once. Nobody
//! reads it: its markers must never reach another tenant's reader, the other tenants' refresh
//! lag must hold while it floods, and every job it files must finish exactly once.

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use serde_json::{Value, json};

use crate::tenants::MARKER_PREFIX;

const SOURCE: &str = "big";
/// A small source whose catalog the harness serves slowly (cluster mode), so that a
/// RefreshJob of it is caught running when the leader is killed.
pub const SLOW_SOURCE: &str = "slow";

#[derive(Clone, Debug)]
pub struct Noisy {
    /// `<prefix>-noisy`.
    pub namespace: String,
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
    pub fn new(prefix: &str, assets: usize) -> Self {
        Self {
            namespace: format!("{prefix}-noisy"),
            assets,
            revision: 0,
        }
    }

    /// The namespace and its source, as (relative path, content).
    pub fn source_file(&self) -> (String, String) {
        let ns = &self.namespace;
        let docs = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
                   "metadata": {"name": SOURCE, "namespace": ns},
                   "spec": {"interval": "1h", "source": {"url": {
                       "url": format!("${{CURIO_URL}}/files/{ns}/catalog.json")}}}}),
        ];
        (format!("{ns}/source.yaml"), documents(&docs))
    }

    /// The slow source and its served catalog (cluster mode), as (relative path, content).
    pub fn slow_files(&self) -> Vec<(String, String)> {
        let ns = &self.namespace;
        let source = json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": SLOW_SOURCE, "namespace": ns},
            "spec": {"interval": "1h", "source": {"url": {
                "url": format!("${{CURIO_URL}}/{}", self.slow_catalog_path())}}}});
        let catalog = json!({"apiVersion": "curio.dev/v1alpha1", "kind": "Catalog", "assets": [
            {"kind": "Model", "name": "slow-model", "version": "1",
             "description": format!("{MARKER_PREFIX}{ns}-slow")}]});
        vec![
            (format!("{ns}/slow.yaml"), documents(&[source])),
            (self.slow_catalog_path(), catalog.to_string()),
        ]
    }

    pub fn slow_catalog_path(&self) -> String {
        format!("files/{}/slow.json", self.namespace)
    }

    /// One RefreshJob of the slow source.
    pub fn slow_job_file(&self, name: &str) -> (String, String) {
        refresh_job(&self.namespace, SLOW_SOURCE, name, "acceptance leader kill")
    }

    /// One RefreshJob of the big source (cluster mode: how a rewrite is published).
    pub fn refresh_job_file(&self, name: &str) -> (String, String) {
        refresh_job(
            &self.namespace,
            SOURCE,
            name,
            "acceptance: catalog rewritten",
        )
    }

    /// The served catalog at the current revision.
    pub fn catalog_file(&self) -> (String, String) {
        let assets: Vec<Value> = (0..self.assets)
            .map(|a| {
                json!({
                    "kind": "Model",
                    "name": format!("noisy-{a:05}"),
                    "version": "1",
                    "description": format!("{MARKER_PREFIX}{}-{a}-rev-{}", self.namespace, self.revision),
                    "tags": ["bulk"],
                })
            })
            .collect();
        let catalog =
            json!({"apiVersion": "curio.dev/v1alpha1", "kind": "Catalog", "assets": assets});
        (
            format!("files/{}/catalog.json", self.namespace),
            serde_json::to_string(&catalog).unwrap_or_default(),
        )
    }

    /// `count` RefreshJobs of the source, filed together in one file.
    pub fn jobs_file(&self, count: usize) -> (String, String) {
        let docs: Vec<Value> = (0..count)
            .map(|i| {
                json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
                       "metadata": {"name": job_name(i), "namespace": self.namespace},
                       "spec": {"sourceRef": {"name": SOURCE}, "reason": "acceptance flood"}})
            })
            .collect();
        (format!("{}/jobs.yaml", self.namespace), documents(&docs))
    }
}

pub const FLOOD_PREFIX: &str = "flood-";

pub fn job_name(i: usize) -> String {
    format!("{FLOOD_PREFIX}{i:04}")
}

/// A RefreshJob of `source`, as (relative path, content).
pub fn refresh_job(namespace: &str, source: &str, name: &str, reason: &str) -> (String, String) {
    let job = json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"sourceRef": {"name": source}, "reason": reason}});
    (format!("{namespace}/jobs/{name}.json"), documents(&[job]))
}

/// JSON documents as one YAML stream.
fn documents(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Counts, from the audit trail in `database_url`, how the jobs of `namespace` whose names
/// start with `prefix` ended.
pub async fn job_outcomes(
    database_url: &str,
    namespace: &str,
    prefix: &str,
) -> anyhow::Result<JobOutcomes> {
    let db = Database::connect(database_url).await?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT object_name, count(*)::bigint AS ends FROM audit_events \
             WHERE namespace = $1 AND resource = 'refreshjobs' AND verb IN ('succeed', 'fail') \
             AND starts_with(object_name, $2) GROUP BY object_name",
            [namespace.into(), prefix.into()],
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
        let (path, body) = Noisy::new("acc", 1).jobs_file(3);
        assert_eq!(path, "acc-noisy/jobs.yaml");
        assert_eq!(body.matches("\"kind\":\"RefreshJob\"").count(), 3);
        for i in 0..3 {
            assert!(body.contains(&format!("\"name\":\"{}\"", job_name(i))));
        }
        assert!(body.contains("\"sourceRef\":{\"name\":\"big\"}"));
    }

    #[test]
    fn each_rewrite_changes_every_asset_and_carries_the_noisy_marker() {
        let mut noisy = Noisy::new("acc", 4);
        let (_, before) = noisy.catalog_file();
        noisy.revision += 1;
        let (_, after) = noisy.catalog_file();
        assert_eq!(before.matches("-rev-0").count(), 4);
        assert_eq!(after.matches("-rev-1").count(), 4);
        assert_eq!(
            after.matches(&format!("{MARKER_PREFIX}acc-noisy-")).count(),
            4
        );
    }
}
