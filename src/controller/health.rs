//! The controller's own HTTP endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers) and `/metrics` (Prometheus text). Served on every replica, leader or not.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    store::Store,
    telemetry::{Metrics, PoolLabels},
};

#[derive(Clone)]
pub struct HealthState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
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
    let pool = &state.metrics.db_pool_connections;
    pool.get_or_create(&PoolLabels {
        state: "size".into(),
    })
    .set(i64::from(size));
    pool.get_or_create(&PoolLabels {
        state: "idle".into(),
    })
    .set(i64::try_from(idle).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}
