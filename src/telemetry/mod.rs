//! Logging (JSON lines to stderr, `RUST_LOG`, default `info`) and the Prometheus registry the
//! layers of one process register their own metrics into (`curio_` prefix).

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub use prometheus_client::registry::Registry;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Readable lines, for people.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Starts logging to stderr (`RUST_LOG`, default `info`).
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (tests, embedding) keeps the first subscriber.
    let _ = if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
}

/// An empty registry with Curio's prefix; each layer's `register` adds its metrics.
pub fn registry() -> Registry {
    Registry::with_prefix("curio")
}

/// The Prometheus text exposition of every metric in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// `GET /metrics`.
pub fn metrics_response(registry: &Registry) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        render(registry),
    )
        .into_response()
}

/// Registers fields of a metrics value into a registry and returns the value:
///
/// ```ignore
/// register!(registry, Self::default(), {
///     requests: "api_requests", "API requests by route, method and code";
/// })
/// ```
macro_rules! register {
    ($registry:expr, $metrics:expr, { $($field:ident: $name:literal, $help:literal;)+ }) => {{
        let metrics = $metrics;
        $($registry.register($name, $help, metrics.$field.clone());)+
        metrics
    }};
}
pub(crate) use register;

/// `GET /metrics` alone, for a listener of its own.
pub fn metrics_router(registry: std::sync::Arc<Registry>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { metrics_response(&registry) }
        }),
    )
}

pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Reconciles and jobs run from milliseconds to minutes.
pub fn work_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Requests and reviews: half a millisecond and up.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}
