//! Logging (JSON lines to stderr, `RUST_LOG`, default `info`) and Prometheus metrics.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (tests, embedding) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().json().with_writer(std::io::stderr))
        .try_init();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub result: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeaderLabels {
    pub header: String,
}

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `size` (open connections) or `idle`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub resource: String,
    /// `create`, `update`, `delete`.
    pub operation: String,
    /// `admitted`, `forbidden`, `invalid`, `audit_unavailable`, `skipped` (housekeeping).
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Reconciles and jobs run from milliseconds to minutes.
fn work_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 16,
    ))
}

fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

/// Every metric Curio exports, registered under the `curio_` prefix.
pub struct Metrics {
    registry: Registry,
    pub api_requests: Family<RequestLabels, Counter>,
    pub api_request_duration: HistogramFamily<RouteLabels>,
    pub authn: Family<OutcomeLabels, Counter>,
    pub authz: Family<OutcomeLabels, Counter>,
    pub cache: Family<CacheLabels, Counter>,
    pub identity_headers_ignored: Family<HeaderLabels, Counter>,
    /// 1 while this replica holds the controller Lease.
    pub leader: Gauge,
    pub leader_transitions: Counter,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: HistogramFamily<KindLabels>,
    pub job_duration: HistogramFamily<NamespaceLabels>,
    pub job_outcomes: Family<JobOutcomeLabels, Counter>,
    pub jobs_queued: Family<NamespaceLabels, Gauge>,
    pub jobs_running: Gauge,
    pub fetch_bytes: Family<KindLabels, Counter>,
    pub fetches: Family<FetchLabels, Counter>,
    pub db_pool_connections: Family<PoolLabels, Gauge>,
    pub admission_reviews: Family<AdmissionLabels, Counter>,
    pub admission_duration: Histogram,
    pub audit_events_purged: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("curio");
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests by route, method and code",
            api_requests.clone(),
        );
        let api_request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "api_request_duration_seconds",
            "API request duration by route",
            api_request_duration.clone(),
        );
        let authn = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "authn",
            "Authentication outcomes by result and reason",
            authn.clone(),
        );
        let authz = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "authz",
            "Authorization decisions by result and reason",
            authz.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Review cache lookups by cache and hit or miss",
            cache.clone(),
        );
        let identity_headers_ignored = Family::<HeaderLabels, Counter>::default();
        registry.register(
            "identity_headers_ignored",
            "Identity or impersonation headers ignored because they did not come from a verified proxy",
            identity_headers_ignored.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the controller Lease",
            leader.clone(),
        );
        let leader_transitions = Counter::default();
        registry.register(
            "leader_transitions",
            "Times this replica gained or lost leadership",
            leader_transitions.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result (success, failure, error)",
            reconciles.clone(),
        );
        let reconcile_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(work_histogram);
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            reconcile_duration.clone(),
        );
        let job_duration: HistogramFamily<NamespaceLabels> =
            Family::new_with_constructor(work_histogram);
        registry.register(
            "refresh_job_duration_seconds",
            "RefreshJob attempt duration by namespace",
            job_duration.clone(),
        );
        let job_outcomes = Family::<JobOutcomeLabels, Counter>::default();
        registry.register(
            "refresh_jobs",
            "RefreshJob attempts by namespace and outcome (succeeded, retrying, failed)",
            job_outcomes.clone(),
        );
        let jobs_queued = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "refresh_jobs_queued",
            "RefreshJobs waiting for a worker, by namespace",
            jobs_queued.clone(),
        );
        let jobs_running = Gauge::default();
        registry.register(
            "refresh_jobs_running",
            "RefreshJobs running now",
            jobs_running.clone(),
        );
        let fetch_bytes = Family::<KindLabels, Counter>::default();
        registry.register(
            "fetch_bytes",
            "Catalog bytes fetched, by source kind",
            fetch_bytes.clone(),
        );
        let fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "fetches",
            "Catalog fetches by source kind and outcome (fetched, not_modified, or a failure reason)",
            fetches.clone(),
        );
        let db_pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (size, idle)",
            db_pool_connections.clone(),
        );
        let admission_reviews = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered by the webhook, by resource, operation and outcome",
            admission_reviews.clone(),
        );
        let admission_duration = latency_histogram();
        registry.register(
            "admission_review_duration_seconds",
            "Time to answer an admission review (SubjectAccessReviews and the audit write included)",
            admission_duration.clone(),
        );
        let audit_events_purged = Counter::default();
        registry.register(
            "audit_events_purged",
            "Audit events deleted by the retention worker",
            audit_events_purged.clone(),
        );
        Self {
            registry,
            api_requests,
            api_request_duration,
            authn,
            authz,
            cache,
            identity_headers_ignored,
            leader,
            leader_transitions,
            reconciles,
            reconcile_duration,
            job_duration,
            job_outcomes,
            jobs_queued,
            jobs_running,
            fetch_bytes,
            fetches,
            db_pool_connections,
            admission_reviews,
            admission_duration,
            audit_events_purged,
        }
    }

    pub fn cache_lookup(&self, cache: &str, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                cache: cache.into(),
                result: if hit { "hit" } else { "miss" }.into(),
            })
            .inc();
    }

    pub fn outcome(family: &Family<OutcomeLabels, Counter>, result: &str, reason: &str) {
        family
            .get_or_create(&OutcomeLabels {
                result: result.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
