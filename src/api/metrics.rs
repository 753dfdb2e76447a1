//! Request metrics by route (the matched route template, never the raw path), method and code.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

use crate::telemetry::{HistogramFamily, Registry, latency_histogram, register};

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

/// Which rate limit refused a request: `user` or `namespace` (no names: a label never takes a
/// value the client chose).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub scope: String,
    /// The namespace whose bucket ran dry, if it exists (`other` if not; empty for users).
    pub namespace: String,
}

#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    rate_limited: Family<LimitLabels, Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            rate_limited: Family::default(),
        }
    }
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            requests: "api_requests", "API requests by route, method and code";
            request_duration: "api_request_duration_seconds", "API request duration by route";
            rate_limited: "api_requests_rate_limited", "Requests refused by a rate limit, by the limit's scope (user, namespace) and namespace (existing ones only; never a user name)";
        })
    }

    /// Counts a refusal. `namespace` must be one that exists (never a name from the request
    /// as such): anything else is counted as `other`.
    pub fn rate_limited(&self, scope: super::ratelimit::Scope, namespace: Option<&str>) {
        let namespace = match (scope, namespace) {
            (super::ratelimit::Scope::User | super::ratelimit::Scope::Concurrency, _) => {
                String::new()
            }
            (_, Some(namespace)) => namespace.to_owned(),
            (_, None) => "other".to_owned(),
        };
        self.rate_limited
            .get_or_create(&LimitLabels {
                scope: scope.as_str().to_owned(),
                namespace,
            })
            .inc();
    }

    pub fn request(&self, route: String, method: String, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method,
                code,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }
}
