//! The controller's health endpoints on the real PostgreSQL: ready while the database answers,
//! 503 once it does not; metrics include the database pool.

use std::sync::Arc;

use axum::{body::Body, http::Request};
use curio::{
    cluster::leader::LeaderMetrics,
    controller::health::{HealthState, PoolMetrics, router},
};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database};
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (u16, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let (store, url) = crate::common::postgres_store().await;
    let mut registry = curio::telemetry::registry();
    let pool = PoolMetrics::register(&mut registry);
    // As `curio controller` wires it: every layer of the process in one registry.
    LeaderMetrics::register(&mut registry);
    let app = router(HealthState {
        store,
        pool,
        registry: Arc::new(registry),
    });
    assert_eq!(get(&app, "/healthz").await.0, 200);
    assert_eq!(get(&app, "/readyz").await.0, 200);
    let (code, metrics) = get(&app, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("curio_db_pool_connections{state=\"size\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("curio_leader "), "{metrics}");

    // The database goes away: not ready, still alive.
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = Database::connect(crate::common::admin_url().as_str())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let (code, body) = get(&app, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    assert_eq!(get(&app, "/healthz").await.0, 200);
}
