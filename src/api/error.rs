//! API errors, answered as Kubernetes `Status` objects.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{continuation::ContinueError, selector::SelectorError};
use crate::store::{ScopeError, StoreError};

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A watch from a revision the change feed no longer holds: relist.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unavailable(String),
    /// Over a rate limit; answered with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::Gone(_) => "Expired",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
        }
    }
}

impl ApiError {
    /// The Kubernetes `Status` this error is.
    pub fn status_object(&self) -> serde_json::Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.status().as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status();
        let body = self.status_object();
        let mut response = (code, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            // Whole seconds, at least one (RFC 9110 §10.2.3).
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.max(1).to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The details stay in the log: SQL errors can describe data the caller may not see.
        tracing::error!(error = %e, "store error");
        ApiError::Unavailable("the catalog store is unavailable; try again".into())
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<SelectorError> for ApiError {
    fn from(e: SelectorError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<ContinueError> for ApiError {
    fn from(e: ContinueError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}
