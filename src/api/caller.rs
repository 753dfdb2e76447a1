//! The `Caller` extractor: authenticates every API request before a handler runs.
//!
//! Identity comes from a bearer token (checked by the authenticator) or, only on connections
//! whose TLS client certificate a trusted proxy presented, from the proxy's identity headers
//! (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*` unless the cluster names others).
//! Identity or impersonation headers on any other request are ignored and counted.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{ApiState, error::ApiError};
use crate::access::identity::{UserInfo, VerifiedProxy};

/// Who is asking (the user's rate bucket already charged; namespaces are charged as they are
/// authorized, see [`super::charges`]).
pub struct Caller(pub UserInfo);

fn is_identity_header(name: &str) -> bool {
    name.starts_with("x-remote-") || name.starts_with("impersonate-")
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let user = authenticate(parts, state).await?;
        if let Err(limited) = state.rate_limits.check_user(&user.username) {
            state.metrics.rate_limited(limited.scope, None);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many requests for this user; retry after {} ms",
                    limited.retry_after.as_millis()
                ),
                retry_after: limited.retry_after,
            });
        }
        Ok(Caller(user))
    }
}

/// Who is asking: a verified proxy's user, a token's user, or anonymous.
async fn authenticate(parts: &Parts, state: &ApiState) -> Result<UserInfo, ApiError> {
    let metrics = &state.access_metrics;
    let proxy = parts.extensions.get::<VerifiedProxy>();
    if let Some(proxy) = proxy
        && let Some(user) = proxy
            .headers
            .username
            .iter()
            .find_map(|h| parts.headers.get(h.as_str()))
            .and_then(|v| v.to_str().ok())
            .filter(|u| !u.is_empty())
    {
        let values = |name: &str| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect::<Vec<_>>()
        };
        let groups = proxy.headers.group.iter().flat_map(|h| values(h)).collect();
        let mut user = UserInfo::authenticated(user.to_owned(), None, groups);
        for name in parts.headers.keys() {
            let name = name.as_str();
            if let Some(key) = proxy
                .headers
                .extra_prefixes
                .iter()
                .find_map(|p| name.strip_prefix(p.as_str()))
                .filter(|k| !k.is_empty())
            {
                // Extra keys travel percent-encoded (k8s.io/apiserver's requestheader).
                let key = percent_decode(key);
                user.extra.entry(key).or_default().extend(values(name));
            }
        }
        metrics.authn("success", "proxy");
        return Ok(user);
    }
    for name in parts.headers.keys() {
        let name = name.as_str();
        // Impersonation is never honoured; proxy headers only from a verified proxy.
        if is_identity_header(name) && !proxy.is_some_and(|p| p.headers.carries(name)) {
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

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("k={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
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
