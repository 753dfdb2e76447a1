//! Builders for the custom resources as the apiserver would hand them over, shared by unit
//! tests, integration tests and benches (compiled for tests and with the `fixtures` feature).
//!
//! ```
//! use curio_core::fixtures::catalog_source;
//! use serde_json::json;
//!
//! let source = catalog_source("team-a", "models")
//!     .uid("uid-1")
//!     .generation(1)
//!     .reason("onboarding")
//!     .spec(json!({"source": {"configMap": {"name": "catalog"}}}))
//!     .build();
//! assert_eq!(source.spec.source.config_map.unwrap().name, "catalog");
//! ```

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{
    catalog::{Asset, AssetKind},
    crd::{CHANGE_REASON_ANNOTATION, CatalogSource, GROUP, RefreshJob, VERSION},
};

/// One object under construction, kept as the JSON the apiserver would send.
#[derive(Clone, Debug)]
pub struct Fixture<K> {
    object: Value,
    kind: PhantomData<K>,
}

/// A `CatalogSource` named `name` in `namespace`, with an empty inline catalog until `spec`.
pub fn catalog_source(namespace: &str, name: &str) -> Fixture<CatalogSource> {
    Fixture::new(
        "CatalogSource",
        namespace,
        name,
        json!({"source": {"inline": {"assets": []}}}),
    )
}

/// A `RefreshJob` named `name` in `namespace` with an empty spec until `for_source` or `spec`.
pub fn refresh_job(namespace: &str, name: &str) -> Fixture<RefreshJob> {
    Fixture::new("RefreshJob", namespace, name, json!({}))
}

/// An asset with its kind, name and version and nothing else; set more with struct update
/// syntax: `Asset { description: Some(…), ..asset(AssetKind::Model, "granite", "3") }`.
pub fn asset(kind: AssetKind, name: &str, version: &str) -> Asset {
    Asset {
        kind,
        name: name.into(),
        version: version.into(),
        display_name: None,
        description: None,
        provider: None,
        license: None,
        tags: Vec::new(),
        labels: Default::default(),
        links: Vec::new(),
        metadata: None,
        mcp: None,
        agent: None,
    }
}

/// An inline catalog spec holding `assets` (each in the catalog format's asset shape).
pub fn inline_spec(assets: Value) -> Value {
    json!({"source": {"inline": {"assets": assets}}})
}

impl<K> Fixture<K> {
    fn new(kind: &str, namespace: &str, name: &str, spec: Value) -> Self {
        Self {
            object: json!({
                "apiVersion": format!("{GROUP}/{VERSION}"),
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }),
            kind: PhantomData,
        }
    }

    fn metadata(mut self, key: &str, value: Value) -> Self {
        self.object["metadata"][key] = value;
        self
    }

    pub fn uid(self, uid: &str) -> Self {
        self.metadata("uid", uid.into())
    }

    pub fn generation(self, generation: i64) -> Self {
        self.metadata("generation", generation.into())
    }

    pub fn resource_version(self, version: &str) -> Self {
        self.metadata("resourceVersion", version.into())
    }

    /// `creationTimestamp`, RFC 3339.
    pub fn created(self, at: &str) -> Self {
        self.metadata("creationTimestamp", at.into())
    }

    /// Replaces the labels with `labels` (a JSON object).
    pub fn labels(self, labels: Value) -> Self {
        self.metadata("labels", labels)
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.object["metadata"]["annotations"][key] = value.into();
        self
    }

    /// The `curio.dev/change-reason` annotation: the audit trail's "why".
    pub fn reason(self, reason: &str) -> Self {
        self.annotation(CHANGE_REASON_ANNOTATION, reason)
    }

    /// Replaces the whole spec.
    pub fn spec(mut self, spec: Value) -> Self {
        self.object["spec"] = spec;
        self
    }

    /// Sets one field of the spec.
    pub fn spec_field(mut self, key: &str, value: Value) -> Self {
        self.object["spec"][key] = value;
        self
    }

    pub fn status(mut self, status: Value) -> Self {
        self.object["status"] = status;
        self
    }

    /// The object as JSON, as an admission review or a watch would carry it.
    pub fn json(&self) -> Value {
        self.object.clone()
    }
}

impl Fixture<RefreshJob> {
    /// `spec.sourceRef`: refresh the source `source`.
    pub fn for_source(self, source: &str) -> Self {
        self.spec_field("sourceRef", json!({"name": source}))
    }
}

impl<K: DeserializeOwned> Fixture<K> {
    /// The typed object. Panics if the fixture does not fit the type: a bug in the test.
    pub fn build(self) -> K {
        match serde_json::from_value(self.object) {
            Ok(object) => object,
            Err(e) => panic!("the fixture does not deserialize: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_typed_objects_with_metadata_and_spec() {
        let source = catalog_source("team-a", "models")
            .uid("u-1")
            .generation(3)
            .reason("why")
            .labels(json!({"tier": "gold"}))
            .spec(inline_spec(json!([{"kind": "Model", "name": "granite"}])))
            .build();
        assert_eq!(source.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(source.metadata.generation, Some(3));
        assert_eq!(
            source.metadata.annotations.unwrap()[CHANGE_REASON_ANNOTATION],
            "why"
        );
        assert_eq!(source.spec.source.inline.unwrap().assets[0].name, "granite");
        let job = refresh_job("team-a", "j")
            .for_source("models")
            .spec_field("backoffLimit", 2.into())
            .build();
        assert_eq!(job.spec.source_ref.unwrap().name, "models");
        assert_eq!(job.spec.backoff_limit, Some(2));
    }
}
