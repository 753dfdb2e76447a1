//! The catalog as the aggregated Kubernetes API `catalog.curio.dev/v1alpha1`: discovery,
//! OpenAPI, list (JSON or Table), get, and watch, authorized per request in that group.
//! kubectl reaches it through the cluster's aggregation layer, or directly (standalone's HTTPS
//! listener and kubeconfig).

mod encode;
mod filters;
pub mod objects;
pub mod watch;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::{
    ApiState,
    authorize::{check_in, forbidden},
    caller::Caller,
    continuation::{self, query_digest},
    error::ApiError,
    params::{self, Params, RawParams},
    respond::Fixed,
};
use crate::{
    access::{authz::CATALOG_API_GROUP, identity::UserInfo},
    store::{AssetCursor, AssetQuery, AssetSort, Namespace, NamespaceScope},
};
use curio_core::catalog_api::{GROUP, Resource, VERSION, discovery, openapi};
use objects::IncludeObject;

/// A watch without `timeoutSeconds` ends after this long (clients reconnect), as
/// kube-apiserver's `--min-request-timeout` does.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
const MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(3600);

/// Parameters of the list and watch routes: the Kubernetes list options a client may send.
const LIST_PARAMS: &[&str] = &[
    "limit",
    "continue",
    "labelSelector",
    "fieldSelector",
    "resourceVersion",
    "resourceVersionMatch",
    "watch",
    "allowWatchBookmarks",
    "timeoutSeconds",
    "includeObject",
    "pretty",
    "timeout",
    "sendInitialEvents",
];

pub fn routes() -> Router<ApiState> {
    let base = format!("/apis/{GROUP}/{VERSION}");
    // Discovery and OpenAPI never change while the process runs: serialized once.
    let fixed =
        |answer: Fixed| move |headers: HeaderMap| std::future::ready(answer.respond(&headers));
    Router::new()
        .route(
            "/apis",
            get(fixed(Fixed::new(&discovery::api_group_list()))),
        )
        .route(
            &format!("/apis/{GROUP}"),
            get(fixed(Fixed::new(&discovery::api_group()))),
        )
        .route(
            &base,
            get(fixed(Fixed::new(&discovery::api_resource_list()))),
        )
        .route(&format!("{base}/{{plural}}"), get(list_all_namespaces))
        .route(
            &format!("{base}/namespaces/{{ns}}/{{plural}}"),
            get(list_namespace),
        )
        .route(
            &format!("{base}/namespaces/{{ns}}/{{plural}}/{{name}}"),
            get(get_object),
        )
        .route("/openapi/v2", get(fixed(Fixed::new(&openapi::v2()))))
        .route(
            "/openapi/v3",
            get(fixed(Fixed::new(&json!({"paths": {
                format!("apis/{GROUP}/{VERSION}"): {
                    "serverRelativeURL": format!("/openapi/v3/apis/{GROUP}/{VERSION}"),
                },
            }})))),
        )
        .route(
            &format!("/openapi/v3/apis/{GROUP}/{VERSION}"),
            get(fixed(Fixed::new(&openapi::v3()))),
        )
}

fn resource_of(plural: &str) -> Result<Resource, ApiError> {
    Resource::from_plural(plural).ok_or_else(|| {
        ApiError::NotFound(format!(
            "the server could not find the requested resource ({plural}.{GROUP})"
        ))
    })
}

async fn require(
    state: &ApiState,
    user: &UserInfo,
    verb: &'static str,
    resource: Resource,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if check_in(
        state,
        user,
        CATALOG_API_GROUP,
        verb,
        resource.plural,
        namespace,
        name,
    )
    .await?
    {
        Ok(())
    } else {
        Err(forbidden(
            user,
            CATALOG_API_GROUP,
            verb,
            resource.plural,
            namespace,
        ))
    }
}

/// `GET /apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}`.
async fn list_namespace(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path((ns, plural)): Path<(String, String)>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resource = resource_of(&plural)?;
    let ns = Namespace::new(ns).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    list_or_watch(state, user, resource, Some(ns), params, headers).await
}

/// `GET /apis/catalog.curio.dev/v1alpha1/{plural}`: every namespace (`kubectl get -A`), for a
/// caller allowed at the cluster scope.
async fn list_all_namespaces(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(plural): Path<String>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resource = resource_of(&plural)?;
    list_or_watch(state, user, resource, None, params, headers).await
}

/// `timeoutSeconds`: how long a watch runs.
fn watch_timeout(params: &RawParams) -> Result<Duration, ApiError> {
    match params.get("timeoutSeconds") {
        None => Ok(DEFAULT_WATCH_TIMEOUT),
        Some(raw) => Ok(Duration::from_secs(raw.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "timeoutSeconds must be a whole number, got {raw:?}"
            ))
        })?)
        .min(MAX_WATCH_TIMEOUT)),
    }
}

/// Where a watch resumes: after this revision; `None` (absent, empty or `0`) starts with the
/// current objects.
fn revision(raw: Option<&str>, what: &str) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") | Some("0") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{what} must be a revision, got {raw:?}"))),
    }
}

fn flag(params: &RawParams, key: &str) -> Result<bool, ApiError> {
    match params.get(key).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{key} must be true or false, got {other:?}"
        ))),
    }
}

async fn list_or_watch(
    state: ApiState,
    user: UserInfo,
    resource: Resource,
    namespace: Option<Namespace>,
    params: RawParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, LIST_PARAMS)?;
    let watching = flag(&params, "watch")?;
    let verb = if watching { "watch" } else { "list" };
    let scope_name = namespace.as_ref().map_or("", Namespace::as_str);
    require(&state, &user, verb, resource, scope_name, None).await?;
    let mut query = AssetQuery {
        kinds: Some(vec![resource.kind]),
        ..AssetQuery::default()
    };
    filters::apply(
        &mut query,
        params.get("labelSelector").map(String::as_str),
        params.get("fieldSelector").map(String::as_str),
    )?;
    let include = match params.get("includeObject") {
        None => IncludeObject::default(),
        Some(raw) => IncludeObject::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "includeObject must be None, Metadata or Object, got {raw:?}"
            ))
        })?,
    };
    let table = objects::wants_table(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    if watching {
        return watch_response(
            state, user, resource, namespace, query, &params, table, include,
        )
        .await;
    }
    let scope = watch::scope_of(&state.store, &watch::Namespaces::of(namespace.clone())).await?;
    let limit = match params.get("limit").map(String::as_str) {
        None | Some("0") => params::MAX_LIMIT,
        Some(_) => params::limit(&params)?.min(params::MAX_LIMIT),
    };
    let digest = query_digest(&("catalog.curio.dev", resource.plural, scope_name, &query));
    let after: Option<AssetCursor> = params
        .get("continue")
        .filter(|t| !t.is_empty())
        .map(|t| continuation::decode(t, &digest))
        .transpose()?;
    // The head is read before the rows: every write at or below it is in them.
    let (head, page) = match &scope {
        Some(scope) => {
            state
                .store
                .list_assets_at_head(scope, &query, AssetSort::Key, after.as_ref(), limit)
                .await?
        }
        None => (
            state.store.feed_head().await?,
            crate::store::Page {
                items: Vec::new(),
                next: None,
            },
        ),
    };
    let next = page.next.map(|c| continuation::encode(&digest, &c));
    let body = if table {
        let now = chrono::Utc::now();
        let rows = page
            .items
            .iter()
            .map(|a| objects::row(a, a.revision, include, now))
            .collect();
        objects::table(rows, head.revision, next, true)
    } else {
        objects::list(
            resource,
            page.items
                .iter()
                .map(|a| objects::object(a, a.revision))
                .collect(),
            head.revision,
            next,
        )
    };
    Ok(Json(body).into_response())
}

#[allow(clippy::too_many_arguments)]
async fn watch_response(
    state: ApiState,
    user: UserInfo,
    resource: Resource,
    namespace: Option<Namespace>,
    query: AssetQuery,
    params: &RawParams,
    table: bool,
    include: IncludeObject,
) -> Result<Response, ApiError> {
    let since = revision(
        params.get("resourceVersion").map(String::as_str),
        "resourceVersion",
    )?;
    let timeout = watch_timeout(params)?;
    let bookmarks = flag(params, "allowWatchBookmarks")?.then_some(state.watch.bookmark);
    let recheck = {
        let (state, user, namespace) = (state.clone(), user.clone(), namespace.clone());
        Box::new(move || {
            let (state, user, namespace) = (state.clone(), user.clone(), namespace.clone());
            Box::pin(async move {
                let ns = namespace.as_ref().map_or("", Namespace::as_str);
                check_in(
                    &state,
                    &user,
                    CATALOG_API_GROUP,
                    "watch",
                    resource.plural,
                    ns,
                    None,
                )
                .await
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        }) as watch::Recheck
    };
    let spec = watch::WatchSpec {
        namespaces: watch::Namespaces::of(namespace),
        kinds: vec![resource.kind],
        since,
        bookmarks,
        timeout,
        recheck_every: state.watch.recheck,
        recheck,
        stop: state.stop_streams.clone(),
    };
    let body = if table {
        watch::start(
            state.store.clone(),
            spec,
            encode::Filtered::new(query, encode::KubeTable::new(resource, include)),
        )
        .await?
    } else {
        watch::start(
            state.store.clone(),
            spec,
            encode::Filtered::new(query, encode::KubeJson::new(resource)),
        )
        .await?
    };
    Ok(watch::streaming(body, "application/json"))
}

/// `GET /apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}/{name}`.
async fn get_object(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resource = resource_of(&plural)?;
    params::reject_unknown(&params, &["pretty", "resourceVersion"])?;
    let ns = Namespace::new(ns).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    require(&state, &user, "get", resource, ns.as_str(), Some(&name)).await?;
    let not_found =
        || ApiError::NotFound(format!("{}.{GROUP} \"{name}\" not found", resource.plural));
    if !curio_core::catalog_api::names::is_subdomain(&name) {
        return Err(not_found());
    }
    let query = AssetQuery {
        kinds: Some(vec![resource.kind]),
        object_name: Some(name.clone()),
        ..AssetQuery::default()
    };
    let page = state
        .store
        .list_assets(&NamespaceScope::single(ns), &query, AssetSort::Key, None, 1)
        .await?;
    let asset = page.items.first().ok_or_else(not_found)?;
    let table = objects::wants_table(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = if table {
        let row = objects::row(
            asset,
            asset.revision,
            IncludeObject::Metadata,
            chrono::Utc::now(),
        );
        objects::table(vec![row], asset.revision, None, true)
    } else {
        objects::object(asset, asset.revision)
    };
    Ok(Json(body).into_response())
}

/// `GET /api/v1/namespaces/{ns}/assets?watch=true` (and the per-kind lists): the change feed
/// as server-sent events for `kinds` (already authorized), resumable with `Last-Event-ID` or
/// `resourceVersion`. The caller must keep the right to list every one of them.
pub async fn event_stream(
    state: ApiState,
    user: UserInfo,
    namespace: Namespace,
    kinds: Vec<curio_core::catalog::AssetKind>,
    query: AssetQuery,
    params: &RawParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(params.get("resourceVersion").map(String::as_str));
    let since = revision(resume, "Last-Event-ID (or resourceVersion)")?;
    let timeout = watch_timeout(params)?;
    let recheck = {
        let (state, user, namespace, kinds) = (
            state.clone(),
            user.clone(),
            namespace.clone(),
            kinds.clone(),
        );
        Box::new(move || {
            let (state, user, namespace, kinds) = (
                state.clone(),
                user.clone(),
                namespace.clone(),
                kinds.clone(),
            );
            Box::pin(async move {
                let allowed =
                    super::authorize::listable_kinds(&state, &user, namespace.as_str()).await?;
                Ok(kinds.iter().all(|k| allowed.contains(k)))
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        }) as watch::Recheck
    };
    let spec = watch::WatchSpec {
        namespaces: watch::Namespaces::Fixed(NamespaceScope::single(namespace)),
        kinds,
        since,
        bookmarks: Some(state.watch.bookmark),
        timeout,
        recheck_every: state.watch.recheck,
        recheck,
        stop: state.stop_streams.clone(),
    };
    let body = watch::start(
        state.store.clone(),
        spec,
        encode::Filtered::new(query, encode::Sse),
    )
    .await?;
    Ok(watch::streaming(body, "text/event-stream"))
}
