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

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

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
