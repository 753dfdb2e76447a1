//! The controller's metrics: reconciles, RefreshJobs (by namespace: a tenant's name is the
//! namespace the object lives in, not a client-chosen value), fetches and audit retention.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};

use crate::telemetry::{HistogramFamily, Registry, register, work_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `CatalogSource` or `RefreshJob`.
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcomeLabels {
    pub namespace: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// `inline`, `configMap` or `url`.
    pub source: String,
    pub outcome: String,
}

#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: HistogramFamily<KindLabels>,
    pub job_duration: HistogramFamily<NamespaceLabels>,
    pub job_outcomes: Family<JobOutcomeLabels, Counter>,
    pub jobs_queued: Family<NamespaceLabels, Gauge>,
    pub jobs_running: Gauge,
    pub fetch_bytes: Family<KindLabels, Counter>,
    pub fetches: Family<FetchLabels, Counter>,
    pub audit_events_purged: Counter,
    pub paused_reconciles: Counter,
    /// 1 while the controller's kill switch pauses every namespace.
    pub kill_switch: Gauge,
    /// Namespaces with CatalogSources that a policy or the kill switch pauses.
    pub paused_namespaces: Gauge,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(work_histogram),
            job_duration: Family::new_with_constructor(work_histogram),
            job_outcomes: Family::default(),
            jobs_queued: Family::default(),
            jobs_running: Gauge::default(),
            fetch_bytes: Family::default(),
            fetches: Family::default(),
            audit_events_purged: Counter::default(),
            paused_reconciles: Counter::default(),
            kill_switch: Gauge::default(),
            paused_namespaces: Gauge::default(),
        }
    }
}

impl ControllerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            reconciles: "reconciles", "Reconciles by kind and result (success, failure, error)";
            reconcile_duration: "reconcile_duration_seconds", "Reconcile duration by kind";
            job_duration: "refresh_job_duration_seconds", "RefreshJob attempt duration by namespace";
            job_outcomes: "refresh_jobs", "RefreshJob attempts by namespace and outcome (succeeded, retrying, failed)";
            jobs_queued: "refresh_jobs_queued", "RefreshJobs waiting for a worker, by namespace";
            jobs_running: "refresh_jobs_running", "RefreshJobs running now";
            fetch_bytes: "fetch_bytes", "Catalog bytes fetched, by source kind";
            fetches: "fetches", "Catalog fetches by source kind and outcome (fetched, not_modified, or a failure reason)";
            audit_events_purged: "audit_events_purged", "Audit events deleted by the retention worker";
            paused_reconciles: "paused_reconciles", "CatalogSource reconciles that did nothing because refreshes are paused";
            kill_switch: "refresh_kill_switch", "1 while --pause-refreshes pauses every namespace's refreshes";
            paused_namespaces: "paused_namespaces", "Namespaces with CatalogSources whose refreshes a CatalogPolicy or the kill switch pauses";
        })
    }
}
