//! OpenAPI documents for the group: v3 (`/openapi/v3/apis/catalog.curio.dev/v1alpha1`, what
//! `kubectl explain` reads) and v2 (`/openapi/v2`, what the aggregator merges), both built from
//! one schema per kind.

use serde_json::{Value, json};

use super::{GROUP, RESOURCES, Resource, VERSION};

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn object_schema(resource: Resource, v3: bool) -> Value {
    let kind = resource.kind.as_str();
    let free_object = |description: &str| {
        let mut schema = json!({"type": "object", "description": description});
        if v3 {
            schema["x-kubernetes-preserve-unknown-fields"] = json!(true);
        }
        schema
    };
    json!({
        "type": "object",
        "description": format!(
            "A {kind} in the catalog: one asset of a CatalogSource, read-only. Its name is the \
             asset's name, version and source (docs/kubectl.md); spec.name and spec.version \
             hold the originals."
        ),
        "properties": {
            "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
            "kind": string("Kind is a string value representing the REST resource this object represents."),
            "metadata": free_object("Standard object metadata. Labels are the asset's labels plus catalog.curio.dev/source and, when the original name is a valid label value, catalog.curio.dev/name."),
            "spec": {
                "type": "object",
                "description": "The asset as its catalog describes it.",
                "properties": {
                    "name": string("The asset's original name (field selector spec.name)."),
                    "version": string("The asset's version (field selector spec.version)."),
                    "displayName": string("A human-friendly name."),
                    "description": string("What the asset is."),
                    "provider": string("Who publishes it."),
                    "license": string("Its license (an SPDX identifier where known)."),
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags, sorted; derived ones carry a prefix (transport., package., skill., capability.)."},
                    "links": {"type": "array", "items": free_object("A link: name and url."), "description": "Links (documentation, repository, model card)."},
                    "metadata": free_object("Free-form metadata from the catalog."),
                    "mcp": free_object("An MCP server's transports and packages."),
                    "agent": free_object("An agent's skills, capabilities and interfaces."),
                },
            },
            "status": {
                "type": "object",
                "description": "Where the asset stands in the catalog.",
                "properties": {
                    "approved": {"type": "boolean", "description": "Whether it is approved for use."},
                    "stage": string("Its lifecycle stage."),
                    "source": string("The CatalogSource it came from."),
                    "digest": string("The SHA-256 digest of its content."),
                    "updatedAt": string("When its content last changed."),
                },
            },
        },
        "x-kubernetes-group-version-kind": [{"group": GROUP, "version": VERSION, "kind": kind}],
    })
}

fn definition_name(resource: Resource) -> String {
    format!("dev.curio.catalog.{VERSION}.{}", resource.kind.as_str())
}

fn paths(v3: bool) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES {
        let reference = if v3 {
            format!("#/components/schemas/{}", definition_name(r))
        } else {
            format!("#/definitions/{}", definition_name(r))
        };
        let ok = if v3 {
            json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": reference}}}})
        } else {
            json!({"description": "OK", "schema": {"$ref": reference}})
        };
        let gvk = json!({"group": GROUP, "version": VERSION, "kind": r.kind.as_str()});
        paths.insert(
            format!(
                "/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{}/{{name}}",
                r.plural
            ),
            json!({"get": {
                "operationId": format!("read{}", r.kind.as_str()),
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": ok},
            }}),
        );
    }
    Value::Object(paths)
}

/// The v3 document of the group-version.
pub fn v3() -> Value {
    let schemas: serde_json::Map<String, Value> = RESOURCES
        .iter()
        .map(|r| (definition_name(*r), object_schema(*r, true)))
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Curio catalog", "version": VERSION},
        "paths": paths(true),
        "components": {"schemas": schemas},
    })
}

/// The v2 document.
pub fn v2() -> Value {
    let definitions: serde_json::Map<String, Value> = RESOURCES
        .iter()
        .map(|r| (definition_name(*r), object_schema(*r, false)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Curio catalog", "version": VERSION},
        "paths": paths(false),
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_has_a_schema_tagged_with_its_gvk() {
        let doc = super::v3();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert_eq!(schemas.len(), 3);
        for schema in schemas.values() {
            assert_eq!(
                schema["x-kubernetes-group-version-kind"][0]["group"],
                "catalog.curio.dev"
            );
            assert!(schema["properties"]["spec"]["properties"]["name"]["description"].is_string());
        }
        assert_eq!(super::v2()["definitions"].as_object().unwrap().len(), 3);
    }
}
