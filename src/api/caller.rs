//! The `Caller` extractor: authenticates every API request before a handler runs.
//!
//! Identity comes from a bearer token (checked by the authenticator) or, only on connections
//! whose TLS client certificate a trusted proxy presented, from `X-Remote-User`/`X-Remote-Group`.
//! Identity or impersonation headers on any other request are ignored and counted.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{ApiState, error::ApiError, flow::FlowPermits, ratelimit::named_namespaces};
use crate::access::identity::{UserInfo, VerifiedProxy};

/// Who is asking, and the request's places in its namespaces' lines (held until it is
/// answered).
pub struct Caller(pub UserInfo, pub FlowPermits);

/// At most this many namespaces of one request are counted against their buckets (a list
/// route allows 100).
const MAX_COUNTED_NAMESPACES: usize = 100;

const REMOTE_USER: &str = "x-remote-user";
const REMOTE_GROUP: &str = "x-remote-group";

fn is_identity_header(name: &str) -> bool {
    name.starts_with("x-remote-") || name.starts_with("impersonate-")
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let user = authenticate(parts, state).await?;
        let namespaces =
            named_namespaces(parts.uri.path(), parts.uri.query(), MAX_COUNTED_NAMESPACES);
        if let Err(limited) = state
            .rate_limits
            .check(&user.username, namespaces.iter().map(String::as_str))
        {
            // Only a namespace that exists becomes a label: the path is the client's.
            let namespace = limited.namespace.as_deref().filter(|ns| {
                state
                    .policies
                    .as_ref()
                    .is_some_and(|p| p.knows_namespace(ns))
            });
            state.metrics.rate_limited(limited.scope, namespace);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many requests for this {}; retry after {} ms",
                    limited.scope.as_str(),
                    limited.retry_after.as_millis()
                ),
                retry_after: limited.retry_after,
            });
        }
        let flows: Vec<String> = if namespaces.is_empty() {
            vec![format!("user/{}", user.username)]
        } else {
            namespaces
                .iter()
                .map(|ns| format!("namespace/{ns}"))
                .collect()
        };
        let permits = state.flows.enter(&flows).await.map_err(|crowded| {
            state
                .metrics
                .rate_limited(super::ratelimit::Scope::Concurrency, None);
            ApiError::TooManyRequests {
                message: format!(
                    "too many requests at once for {}; retry after 1 s",
                    crowded.flow
                ),
                retry_after: std::time::Duration::from_secs(1),
            }
        })?;
        Ok(Caller(user, permits))
    }
}

/// Who is asking: a verified proxy's user, a token's user, or anonymous.
async fn authenticate(parts: &Parts, state: &ApiState) -> Result<UserInfo, ApiError> {
    let metrics = &state.access_metrics;
    let from_proxy = parts.extensions.get::<VerifiedProxy>().is_some();
    if let Some(user) = parts
        .headers
        .get(REMOTE_USER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| from_proxy)
    {
        {
            let groups = parts
                .headers
                .get_all(REMOTE_GROUP)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
            metrics.authn("success", "proxy");
            return Ok(UserInfo::authenticated(user.to_owned(), None, groups));
        }
    }
    for name in parts.headers.keys() {
        let name = name.as_str();
        // Impersonation is never honoured; proxy headers only from a verified proxy.
        if is_identity_header(name) && !(from_proxy && name.starts_with("x-remote-")) {
            metrics.identity_header_ignored(name);
        }
    }
    let Some(authorization) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        metrics.authn("anonymous", "no_credentials");
        return Ok(UserInfo::anonymous());
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(bearer_token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            metrics.authn("failure", "malformed_header");
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    match state.authn.authenticate(token).await {
        Ok(Some(user)) => {
            metrics.authn("success", "token");
            Ok(user)
        }
        Ok(None) => {
            metrics.authn("failure", "invalid_token");
            Err(ApiError::Unauthorized(
                "the bearer token is not valid".into(),
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "authentication backend failed");
            metrics.authn("error", "backend");
            Err(ApiError::Unavailable(
                "authentication is unavailable; try again".into(),
            ))
        }
    }
}

/// The token of a `Bearer` Authorization value; the scheme is case-insensitive (RFC 9110 §11.1),
/// as kube-apiserver reads it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
