//! Authorization questions the handlers ask, answered fail-closed.

use futures::future::join_all;

use super::{ApiState, error::ApiError};
use crate::{
    access::{
        authz::{API_GROUP, Attributes, Decision},
        identity::UserInfo,
    },
    catalog::AssetKind,
};

pub fn forbidden(
    user: &UserInfo,
    group: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> ApiError {
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    ApiError::Forbidden(format!(
        "{} \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}",
        if user.is_anonymous() {
            "anonymous user"
        } else {
            "user"
        },
        user.username
    ))
}

/// Allow, deny (403) or no decision (503): never a default allow.
pub async fn require(
    state: &ApiState,
    user: &UserInfo,
    verb: &'static str,
    resource: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if check(state, user, verb, resource, namespace, name).await? {
        Ok(())
    } else {
        Err(forbidden(user, API_GROUP, verb, resource, namespace))
    }
}

/// Whether `user` may: false on a denial, an error (503) when there is no decision. An
/// allowed namespace is charged to the request (429 when its bucket or line is full).
pub async fn check(
    state: &ApiState,
    user: &UserInfo,
    verb: &'static str,
    resource: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<bool, ApiError> {
    check_in(state, user, API_GROUP, verb, resource, namespace, name).await
}

/// [`check`] in any API group Curio serves.
pub async fn check_in(
    state: &ApiState,
    user: &UserInfo,
    group: &'static str,
    verb: &'static str,
    resource: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<bool, ApiError> {
    let attributes = Attributes {
        user: user.clone(),
        group,
        verb,
        resource: resource.to_owned(),
        namespace: namespace.to_owned(),
        name: name.map(str::to_owned),
    };
    let allowed = decide(state, &attributes).await?;
    if allowed {
        super::charges::charge(state, namespace).await?;
    }
    Ok(allowed)
}

/// The authorizer's answer, counted: false on a denial, 503 without a decision. Charges
/// nothing (see [`check_in`]).
async fn decide(state: &ApiState, attributes: &Attributes) -> Result<bool, ApiError> {
    let verb = attributes.verb;
    match state.authz.authorize(attributes).await {
        Ok(Decision::Allow) => {
            state.access_metrics.authz("allowed", verb);
            Ok(true)
        }
        Ok(Decision::Deny { .. }) => {
            state.access_metrics.authz("denied", verb);
            Ok(false)
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                user = %attributes.user.username,
                namespace = %attributes.namespace,
                resource = %attributes.resource,
                "authorization failed"
            );
            state.access_metrics.authz("error", verb);
            Err(ApiError::Unavailable(
                "authorization is unavailable; try again".into(),
            ))
        }
    }
}

/// The asset kinds `user` may list in `namespace`, checked concurrently. Any check without a
/// decision fails the whole request.
pub async fn listable_kinds(
    state: &ApiState,
    user: &UserInfo,
    namespace: &str,
) -> Result<Vec<AssetKind>, ApiError> {
    let checks = AssetKind::ALL.map(|kind| async move {
        (
            kind,
            check(state, user, "list", kind.plural(), namespace, None).await,
        )
    });
    let mut kinds = Vec::new();
    for (kind, allowed) in join_all(checks).await {
        if allowed? {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// Like [`listable_kinds`], but a namespace with no listable kind is a 403.
pub async fn require_some_kind(
    state: &ApiState,
    user: &UserInfo,
    namespace: &str,
) -> Result<Vec<AssetKind>, ApiError> {
    let kinds = listable_kinds(state, user, namespace).await?;
    if kinds.is_empty() {
        return Err(ApiError::Forbidden(format!(
            "{} \"{}\" cannot list any asset kind (models, mcpservers, agents) in API group \"curio.dev\" in the namespace \"{namespace}\"",
            if user.is_anonymous() {
                "anonymous user"
            } else {
                "user"
            },
            user.username
        )));
    }
    Ok(kinds)
}

/// Every namespace holding catalog data in which `user` may list at least one asset kind, with
/// those kinds. The checks run concurrently (each cached and coalesced by the authorizer);
/// one without a decision fails the request.
pub async fn readable_namespaces(
    state: &ApiState,
    user: &UserInfo,
) -> Result<std::collections::BTreeMap<String, Vec<AssetKind>>, ApiError> {
    let namespaces = state.store.catalog_namespaces().await?;
    let checks = namespaces
        .iter()
        .map(|ns| async move { (ns, listable_kinds_uncharged(state, user, ns).await) });
    let mut readable = std::collections::BTreeMap::new();
    for (ns, kinds) in join_all(checks).await {
        let kinds = kinds?;
        if !kinds.is_empty() {
            readable.insert(ns.clone(), kinds);
        }
    }
    // Charged once the set is known, as a request naming them would be.
    for ns in readable.keys() {
        super::charges::charge(state, ns).await?;
    }
    Ok(readable)
}

/// [`listable_kinds`] without charging: finding which namespaces are readable is not yet
/// reading them.
async fn listable_kinds_uncharged(
    state: &ApiState,
    user: &UserInfo,
    namespace: &str,
) -> Result<Vec<AssetKind>, ApiError> {
    let checks = AssetKind::ALL.map(|kind| async move {
        let attributes = Attributes {
            user: user.clone(),
            group: API_GROUP,
            verb: "list",
            resource: kind.plural().to_owned(),
            namespace: namespace.to_owned(),
            name: None,
        };
        (kind, decide(state, &attributes).await)
    });
    let mut kinds = Vec::new();
    for (kind, allowed) in join_all(checks).await {
        if allowed? {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}
