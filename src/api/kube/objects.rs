//! Assets as `catalog.curio.dev/v1alpha1` objects, lists and `meta.k8s.io/v1` Tables.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::store::entity::asset;
use curio_core::catalog_api::{
    COLUMNS, GROUP_VERSION, NAME_LABEL, Resource, SOURCE_LABEL, human_duration,
};

/// A stable uid for one incarnation of an asset: re-created after a deletion, it gets another.
fn uid(a: &asset::Model) -> String {
    let digest = Sha256::digest(
        format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            a.namespace, a.source, a.kind, a.name, a.version, a.created_revision
        )
        .as_bytes(),
    );
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A label value Kubernetes accepts: ≤ 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The object's metadata; `resource_version` is the revision the event or read carries.
pub fn metadata(a: &asset::Model, resource_version: i64) -> Value {
    let mut labels = match &a.labels {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    labels.insert(SOURCE_LABEL.into(), json!(a.source));
    if is_label_value(&a.name) {
        labels.insert(NAME_LABEL.into(), json!(a.name));
    }
    json!({
        "name": a.object_name,
        "namespace": a.namespace,
        "uid": uid(a),
        "resourceVersion": resource_version.to_string(),
        "creationTimestamp": time(&a.created_at),
        "labels": labels,
    })
}

/// The full object: `spec` the asset's fields, `status` where it stands.
pub fn object(a: &asset::Model, resource_version: i64) -> Value {
    let kind = a.kind.as_str();
    let mut spec = json!({
        "name": a.name,
        "version": a.version,
    });
    for (key, value) in [
        ("displayName", a.display_name.as_ref()),
        ("description", a.description.as_ref()),
        ("provider", a.provider.as_ref()),
        ("license", a.license.as_ref()),
    ] {
        if let Some(value) = value {
            spec[key] = json!(value);
        }
    }
    for (key, value) in [
        ("tags", &a.tags),
        ("links", &a.links),
        ("metadata", &a.metadata),
    ] {
        let empty = match value {
            Value::Array(v) => v.is_empty(),
            Value::Object(v) => v.is_empty(),
            Value::Null => true,
            _ => false,
        };
        if !empty {
            spec[key] = value.clone();
        }
    }
    if let Some(mcp) = &a.mcp {
        spec["mcp"] = mcp.clone();
    }
    if let Some(agent) = &a.agent {
        spec["agent"] = agent.clone();
    }
    let mut status = json!({
        "approved": a.approved,
        "source": a.source,
        "digest": a.digest,
        "updatedAt": time(&a.updated_at),
    });
    if let Some(stage) = &a.stage {
        status["stage"] = json!(stage);
    }
    json!({
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": metadata(a, resource_version),
        "spec": spec,
        "status": status,
    })
}

/// A list of objects.
pub fn list(
    resource: Resource,
    items: Vec<Value>,
    resource_version: i64,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "apiVersion": GROUP_VERSION,
        "kind": resource.list_kind(),
        "metadata": metadata,
        "items": items,
    })
}

/// What a Table row carries of its object (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "None" => Some(Self::None),
            "Metadata" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

fn cells(a: &asset::Model, now: chrono::DateTime<chrono::Utc>) -> Value {
    let age = (now - a.created_at).num_seconds();
    json!([
        a.object_name,
        a.display_name.clone().unwrap_or_default(),
        a.version,
        a.stage.clone().unwrap_or_default(),
        a.approved,
        a.source,
        human_duration(age),
        a.name,
        a.provider.clone().unwrap_or_default(),
        a.license.clone().unwrap_or_default(),
    ])
}

/// One Table row.
pub fn row(
    a: &asset::Model,
    resource_version: i64,
    include: IncludeObject,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut row = json!({"cells": cells(a, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata(a, resource_version),
            });
        }
        IncludeObject::Object => row["object"] = object(a, resource_version),
    }
    row
}

/// A `meta.k8s.io/v1` Table of `rows`; `headers` false leaves the column definitions out (a
/// watch sends them once).
pub fn table(
    rows: Vec<Value>,
    resource_version: i64,
    continue_token: Option<String>,
    headers: bool,
) -> Value {
    let columns: Vec<Value> = if headers {
        COLUMNS
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.kind,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// Whether the request asks for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`,
/// or v1beta1, as kubectl sends it). The first acceptable type wins, as kube-apiserver decides.
pub fn wants_table(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    for candidate in accept.split(',') {
        let mut parts = candidate.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !(media == "application/json" || media == "*/*" || media == "application/*") {
            continue;
        }
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| params.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        match get("as") {
            Some("Table") if get("g") == Some("meta.k8s.io") => return true,
            // Another representation asked for by name (PartialObjectMetadata): not served, go on.
            Some(_) => continue,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_table_requests_are_recognised() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
        assert!(!wants_table(Some(
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
        )));
    }

    #[test]
    fn label_values_follow_kubernetes() {
        assert!(is_label_value("granite-3.0_b"));
        assert!(is_label_value(""));
        assert!(!is_label_value("meta-llama/Llama"));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
