//! The controller's own HTTP endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers) and `/metrics` (Prometheus text). Served on every replica, leader or not.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
};

use crate::{
    store::Store,
    telemetry::{Registry, metrics_response, register},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `size` (open connections) or `idle`.
    pub state: String,
}

/// The database pool's connections, read at each scrape.
#[derive(Clone, Debug, Default)]
pub struct PoolMetrics {
    connections: Family<PoolLabels, Gauge>,
}

impl PoolMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            connections: "db_pool_connections", "Database pool connections by state (size, idle)";
        })
    }
}

#[derive(Clone)]
pub struct HealthState {
    pub store: Store,
    pub pool: PoolMetrics,
    /// Rendered at `/metrics`: every layer of the process registered into it.
    pub registry: Arc<Registry>,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<HealthState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database is unreachable\n",
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<HealthState>) -> Response {
    let (size, idle) = state.store.pool_stats();
    let pool = &state.pool.connections;
    pool.get_or_create(&PoolLabels {
        state: "size".into(),
    })
    .set(i64::from(size));
    pool.get_or_create(&PoolLabels {
        state: "idle".into(),
    })
    .set(i64::try_from(idle).unwrap_or(i64::MAX));
    metrics_response(&state.registry)
}
