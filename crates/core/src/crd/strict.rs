//! What a kube-apiserver with strict field validation and CEL would say about a Curio object,
//! without an apiserver: unknown fields against the CRD's structural schema, and the CRD's CEL
//! rules (creation rules, and transition rules against the previous version).

use std::sync::LazyLock;

use kube::CustomResourceExt;
use serde_json::Value;

use super::{CatalogPolicy, CatalogSource, RefreshJob};

/// One problem in one object: where (a field path such as
/// `spec.source.inline.assets[3].licence`) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path with `[index]` for list items; empty for the whole object.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The fields of `metadata` an object may set (`ObjectMeta`).
const OBJECT_META: [&str; 15] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// Every field of `object` (a whole CatalogSource or RefreshJob as JSON) that its CRD's schema
/// does not know, as `kubectl apply --validate=strict` would report them.
pub fn unknown_fields(kind: ResourceKind, object: &Value) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let Some(fields) = object.as_object() else {
        return problems;
    };
    let schema = kind.schema();
    for (key, value) in fields {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for field in value.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !OBJECT_META.contains(&field.as_str()) {
                        problems.push(unknown(&format!("metadata.{field}")));
                    }
                }
            }
            _ => match schema.pointer(&format!("/properties/{key}")) {
                Some(field_schema) => walk(field_schema, value, key, &mut problems),
                None => problems.push(unknown(key)),
            },
        }
    }
    problems
}

fn unknown(path: &str) -> FieldProblem {
    FieldProblem {
        path: path.to_owned(),
        message: "unknown field".to_owned(),
    }
}

fn walk(schema: &Value, value: &Value, path: &str, problems: &mut Vec<FieldProblem>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, field) in fields {
                let at = format!("{path}.{key}");
                if let Some(field_schema) = properties.and_then(|p| p.get(key)) {
                    walk(field_schema, field, &at, problems);
                } else if let Some(each) = additional.filter(|a| a.is_object()) {
                    walk(each, field, &at, problems);
                } else if additional != Some(&Value::Bool(true)) && properties.is_some() {
                    problems.push(unknown(&at));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{index}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// The kinds of the `curio.dev` group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    CatalogSource,
    RefreshJob,
    CatalogPolicy,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 3] = [
        ResourceKind::CatalogSource,
        ResourceKind::RefreshJob,
        ResourceKind::CatalogPolicy,
    ];

    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::CatalogSource => "CatalogSource",
            ResourceKind::RefreshJob => "RefreshJob",
            ResourceKind::CatalogPolicy => "CatalogPolicy",
        }
    }

    /// The CRD's `openAPIV3Schema`, as JSON: generated once per process (standalone mode
    /// checks every manifest on every poll; generating it each time was 4% of its CPU).
    fn schema(self) -> &'static Value {
        static SCHEMAS: LazyLock<[Value; 3]> =
            LazyLock::new(|| ResourceKind::ALL.map(ResourceKind::generate_schema));
        // `ALL` lists the kinds in declaration order (a test holds it to that).
        &SCHEMAS[self as usize]
    }

    fn generate_schema(self) -> Value {
        let crd = match self {
            ResourceKind::CatalogSource => CatalogSource::crd(),
            ResourceKind::RefreshJob => RefreshJob::crd(),
            ResourceKind::CatalogPolicy => CatalogPolicy::crd(),
        };
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null)
    }
}

/// The CRD's CEL rules on `source`.
pub fn source_rules(source: &CatalogSource) -> Vec<FieldProblem> {
    cel_problems(source.validate_cel())
}

/// The CRD's CEL rules on `job`, and its transition rules (the spec is immutable) against the
/// version it replaces.
pub fn job_rules(job: &RefreshJob, previous: Option<&RefreshJob>) -> Vec<FieldProblem> {
    match previous {
        Some(old) => cel_problems(job.validate_cel_update(old)),
        None => cel_problems(job.validate_cel()),
    }
}

/// The CRD's CEL rules on `policy`.
pub fn policy_rules(policy: &CatalogPolicy) -> Vec<FieldProblem> {
    cel_problems(policy.validate_cel())
}

fn cel_problems(result: Result<(), kube::core::cel::ValidationErrors>) -> Vec<FieldProblem> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| FieldProblem {
                path: e.field_path,
                message: e.message,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{catalog_source, inline_spec, refresh_job};
    use serde_json::json;

    #[test]
    fn each_kind_reads_its_own_schema() {
        for (index, kind) in ResourceKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index);
            assert_eq!(*kind.schema(), kind.generate_schema());
        }
        assert!(
            ResourceKind::RefreshJob
                .schema()
                .pointer("/properties/spec/properties/sourceRef")
                .is_some()
        );
    }

    fn paths(problems: &[FieldProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn misspelled_fields_are_unknown_wherever_they_are() {
        let source = catalog_source("team-a", "s")
            .spec(json!({
                "sorce": {},
                "intervall": "5m",
                "source": {"inline": {"assets": [{"kind": "Model", "name": "a", "licence": "mit"}]}},
                "curation": [{"match": "*", "aproved": true}],
                "labels": {"any-key": "is fine"}
            }))
            .json();
        let mut with_meta = source.clone();
        with_meta["metadata"]["lables"] = json!({});
        with_meta["spek"] = json!({});
        let found = unknown_fields(ResourceKind::CatalogSource, &with_meta);
        let mut found = paths(&found);
        found.sort();
        assert_eq!(
            found,
            [
                "metadata.lables",
                "spec.curation[0].aproved",
                "spec.intervall",
                "spec.sorce",
                "spec.source.inline.assets[0].licence",
                "spek"
            ]
        );
    }

    #[test]
    fn free_form_fields_and_status_are_not_checked() {
        let source = catalog_source("team-a", "s")
            .spec(inline_spec(json!([
                {"kind": "Model", "name": "a", "metadata": {"anything": {"goes": 1}}}
            ])))
            .status(json!({"assetCount": 1}))
            .json();
        assert_eq!(unknown_fields(ResourceKind::CatalogSource, &source), []);
        let job = refresh_job("team-a", "j").for_source("s").json();
        assert_eq!(unknown_fields(ResourceKind::RefreshJob, &job), []);
    }

    #[test]
    fn cel_rules_run_with_their_paths() {
        let two = catalog_source("team-a", "s")
            .spec(json!({"source": {"configMap": {"name": "c"}, "url": {"url": "https://x"}}}))
            .build();
        assert!(!source_rules(&two).is_empty());
        let fast = catalog_source("team-a", "s")
            .spec(json!({"source": {"configMap": {"name": "c"}}, "interval": "1s"}))
            .build();
        assert!(!source_rules(&fast).is_empty());
        let old = refresh_job("team-a", "j").for_source("a").build();
        let new = refresh_job("team-a", "j").for_source("b").build();
        assert!(job_rules(&new, None).is_empty());
        assert!(
            !job_rules(&new, Some(&old)).is_empty(),
            "the spec is immutable"
        );
    }
}
