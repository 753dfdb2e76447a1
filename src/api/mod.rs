//! The read-only HTTP API (DESIGN §6): axum router, authentication, authorization, lists.

mod authorize;
pub mod cache;
mod caller;
mod charges;
pub mod continuation;
mod error;
pub mod flow;
mod handlers;
pub mod kube;
pub mod metrics;
pub mod notices;
mod overview;
mod params;
pub mod ratelimit;
mod registry;
mod respond;
pub mod selector;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tracing::Instrument;

pub use error::ApiError;
pub use metrics::ApiMetrics;
pub use respond::validated_bytes;

use crate::access::{authn::Authenticator, authz::Authorizer};
use crate::{access::metrics::AccessMetrics, store::Store, telemetry::Registry};

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub authn: Arc<dyn Authenticator>,
    pub authz: Arc<dyn Authorizer>,
    pub metrics: ApiMetrics,
    pub access_metrics: AccessMetrics,
    /// Every layer of the process registered into it; served on a listener of its own (see
    /// [`crate::telemetry::metrics_router`]), never on the API port, where anyone could read
    /// tenant namespaces off the series.
    pub registry: Arc<Registry>,
    /// Configuration problems shown in discovery (standalone mode's manifests).
    pub notices: Arc<dyn notices::Notices>,
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// How many requests of one namespace are served at once.
    pub flows: Arc<flow::FlowLimits>,
    /// The CatalogPolicies and namespaces, where the process knows them: a rate-limited
    /// namespace becomes a metric label only if it exists.
    pub policies: Option<crate::cluster::policies::Policies>,
    /// Serialized answers keyed by scope, query and catalog revisions.
    pub responses: Arc<cache::ResponseCache>,
    pub watch: kube::watch::WatchSettings,
    /// Cancel at shutdown: ends every watch stream, so graceful shutdown need not wait for
    /// them (clients reconnect, as to a restarting kube-apiserver).
    pub stop_streams: tokio_util::sync::CancellationToken,
}

impl ApiState {
    /// A state whose API and access metrics live in a registry of its own: for tests and
    /// embedding, where no other layer shares the process's registry.
    pub fn new(store: Store, authn: Arc<dyn Authenticator>, authz: Arc<dyn Authorizer>) -> Self {
        let mut registry = crate::telemetry::registry();
        let responses = Arc::new(cache::ResponseCache::new(
            16 << 20,
            cache::CacheMetrics::register(&mut registry),
        ));
        let metrics = ApiMetrics::register(&mut registry);
        let access_metrics = AccessMetrics::register(&mut registry);
        Self {
            store,
            authn,
            authz,
            metrics,
            access_metrics,
            registry: Arc::new(registry),
            notices: Arc::new(notices::NoNotices),
            rate_limits: Arc::new(ratelimit::RateLimits::unlimited()),
            flows: Arc::new(flow::FlowLimits::unlimited()),
            policies: None,
            responses,
            watch: kube::watch::WatchSettings::default(),
            stop_streams: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// The contract, served at `/openapi.json`.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

pub fn openapi_document() -> serde_json::Value {
    serde_saphyr::from_str(OPENAPI_YAML).unwrap_or(serde_json::Value::Null)
}

/// The full router. Every route is read-only; other methods answer 405.
pub fn router(state: ApiState) -> Router {
    let openapi = Arc::new(openapi_document());
    let api = Router::new()
        .route("/api/v1/discovery", get(handlers::discovery))
        .route("/api/v1/namespaces", get(overview::list_namespaces))
        .route("/api/v1/assets", get(handlers::list_cross_namespace))
        .route(
            "/api/v1/assets/facets",
            get(overview::cross_namespace_facets),
        )
        .route(
            "/api/v1/namespaces/{ns}/assets/facets",
            get(overview::namespace_facets),
        )
        .route(
            "/api/v1/namespaces/{ns}/access",
            get(overview::namespace_access),
        )
        .route(
            "/api/v1/auditevents",
            get(handlers::list_cross_namespace_audit_events),
        )
        .route(
            "/api/v1/namespaces/{ns}/catalogsources",
            get(handlers::list_objects::<handlers::CatalogSources>),
        )
        .route(
            "/api/v1/namespaces/{ns}/catalogsources/{name}",
            get(handlers::get_object::<handlers::CatalogSources>),
        )
        .route(
            "/api/v1/namespaces/{ns}/refreshjobs",
            get(handlers::list_objects::<handlers::RefreshJobs>),
        )
        .route(
            "/api/v1/namespaces/{ns}/refreshjobs/{name}",
            get(handlers::get_object::<handlers::RefreshJobs>),
        )
        .route(
            "/api/v1/namespaces/{ns}/auditevents",
            get(handlers::list_audit_events),
        )
        .route(
            "/api/v1/namespaces/{ns}/assets",
            get(handlers::list_namespace_assets),
        )
        .route("/api/v1/namespaces/{ns}/{plural}", get(handlers::list_kind))
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{*name}",
            get(handlers::get_asset),
        )
        .merge(registry::routes())
        .merge(crate::ui::routes())
        .merge(kube::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { axum::Json((*openapi).clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::NotFound("the server could not find the requested resource".into())
        })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("the Curio API is read-only: only GET is allowed".into())
        });
    api.layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn readyz(State(state): State<ApiState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            ApiError::Unavailable("the database is unreachable".into()).into_response()
        }
    }
}

const REQUEST_ID: &str = "x-request-id";

/// A request id the client sent, if it is short and plain; otherwise a fresh one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Request id on the response and on every log line; metrics by route, method and code.
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = charges::scope(next.run(request).instrument(span.clone())).await;
    let code = response.status();
    span.in_scope(|| {
        if code.is_server_error() {
            tracing::warn!(code = code.as_u16(), "request failed");
        } else {
            tracing::debug!(code = code.as_u16(), "request served");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.request(route, method, code.as_u16(), elapsed);
    if code == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("internal server error");
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_parses() {
        let doc = super::openapi_document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/assets"]["get"].is_object());
    }
}
