//! Watch event encodings: Kubernetes watch events (objects or Tables) and server-sent events.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{
    filters,
    objects::{self, IncludeObject},
    watch::{Encoder, EventType},
};
use crate::{
    api::error::ApiError,
    store::{AssetQuery, FeedEvent},
};
use curio_core::catalog_api::{GROUP_VERSION, Resource};

fn line(value: &Value) -> Bytes {
    // Plain data with string keys: serialization cannot fail.
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark_object(resource: Resource, resource_version: i64) -> Value {
    json!({
        "type": "BOOKMARK",
        "object": {
            "kind": resource.kind.as_str(),
            "apiVersion": GROUP_VERSION,
            "metadata": {"resourceVersion": resource_version.to_string()},
        },
    })
}

fn error_event(error: &ApiError) -> Value {
    json!({"type": "ERROR", "object": error.status_object()})
}

/// `{"type": "ADDED", "object": {…}}` per line, as kube-apiserver streams JSON watches.
pub struct KubeJson {
    resource: Resource,
}

impl KubeJson {
    pub fn new(resource: Resource) -> Self {
        Self { resource }
    }
}

impl Encoder for KubeJson {
    fn event(&mut self, kind: EventType, event: &FeedEvent, resource_version: i64) -> Bytes {
        line(
            &json!({"type": kind.as_str(), "object": objects::object(&event.asset, resource_version)}),
        )
    }

    fn bookmark(&mut self, resource_version: i64) -> Bytes {
        line(&bookmark_object(self.resource, resource_version))
    }

    fn error(&mut self, error: &ApiError) -> Bytes {
        line(&error_event(error))
    }
}

/// Each event's object a one-row Table; the column definitions in the first only (what
/// `kubectl get -w` asks for).
pub struct KubeTable {
    resource: Resource,
    include: IncludeObject,
    headers_sent: bool,
}

impl KubeTable {
    pub fn new(resource: Resource, include: IncludeObject) -> Self {
        Self {
            resource,
            include,
            headers_sent: false,
        }
    }
}

impl Encoder for KubeTable {
    fn event(&mut self, kind: EventType, event: &FeedEvent, resource_version: i64) -> Bytes {
        let row = objects::row(
            &event.asset,
            resource_version,
            self.include,
            chrono::Utc::now(),
        );
        let table = objects::table(vec![row], resource_version, None, !self.headers_sent);
        self.headers_sent = true;
        line(&json!({"type": kind.as_str(), "object": table}))
    }

    fn bookmark(&mut self, resource_version: i64) -> Bytes {
        line(&bookmark_object(self.resource, resource_version))
    }

    fn error(&mut self, error: &ApiError) -> Bytes {
        line(&error_event(error))
    }
}

/// Server-sent events for browsers: `id` the resume point (`Last-Event-ID`), `data` the event
/// with the asset as the `/api/v1` lists show it.
pub struct Sse;

impl Sse {
    fn frame(id: Option<i64>, data: &Value) -> Bytes {
        let mut out = String::new();
        if let Some(id) = id {
            out.push_str(&format!("id: {id}\n"));
        }
        out.push_str("data: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
        Bytes::from(out)
    }
}

impl Encoder for Sse {
    fn event(&mut self, kind: EventType, event: &FeedEvent, resource_version: i64) -> Bytes {
        Self::frame(
            Some(resource_version),
            &json!({"type": kind.as_str(), "resourceVersion": resource_version.to_string(), "object": event.asset}),
        )
    }

    fn bookmark(&mut self, resource_version: i64) -> Bytes {
        Self::frame(
            Some(resource_version),
            &json!({"type": "BOOKMARK", "resourceVersion": resource_version.to_string()}),
        )
    }

    fn error(&mut self, error: &ApiError) -> Bytes {
        Self::frame(None, &error_event(error))
    }
}

/// Passes on only the events a list with the same selectors would show.
pub struct Filtered<E> {
    query: AssetQuery,
    inner: E,
}

impl<E> Filtered<E> {
    pub fn new(query: AssetQuery, inner: E) -> Self {
        Self { query, inner }
    }
}

impl<E: Encoder> Encoder for Filtered<E> {
    fn event(&mut self, kind: EventType, event: &FeedEvent, resource_version: i64) -> Bytes {
        if filters::matches(&self.query, &event.asset, event.deleted) {
            self.inner.event(kind, event, resource_version)
        } else {
            Bytes::new()
        }
    }

    fn bookmark(&mut self, resource_version: i64) -> Bytes {
        self.inner.bookmark(resource_version)
    }

    fn error(&mut self, error: &ApiError) -> Bytes {
        self.inner.error(error)
    }
}
