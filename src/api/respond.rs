//! JSON answers with validators: an `ETag` on every cacheable answer, `304` on a match.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// A `200` with a strong ETag over the body, or `304` when `If-None-Match` already has it.
/// `private`: answers depend on who asks and must not be shared by caches.
pub fn cacheable<T: serde::Serialize>(request: &HeaderMap, body: &T) -> Response {
    // Plain data with string keys: serialization cannot fail.
    cacheable_bytes(request, serde_json::to_vec(body).unwrap_or_default())
}

/// [`cacheable`] for an answer already serialized (as the response cache keeps them).
pub fn cacheable_bytes(request: &HeaderMap, bytes: impl Into<axum::body::Bytes>) -> Response {
    let bytes: axum::body::Bytes = bytes.into();
    let etag = etag_of(&bytes);
    answer(request, bytes, etag)
}

fn etag_of(bytes: &[u8]) -> HeaderValue {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]));
    HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))
}

fn answer(request: &HeaderMap, bytes: axum::body::Bytes, etag: HeaderValue) -> Response {
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim().as_bytes() == etag.as_bytes() || candidate.trim() == "*");
    let cache_control = HeaderValue::from_static("private, no-cache");
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    (
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// An answer that never changes while the process runs (discovery, OpenAPI): serialized and
/// its ETag computed once, served as [`cacheable`] would serve it.
#[derive(Clone, Debug)]
pub struct Fixed {
    bytes: axum::body::Bytes,
    etag: HeaderValue,
}

impl Fixed {
    pub fn new<T: serde::Serialize>(body: &T) -> Self {
        // Plain data with string keys: serialization cannot fail.
        let bytes = axum::body::Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let etag = etag_of(&bytes);
        Self { bytes, etag }
    }

    pub fn respond(&self, request: &HeaderMap) -> Response {
        answer(request, self.bytes.clone(), self.etag.clone())
    }
}

/// A `200` that must not be cached (audit trails).
pub fn no_store(body: serde_json::Value) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}
