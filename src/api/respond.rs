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
    Fixed::new(body).respond(request)
}

fn etag_of(bytes: &[u8]) -> HeaderValue {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]));
    HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))
}

/// A file's bytes as `content_type`, with a strong ETag over them, or `304` when
/// `If-None-Match` already has it (standalone mode's `/files`, which URL sources fetch).
pub fn validated_bytes(
    request: &HeaderMap,
    bytes: impl Into<axum::body::Bytes>,
    content_type: &'static str,
) -> Response {
    let bytes = bytes.into();
    let etag = etag_of(&bytes);
    answer(request, bytes, etag, content_type)
}

fn answer(
    request: &HeaderMap,
    bytes: axum::body::Bytes,
    etag: HeaderValue,
    content_type: &'static str,
) -> Response {
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
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        bytes,
    )
        .into_response()
}

/// A serialized answer with its ETag computed once, served as [`cacheable`] would serve it:
/// answers that never change while the process runs (discovery, OpenAPI), and the response
/// cache's entries (hashing a 50 KB page on every hit would cost more than the rest of it).
#[derive(Clone, Debug)]
pub struct Fixed {
    bytes: axum::body::Bytes,
    etag: HeaderValue,
}

impl Fixed {
    pub fn new<T: serde::Serialize>(body: &T) -> Self {
        // Plain data with string keys: serialization cannot fail.
        Self::from_bytes(serde_json::to_vec(body).unwrap_or_default())
    }

    /// An answer already serialized; its ETag is computed here, once.
    pub fn from_bytes(bytes: impl Into<axum::body::Bytes>) -> Self {
        let bytes = bytes.into();
        let etag = etag_of(&bytes);
        Self { bytes, etag }
    }

    /// Bytes held: the body and its ETag.
    pub fn weight(&self) -> usize {
        self.bytes.len() + self.etag.len()
    }

    pub fn respond(&self, request: &HeaderMap) -> Response {
        answer(
            request,
            self.bytes.clone(),
            self.etag.clone(),
            "application/json",
        )
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
