//! Route handlers: authorize, query the store through the caller's scope, shape the answer.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    ApiState,
    authorize::{check, readable_namespaces, require, require_some_kind},
    cache::cached,
    caller::Caller,
    continuation::{self, query_digest},
    error::ApiError,
    params::{self, Params, RawParams},
    respond::{cacheable, no_store},
};
use crate::{
    catalog::AssetKind,
    store::{
        AssetCursor, AssetQuery, AssetSort, NameCursor, Namespace, NamespaceScope, ObjectTable,
        StoredObject, entity::audit_event,
    },
};

const API_VERSION: &str = "curio.dev/v1alpha1";
/// At most this many namespaces in one cross-namespace request.
const MAX_NAMESPACES: usize = 100;

fn namespace(raw: &str) -> Result<Namespace, ApiError> {
    Namespace::new(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<String>,
    /// The change feed's revision read before the rows: a watch from it misses nothing.
    #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    resource_version: Option<String>,
}

/// A Kubernetes-style list, serialized without an intermediate JSON tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListView<'a, T> {
    api_version: &'static str,
    kind: &'a str,
    metadata: ListMeta,
    items: Vec<T>,
}

fn object_json(kind: &str, o: &StoredObject) -> Value {
    let mut object = json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": o.name,
            "namespace": o.namespace,
            "creationTimestamp": o.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "spec": o.spec,
    });
    if let Some(uid) = &o.uid {
        object["metadata"]["uid"] = json!(uid);
    }
    if o.generation > 0 {
        object["metadata"]["generation"] = json!(o.generation);
    }
    if let Some(status) = &o.status {
        object["status"] = status.clone();
    }
    object
}

fn list_json(kind: &str, items: Vec<Value>, continue_token: Option<String>) -> Value {
    let mut metadata = serde_json::Map::new();
    if let Some(token) = continue_token {
        metadata.insert("continue".into(), json!(token));
    }
    json!({ "apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "items": items })
}

const ASSET_LIST_PARAMS: &[&str] = &[
    "limit",
    "continue",
    "labelSelector",
    "kind",
    "source",
    "provider",
    "license",
    "tag",
    "stage",
    "approved",
    "q",
    "sort",
    "version",
    // A change stream instead of a page (server-sent events): `watch=true`, resumed from
    // `resourceVersion` or the `Last-Event-ID` header.
    "watch",
    "resourceVersion",
    "timeoutSeconds",
];

/// `watch=true`: the request asks for the change stream.
fn watching(params: &RawParams) -> Result<bool, ApiError> {
    match params.get("watch").map(String::as_str) {
        None | Some("false") => {
            if let Some(key) = ["resourceVersion", "timeoutSeconds"]
                .into_iter()
                .find(|k| params.contains_key(*k))
            {
                return Err(ApiError::BadRequest(format!(
                    "{key} is for watches (watch=true)"
                )));
            }
            Ok(false)
        }
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "watch must be true or false, got {other:?}"
        ))),
    }
}

/// Runs an asset list for `kinds_by_namespace` (already authorized), with paging, and answers it.
async fn asset_page(
    state: &ApiState,
    route: &str,
    kinds_by_namespace: BTreeMap<String, Vec<AssetKind>>,
    requested_kind: Option<AssetKind>,
    params: &RawParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let limit = params::limit(params)?;
    let sort = params::sort(params)?;
    let mut query: AssetQuery = params::asset_query(params)?;
    // The token is bound to what was asked, not to what RBAC allowed at the time.
    let digest = query_digest(&(
        route,
        kinds_by_namespace.keys().collect::<Vec<_>>(),
        requested_kind,
        &query,
        sort,
    ));
    let after: Option<AssetCursor> = params
        .get("continue")
        .map(|t| continuation::decode(t, &digest))
        .transpose()?;
    let scope = NamespaceScope::new(
        kinds_by_namespace
            .keys()
            .map(|n| Namespace::new(n.clone()))
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    // The allowed namespaces and kinds are part of the query, and so of the cache key.
    query.kinds_by_namespace = Some(kinds_by_namespace);
    let key_parts = (route, requested_kind, &query, sort, &after, limit);
    let build = || async {
        // The head is read before the rows: every write at or below it is in them.
        let (head, page) = state
            .store
            .list_assets_at_head(&scope, &query, sort, after.as_ref(), limit)
            .await?;
        let body = ListView {
            api_version: API_VERSION,
            kind: "AssetList",
            metadata: ListMeta {
                continue_token: page.next.map(|c| continuation::encode(&digest, &c)),
                resource_version: Some(head.revision.to_string()),
            },
            items: page.items.iter().collect(),
        };
        // Plain data with string keys: serialization cannot fail.
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    };
    let answer = cached(state, &scope, &key_parts, build).await?;
    Ok(answer.respond(headers))
}

/// `GET /api/v1/namespaces/{ns}/assets`: every kind the caller may list there.
pub async fn list_namespace_assets(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, ASSET_LIST_PARAMS)?;
    let ns = namespace(&ns)?;
    let requested = params::kind(&params)?;
    let mut kinds = require_some_kind(&state, &user, ns.as_str()).await?;
    if let Some(kind) = requested {
        if !kinds.contains(&kind) {
            return Err(ApiError::Forbidden(format!(
                "user \"{}\" cannot list resource \"{}\" in API group \"curio.dev\" in the namespace \"{ns}\"",
                user.username,
                kind.plural()
            )));
        }
        kinds = vec![kind];
    }
    if watching(&params)? {
        return super::kube::event_stream(
            state,
            user,
            ns,
            kinds,
            params::asset_query(&params)?,
            &params,
            &headers,
        )
        .await;
    }
    asset_page(
        &state,
        "assets",
        BTreeMap::from([(ns.to_string(), kinds)]),
        requested,
        &params,
        &headers,
    )
    .await
}

fn kind_of(plural: &str) -> Result<AssetKind, ApiError> {
    AssetKind::from_plural(plural).ok_or_else(|| {
        ApiError::NotFound(format!("the server could not find the resource {plural:?}"))
    })
}

/// `GET /api/v1/namespaces/{ns}/{models|mcpservers|agents}`.
pub async fn list_kind(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path((ns, plural)): Path<(String, String)>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = kind_of(&plural)?;
    params::reject_unknown(
        &params,
        &ASSET_LIST_PARAMS
            .iter()
            .copied()
            .filter(|p| *p != "kind")
            .collect::<Vec<_>>(),
    )?;
    let ns = namespace(&ns)?;
    require(&state, &user, "list", kind.plural(), ns.as_str(), None).await?;
    if watching(&params)? {
        return super::kube::event_stream(
            state,
            user,
            ns,
            vec![kind],
            params::asset_query(&params)?,
            &params,
            &headers,
        )
        .await;
    }
    asset_page(
        &state,
        kind.plural(),
        BTreeMap::from([(ns.to_string(), vec![kind])]),
        Some(kind),
        &params,
        &headers,
    )
    .await
}

/// `GET /api/v1/namespaces/{ns}/{models|mcpservers|agents}/{name}`: the asset of that name;
/// `version` and `source` narrow it, and without them the most recently updated one answers.
pub async fn get_asset(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = kind_of(&plural)?;
    params::reject_unknown(&params, &["version", "source"])?;
    let ns = namespace(&ns)?;
    if name.is_empty() || name.len() > 253 {
        return Err(ApiError::NotFound(format!("{plural} {name:?} not found")));
    }
    require(
        &state,
        &user,
        "get",
        kind.plural(),
        ns.as_str(),
        Some(&name),
    )
    .await?;
    let mut query = params::asset_query(&params)?;
    query.kinds = Some(vec![kind]);
    query.name = Some(name.clone());
    let scope = NamespaceScope::single(ns.clone());
    let key_parts = ("get", ns.as_str(), &query);
    let build = || async {
        let page = state
            .store
            .list_assets(&scope, &query, AssetSort::UpdatedDesc, None, 1)
            .await?;
        let asset = page.items.first().ok_or_else(|| {
            // Say what was looked for: a name, and the version or source asked for.
            let mut wanted = format!("{plural} \"{name}\"");
            if let Some(version) = &query.version {
                wanted.push_str(&format!(" version \"{version}\""));
            }
            if !query.sources.is_empty() {
                wanted.push_str(&format!(" from source {}", query.sources.join(" or ")));
            }
            ApiError::NotFound(format!("{wanted} not found in namespace \"{ns}\""))
        })?;
        Ok(serde_json::to_vec(asset).unwrap_or_default())
    };
    let answer = cached(&state, &scope, &key_parts, build).await?;
    Ok(answer.respond(&headers))
}

/// The `namespaces` parameter: a non-empty, bounded, comma-separated list, duplicates dropped.
fn namespaces_param(params: &RawParams) -> Result<Vec<Namespace>, ApiError> {
    let raw = params
        .get("namespaces")
        .filter(|v| !v.trim_matches(' ').is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "namespaces is required: a comma-separated list of namespaces".into(),
            )
        })?;
    let mut namespaces = Vec::new();
    for part in raw.split(',') {
        // The one namespace parser; only the ASCII spaces a list may have around its commas go.
        let ns = namespace(part.trim_matches(' '))?;
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    if namespaces.len() > MAX_NAMESPACES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_NAMESPACES} namespaces per request"
        )));
    }
    Ok(namespaces)
}

/// The namespaces a cross-namespace request reads, each with the kinds the caller may list
/// there (narrowed to `kind=`): those `namespaces=` names, where one without a listable kind
/// is a 403 for the whole request, or without it every namespace the caller may read.
pub async fn cross_namespace_kinds(
    state: &ApiState,
    user: &crate::access::identity::UserInfo,
    params: &RawParams,
) -> Result<BTreeMap<String, Vec<AssetKind>>, ApiError> {
    let requested = params::kind(params)?;
    let mut kinds_by_namespace = BTreeMap::new();
    if params.contains_key("namespaces") {
        for ns in &namespaces_param(params)? {
            kinds_by_namespace.insert(
                ns.to_string(),
                require_some_kind(state, user, ns.as_str()).await?,
            );
        }
    } else {
        kinds_by_namespace = readable_namespaces(state, user).await?;
    }
    if let Some(kind) = requested {
        for kinds in kinds_by_namespace.values_mut() {
            kinds.retain(|k| *k == kind);
        }
        kinds_by_namespace.retain(|_, kinds| !kinds.is_empty());
    }
    Ok(kinds_by_namespace)
}

/// `GET /api/v1/assets`: across namespaces (`namespaces=a,b`, or every namespace the caller
/// may read), each narrowed to the kinds the caller may list there.
pub async fn list_cross_namespace(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut allowed = ASSET_LIST_PARAMS.to_vec();
    allowed.push("namespaces");
    params::reject_unknown(&params, &allowed)?;
    if watching(&params)? {
        return Err(ApiError::BadRequest(
            "watch one namespace's list: /api/v1/namespaces/{ns}/assets?watch=true".into(),
        ));
    }
    let kinds_by_namespace = cross_namespace_kinds(&state, &user, &params).await?;
    let requested = params::kind(&params)?;
    if kinds_by_namespace.is_empty() {
        // Nothing readable: an empty list, the same whether or not any namespace exists.
        params::limit(&params)?;
        let body = ListView::<()> {
            api_version: API_VERSION,
            kind: "AssetList",
            metadata: ListMeta {
                continue_token: None,
                resource_version: None,
            },
            items: Vec::new(),
        };
        return Ok(super::respond::cacheable(&headers, &body));
    }
    asset_page(
        &state,
        "cross",
        kinds_by_namespace,
        requested,
        &params,
        &headers,
    )
    .await
}

/// The custom resources the API serves copies of, as handler type parameters:
/// `get(list_objects::<CatalogSources>)`.
pub trait ObjectKind: Send + 'static {
    /// The RBAC resource, and the URL segment.
    const RESOURCE: &'static str;
    /// The object's `kind`.
    const KIND: &'static str;
    const TABLE: ObjectTable;
}

pub struct CatalogSources;

impl ObjectKind for CatalogSources {
    const RESOURCE: &'static str = "catalogsources";
    const KIND: &'static str = "CatalogSource";
    const TABLE: ObjectTable = ObjectTable::CatalogSources;
}

pub struct RefreshJobs;

impl ObjectKind for RefreshJobs {
    const RESOURCE: &'static str = "refreshjobs";
    const KIND: &'static str = "RefreshJob";
    const TABLE: ObjectTable = ObjectTable::RefreshJobs;
}

pub async fn list_objects<K: ObjectKind>(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &["limit", "continue"])?;
    let ns = namespace(&ns)?;
    require(&state, &user, "list", K::RESOURCE, ns.as_str(), None).await?;
    let limit = params::limit(&params)?;
    let digest = query_digest(&(K::RESOURCE, ns.as_str()));
    let after: Option<NameCursor> = params
        .get("continue")
        .map(|t| continuation::decode(t, &digest))
        .transpose()?;
    let scope = NamespaceScope::single(ns);
    let page = state
        .store
        .list_objects(K::TABLE, &scope, after.as_ref(), limit)
        .await?;
    let body = list_json(
        &format!("{}List", K::KIND),
        page.items.iter().map(|o| object_json(K::KIND, o)).collect(),
        page.next.map(|c| continuation::encode(&digest, &c)),
    );
    Ok(cacheable(&headers, &body))
}

pub async fn get_object<K: ObjectKind>(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &[])?;
    let ns = namespace(&ns)?;
    require(&state, &user, "get", K::RESOURCE, ns.as_str(), Some(&name)).await?;
    let object = state
        .store
        .get_object(K::TABLE, &ns, &name)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "{} \"{name}\" not found in namespace \"{ns}\"",
                K::RESOURCE
            ))
        })?;
    Ok(cacheable(&headers, &object_json(K::KIND, &object)))
}

fn audit_json(e: &audit_event::Model) -> Value {
    json!({
        "id": e.id,
        "namespace": e.namespace,
        "time": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "actor": e.actor,
        "actorGroups": e.actor_groups,
        "verb": e.verb,
        "resource": e.resource,
        "name": e.object_name,
        "uid": e.object_uid,
        "beforeDigest": e.before_digest,
        "afterDigest": e.after_digest,
        "reason": e.reason,
        "requestId": e.request_id,
        "client": e.client,
        "details": e.details,
    })
}

/// `GET /api/v1/namespaces/{ns}/auditevents`, oldest first.
pub async fn list_audit_events(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    Params(params): Params,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &params::AUDIT_LIST_PARAMS)?;
    let ns = namespace(&ns)?;
    require(&state, &user, "list", "auditevents", ns.as_str(), None).await?;
    audit_page(&state, vec![ns], &params).await
}

/// `GET /api/v1/auditevents?namespaces=a,b`: the trails of several namespaces, each of which
/// the caller must be allowed to list; one that is not makes the whole request a 403.
pub async fn list_cross_namespace_audit_events(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let mut allowed = params::AUDIT_LIST_PARAMS.to_vec();
    allowed.push("namespaces");
    params::reject_unknown(&params, &allowed)?;
    let namespaces = namespaces_param(&params)?;
    for ns in &namespaces {
        require(&state, &user, "list", "auditevents", ns.as_str(), None).await?;
    }
    audit_page(&state, namespaces, &params).await
}

/// One page of audit events in `namespaces` (already authorized).
async fn audit_page(
    state: &ApiState,
    namespaces: Vec<Namespace>,
    params: &RawParams,
) -> Result<Response, ApiError> {
    let limit = params::limit(params)?;
    let query = params::audit_query(params)?;
    let names: Vec<&str> = namespaces.iter().map(Namespace::as_str).collect();
    // The token is bound to the namespaces and filters that issued it.
    let digest = query_digest(&("auditevents", &names, &query));
    let after: Option<i64> = params
        .get("continue")
        .map(|t| continuation::decode(t, &digest))
        .transpose()?;
    let scope = NamespaceScope::new(namespaces).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut rows = state
        .store
        .list_audit_events(&scope, &query, after, limit.saturating_add(1))
        .await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| continuation::encode(&digest, &r.id))
    } else {
        None
    };
    let body = list_json(
        "AuditEventList",
        rows.iter().map(audit_json).collect(),
        next,
    );
    Ok(no_store(body))
}

/// `GET /api/v1/discovery?namespace=ns`: the asset kinds ("plugins") the caller may list there.
pub async fn discovery(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &["namespace"])?;
    let ns = namespace(
        params
            .get("namespace")
            .ok_or_else(|| ApiError::BadRequest("namespace is required".into()))?,
    )?;
    let kinds = require_some_kind(&state, &user, ns.as_str()).await?;
    // Problems name the namespace's objects: shown to those who may read its sources.
    let problems = if check(&state, &user, "list", "catalogsources", ns.as_str(), None).await? {
        state.notices.in_namespace(ns.as_str())
    } else {
        Vec::new()
    };
    let plugins: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            json!({
                "kind": kind.as_str(),
                "resource": kind.plural(),
                "path": format!("/api/v1/namespaces/{ns}/{}", kind.plural()),
                "filters": ["labelSelector", "source", "provider", "license", "tag", "stage", "approved", "q", "version"],
                "sortKeys": ["namespace", "name", "-name", "updated", "-updated"],
            })
        })
        .collect();
    let mut body = json!({
        "apiVersion": API_VERSION,
        "kind": "Discovery",
        "namespace": ns.as_str(),
        "plugins": plugins,
    });
    if !problems.is_empty() {
        body["problems"] = json!(problems);
    }
    Ok(cacheable(&headers, &body))
}
