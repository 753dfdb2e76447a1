//! The MCP Registry API, one registry per namespace: `/registry/namespaces/{ns}/v0.1/servers…`
//! (and `/v0/…`), answered from the namespace's `McpServer` assets. A base URL ending in
//! `/approved` serves only approved servers. Authorization is the same SubjectAccessReview on
//! `mcpservers` as every other read; errors have the registry's `{"error": "…"}` shape.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    ApiState,
    authorize::require,
    cache::cached,
    caller::Caller,
    continuation::{self, query_digest},
    error::ApiError,
    params::{Params, RawParams, reject_unknown},
};
use crate::{
    catalog::{AssetKind, Link, McpServerDetails},
    store::{AssetQuery, AssetSort, Namespace, NamespaceScope, entity::asset},
};
use curio_core::registry::{
    DEFAULT_LIMIT, Entry, MAX_LIMIT, Position, Query, Registry, VersionFilter,
};

/// The registry routes, to merge into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/registry/namespaces/{ns}/{api}/servers",
            get(list_route::<false>),
        )
        .route(
            "/registry/namespaces/{ns}/{api}/servers/{*rest}",
            get(server_route::<false>),
        )
        .route(
            "/registry/namespaces/{ns}/approved/{api}/servers",
            get(list_route::<true>),
        )
        .route(
            "/registry/namespaces/{ns}/approved/{api}/servers/{*rest}",
            get(server_route::<true>),
        )
}

/// An error as the registry API answers it, with the status (and `Retry-After`) Curio's own
/// routes would give.
struct RegistryError(ApiError);

impl From<ApiError> for RegistryError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.0.to_string() }));
        let status = self.0.status();
        let retry_after = self
            .0
            .into_response()
            .headers()
            .get(header::RETRY_AFTER)
            .cloned();
        let mut response = (status, body).into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

const LIST_PARAMS: &[&str] = &[
    "cursor",
    "limit",
    "search",
    "updated_since",
    "version",
    "include_deleted",
    "approved",
];

/// The list route; `APPROVED`: under the `/approved` base.
async fn list_route<const APPROVED: bool>(
    state: State<ApiState>,
    caller: Result<Caller, ApiError>,
    Path((ns, api)): Path<(String, String)>,
    params: Result<Params, ApiError>,
    headers: HeaderMap,
) -> Result<Response, RegistryError> {
    list(state, caller?, ns, api, APPROVED, params?, headers).await
}

/// The versions routes; `APPROVED`: under the `/approved` base.
async fn server_route<const APPROVED: bool>(
    state: State<ApiState>,
    caller: Result<Caller, ApiError>,
    Path((ns, api, rest)): Path<(String, String, String)>,
    params: Result<Params, ApiError>,
    headers: HeaderMap,
) -> Result<Response, RegistryError> {
    server(state, caller?, ns, api, rest, APPROVED, params?, headers).await
}

fn check_api(api: &str) -> Result<(), ApiError> {
    match api {
        "v0" | "v0.1" => Ok(()),
        other => Err(ApiError::NotFound(format!(
            "registry API version {other:?} is not served; use v0.1 (or v0)"
        ))),
    }
}

fn namespace(raw: &str) -> Result<Namespace, ApiError> {
    Namespace::new(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn flag(params: &RawParams, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

fn limit(params: &RawParams) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"
                ))
            }),
    }
}

fn updated_since(params: &RawParams) -> Result<Option<DateTime<Utc>>, ApiError> {
    params
        .get("updated_since")
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "updated_since must be an RFC 3339 time such as 2025-08-07T13:15:04Z: {e}"
                    ))
                })
        })
        .transpose()
}

#[allow(clippy::too_many_arguments)]
async fn list(
    State(state): State<ApiState>,
    Caller(user): Caller,
    ns: String,
    api: String,
    approved_base: bool,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, RegistryError> {
    check_api(&api)?;
    reject_unknown(&params, LIST_PARAMS)?;
    let ns = namespace(&ns)?;
    let query = Query {
        search: params.get("search").cloned().filter(|s| !s.is_empty()),
        updated_since: updated_since(&params)?,
        version: match params.get("version").map(String::as_str) {
            None | Some("") => VersionFilter::Any,
            Some("latest") => VersionFilter::Latest,
            Some(exact) => VersionFilter::Exact(exact.to_owned()),
        },
        approved_only: approved_base || flag(&params, "approved")?,
    };
    flag(&params, "include_deleted")?;
    let limit = limit(&params)?;
    require(&state, &user, "list", "mcpservers", ns.as_str(), None).await?;
    // The cursor is bound to the namespace and filters that issued it.
    let digest = query_digest(&("registry", ns.as_str(), &query));
    let after: Option<Position> = params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| continuation::decode(c, &digest))
        .transpose()
        .map_err(ApiError::from)?;
    let scope = NamespaceScope::single(ns.clone());
    let key_parts = ("registry-list", ns.as_str(), &query, &after, limit);
    let build = || async {
        let registry = Registry::new(entries(&state, &ns, query.approved_only).await?);
        let page = registry.list(&query, after.as_ref(), limit);
        let mut metadata = json!({ "count": page.servers.len() });
        if let Some(next) = &page.next {
            metadata["nextCursor"] = json!(continuation::encode(&digest, next));
        }
        let body = json!({ "servers": page.servers, "metadata": metadata });
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    };
    let answer = cached(&state, &scope, &key_parts, build).await?;
    Ok(answer.respond(&headers))
}

#[allow(clippy::too_many_arguments)]
async fn server(
    State(state): State<ApiState>,
    Caller(user): Caller,
    ns: String,
    api: String,
    rest: String,
    approved_base: bool,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, RegistryError> {
    check_api(&api)?;
    reject_unknown(&params, &["include_deleted", "approved"])?;
    let ns = namespace(&ns)?;
    let approved_only = approved_base || flag(&params, "approved")?;
    flag(&params, "include_deleted")?;
    let wanted = Wanted::parse(&rest).ok_or_else(|| {
        ApiError::NotFound(
            "the registry serves servers/{serverName}/versions and servers/{serverName}/versions/{version}"
                .into(),
        )
    })?;
    let name = match &wanted {
        Wanted::Versions(name) | Wanted::Version(name, _) => name,
    };
    require(&state, &user, "get", "mcpservers", ns.as_str(), Some(name)).await?;
    let scope = NamespaceScope::single(ns.clone());
    let key_parts = ("registry-server", ns.as_str(), &wanted, approved_only);
    let build = || async {
        let registry = Registry::new(entries(&state, &ns, approved_only).await?);
        let body = match &wanted {
            Wanted::Versions(name) => {
                let servers = registry
                    .versions(name, approved_only)
                    .ok_or_else(|| ApiError::NotFound("Server not found".into()))?;
                json!({ "servers": servers, "metadata": { "count": servers.len() } })
            }
            Wanted::Version(name, version) => registry
                .version(name, version, approved_only)
                .ok_or_else(|| ApiError::NotFound("Server version not found".into()))?,
        };
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    };
    let answer = cached(&state, &scope, &key_parts, build).await?;
    Ok(answer.respond(&headers))
}

/// What a path under `servers/` names. Server names hold one `/`, which clients send encoded
/// (`%2F`) or not; both arrive decoded here.
#[derive(Debug, PartialEq)]
enum Wanted {
    Versions(String),
    Version(String, String),
}

impl Wanted {
    fn parse(rest: &str) -> Option<Self> {
        if let Some(name) = rest.strip_suffix("/versions") {
            return (!name.is_empty()).then(|| Self::Versions(name.to_owned()));
        }
        let (name, version) = rest.rsplit_once("/versions/")?;
        (!name.is_empty() && !version.is_empty() && !version.contains('/'))
            .then(|| Self::Version(name.to_owned(), version.to_owned()))
    }
}

/// Every `McpServer` asset of the namespace (approved ones only, if asked), through the
/// RLS-scoped read path.
async fn entries(
    state: &ApiState,
    ns: &Namespace,
    approved_only: bool,
) -> Result<Vec<Entry>, ApiError> {
    const PAGE: u64 = 1_000;
    let scope = NamespaceScope::single(ns.clone());
    let query = AssetQuery {
        kinds: Some(vec![AssetKind::McpServer]),
        approved: approved_only.then_some(true),
        ..AssetQuery::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list_assets(&scope, &query, AssetSort::Key, after.as_ref(), PAGE)
            .await?;
        out.extend(page.items.into_iter().map(entry));
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn entry(row: asset::Model) -> Entry {
    Entry {
        namespace: row.namespace,
        source: row.source,
        name: row.name,
        version: row.version,
        display_name: row.display_name,
        description: row.description,
        stage: row.stage,
        approved: row.approved,
        tags: serde_json::from_value(row.tags).unwrap_or_default(),
        links: serde_json::from_value::<Vec<Link>>(row.links).unwrap_or_default(),
        mcp: row
            .mcp
            .and_then(|v| serde_json::from_value::<McpServerDetails>(v).ok()),
        metadata: row.metadata,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use super::Wanted;

    #[test]
    fn paths_name_a_server_and_maybe_a_version() {
        assert_eq!(
            Wanted::parse("io.github.acme/weather/versions"),
            Some(Wanted::Versions("io.github.acme/weather".into()))
        );
        assert_eq!(
            Wanted::parse("io.github.acme/weather/versions/1.0.0+build.5"),
            Some(Wanted::Version(
                "io.github.acme/weather".into(),
                "1.0.0+build.5".into()
            ))
        );
        assert_eq!(
            Wanted::parse("a/versions/versions/latest"),
            Some(Wanted::Version("a/versions".into(), "latest".into()))
        );
        assert_eq!(Wanted::parse("io.github.acme/weather"), None);
        assert_eq!(Wanted::parse("/versions"), None);
        assert_eq!(Wanted::parse("a/b/versions/"), None);
    }
}
