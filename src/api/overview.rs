//! What a caller can see and do: the namespaces it may read (with counts), its permissions in
//! one namespace, and facet counts over an asset list. The UI is built on these; dashboards
//! use them alike.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use futures::future::join_all;
use serde::Serialize;

use super::{
    ApiState,
    authorize::{check, readable_namespaces, require_some_kind},
    cache::cached,
    caller::Caller,
    error::ApiError,
    params::{self, Params, RawParams},
    respond::{cacheable, no_store},
};
use crate::{
    catalog::AssetKind,
    store::{Facet, Namespace, NamespaceScope},
};

const API_VERSION: &str = "curio.dev/v1alpha1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceItem {
    name: String,
    /// The asset kinds the caller may list there.
    kinds: Vec<&'static str>,
    /// Assets per listable kind.
    counts: BTreeMap<&'static str, i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceList {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<NamespaceItem>,
}

/// `GET /api/v1/namespaces`: the namespaces holding catalog data in which the caller may list
/// at least one asset kind, each with those kinds and their counts. A namespace the caller
/// cannot read is not named.
pub async fn list_namespaces(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &[])?;
    let readable = readable_namespaces(&state, &user).await?;
    let Some(scope) = scope_of(&readable)? else {
        return Ok(cacheable(&headers, &namespace_list(Vec::new())));
    };
    let build = || async {
        let counts = state.store.asset_counts(&scope).await?;
        let items = readable
            .iter()
            .map(|(ns, kinds)| NamespaceItem {
                name: ns.clone(),
                kinds: kinds.iter().map(|k| k.as_str()).collect(),
                counts: kinds
                    .iter()
                    .map(|k| {
                        let count = counts
                            .iter()
                            .find(|c| c.namespace == *ns && c.kind == k.as_str())
                            .map_or(0, |c| c.count);
                        (k.as_str(), count)
                    })
                    .collect(),
            })
            .collect();
        Ok(serde_json::to_vec(&namespace_list(items)).unwrap_or_default())
    };
    let answer = cached(&state, &scope, &("namespaces", &readable), build).await?;
    Ok(answer.respond(&headers))
}

fn namespace_list(items: Vec<NamespaceItem>) -> NamespaceList {
    NamespaceList {
        api_version: API_VERSION,
        kind: "NamespaceList",
        items,
    }
}

/// The namespaces of `readable` as a scope; `None` when there are none.
pub fn scope_of(
    readable: &BTreeMap<String, Vec<AssetKind>>,
) -> Result<Option<NamespaceScope>, ApiError> {
    if readable.is_empty() {
        return Ok(None);
    }
    let namespaces = readable
        .keys()
        .map(|n| Namespace::new(n.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(NamespaceScope::new(namespaces)?))
}

/// The verbs `/access` asks about, per resource of the `curio.dev` group.
const ACCESS_QUESTIONS: &[(&str, &[&str])] = &[
    ("models", &["get", "list", "watch"]),
    ("mcpservers", &["get", "list", "watch"]),
    ("agents", &["get", "list", "watch"]),
    (
        "catalogsources",
        &[
            "get", "list", "watch", "create", "update", "approve", "promote",
        ],
    ),
    ("refreshjobs", &["get", "list", "watch", "create"]),
    ("auditevents", &["list"]),
];

#[derive(Serialize)]
struct ResourceAccess {
    resource: &'static str,
    verbs: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceAccess {
    api_version: &'static str,
    kind: &'static str,
    namespace: String,
    user: String,
    /// Each resource with the verbs the caller may use on it (resources with none omitted).
    resources: Vec<ResourceAccess>,
}

/// `GET /api/v1/namespaces/{ns}/access`: what the caller may do there, like
/// `kubectl auth can-i --list`: it says only what the caller's own permissions are, so it
/// answers in any namespace (and reveals nothing about the namespace itself).
pub async fn namespace_access(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    Params(params): Params,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, &[])?;
    let ns = Namespace::new(ns).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let checks = ACCESS_QUESTIONS.iter().flat_map(|(resource, verbs)| {
        let (state, user, ns) = (&state, &user, ns.as_str());
        verbs.iter().map(move |verb| async move {
            (
                *resource,
                *verb,
                check(state, user, verb, resource, ns, None).await,
            )
        })
    });
    let mut resources: Vec<ResourceAccess> = Vec::new();
    for (resource, verb, allowed) in join_all(checks).await {
        if !allowed? {
            continue;
        }
        match resources.iter_mut().find(|r| r.resource == resource) {
            Some(entry) => entry.verbs.push(verb),
            None => resources.push(ResourceAccess {
                resource,
                verbs: vec![verb],
            }),
        }
    }
    let body = NamespaceAccess {
        api_version: API_VERSION,
        kind: "NamespaceAccess",
        namespace: ns.to_string(),
        user: user.username.clone(),
        resources,
    };
    // Per caller and short-lived: permissions change with RBAC, which this does not watch.
    Ok(no_store(serde_json::to_value(&body).unwrap_or_default()))
}

/// Parameters of the facets routes: the list filters, plus the fields and how many values.
const FACET_PARAMS: &[&str] = &[
    "field",
    "top",
    "labelSelector",
    "kind",
    "source",
    "provider",
    "license",
    "tag",
    "stage",
    "approved",
    "q",
    "version",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FacetList<'a> {
    api_version: &'static str,
    kind: &'static str,
    facets: &'a [Facet],
}

/// `GET /api/v1/namespaces/{ns}/assets/facets`: counts per value of each `field` among the
/// assets matching the list filters (each field counted without its own filter), over the
/// kinds the caller may list there (`kind=` narrows to one).
pub async fn namespace_facets(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::reject_unknown(&params, FACET_PARAMS)?;
    let ns = Namespace::new(ns).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let kinds = require_some_kind(&state, &user, ns.as_str()).await?;
    // The kind facet counts every listable kind (its own filter aside), so `kind=` narrows the
    // query, not the scope.
    if let Some(kind) = params::kind(&params)?
        && !kinds.contains(&kind)
    {
        return Err(super::authorize::forbidden(
            &user,
            crate::access::authz::API_GROUP,
            "list",
            kind.plural(),
            ns.as_str(),
        ));
    }
    facets(
        &state,
        BTreeMap::from([(ns.to_string(), kinds)]),
        &params,
        &headers,
    )
    .await
}

/// `GET /api/v1/assets/facets`: facets across namespaces (`namespaces=`, or every readable
/// one), as `/api/v1/assets` lists them.
pub async fn cross_namespace_facets(
    State(state): State<ApiState>,
    Caller(user): Caller,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut allowed = FACET_PARAMS.to_vec();
    allowed.push("namespaces");
    params::reject_unknown(&params, &allowed)?;
    let kinds_by_namespace = super::handlers::cross_namespace_kinds(&state, &user, &params).await?;
    facets(&state, kinds_by_namespace, &params, &headers).await
}

async fn facets(
    state: &ApiState,
    kinds_by_namespace: BTreeMap<String, Vec<AssetKind>>,
    params: &RawParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let fields = params::facet_fields(params)?;
    let top = params::facet_top(params)?;
    let mut query = params::asset_query(params)?;
    if let Some(kind) = params::kind(params)? {
        query.kinds = Some(vec![kind]);
    }
    let Some(scope) = scope_of(&kinds_by_namespace)? else {
        return Ok(cacheable(headers, &facet_list(&[])));
    };
    query.kinds_by_namespace = Some(kinds_by_namespace);
    let key_parts = ("facets", &query, &fields, top);
    let build = || async {
        let facets = state
            .store
            .asset_facets(&scope, &query, &fields, top)
            .await?;
        Ok(serde_json::to_vec(&facet_list(&facets)).unwrap_or_default())
    };
    let answer = cached(state, &scope, &key_parts, build).await?;
    Ok(answer.respond(headers))
}

fn facet_list(facets: &[Facet]) -> FacetList<'_> {
    FacetList {
        api_version: API_VERSION,
        kind: "FacetList",
        facets,
    }
}
