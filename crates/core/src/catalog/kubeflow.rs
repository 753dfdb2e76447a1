//! Kubeflow Model Registry's model-catalog YAML (`source:` + `models:`), mapped onto assets.
//!
//! Nothing is dropped: fields with a Curio equivalent are mapped (name, description,
//! provider, license, tasks → tags, artifacts and licenseLink → links) and the whole
//! original entry is kept under `metadata` as well, so a Kubeflow client sees what it wrote.

use serde_json::{Map, Value};

use super::{
    error::{CatalogError, map_items},
    model::{Asset, AssetKind, Link},
};

pub(super) fn models_to_assets(
    items: Vec<Value>,
    source: Option<Value>,
) -> Result<Vec<Asset>, CatalogError> {
    map_items(items, "models", |item| {
        model_to_asset(item, source.as_ref()).map(Some)
    })
}

type FieldError = (Option<String>, String);

fn model_to_asset(item: Value, source: Option<&Value>) -> Result<Asset, FieldError> {
    let Value::Object(model) = item else {
        return Err((None, "each model must be a mapping".into()));
    };
    let name =
        string_field(&model, "name")?.ok_or_else(|| (Some("name".into()), "is required".into()))?;
    let tags = match model.get("tasks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tasks)) => tasks
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| (Some("tasks".into()), "must be a list of strings".into()))?,
        Some(_) => return Err((Some("tasks".into()), "must be a list of strings".into())),
    };
    let mut links = Vec::new();
    if let Some(uri) = string_field(&model, "licenseLink")? {
        links.push(Link {
            link_type: "license".into(),
            uri,
        });
    }
    match model.get("artifacts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(artifacts)) => {
            for (i, artifact) in artifacts.iter().enumerate() {
                let uri = artifact.get("uri").and_then(Value::as_str).ok_or_else(|| {
                    (
                        Some(format!("artifacts[{i}].uri")),
                        "is required and must be a string".into(),
                    )
                })?;
                links.push(Link {
                    link_type: "artifact".into(),
                    uri: uri.to_owned(),
                });
            }
        }
        Some(_) => return Err((Some("artifacts".into()), "must be a list".into())),
    }
    let mut metadata = Map::new();
    if let Some(source) = source {
        metadata.insert("kubeflowSource".into(), source.clone());
    }
    let description = string_field(&model, "description")?;
    let provider = string_field(&model, "provider")?;
    let license = string_field(&model, "license")?;
    metadata.insert("kubeflow".into(), Value::Object(model));
    Ok(Asset {
        kind: AssetKind::Model,
        name,
        version: String::new(),
        display_name: None,
        description,
        provider,
        license,
        tags,
        labels: Default::default(),
        links,
        metadata: Some(Value::Object(metadata)),
        mcp: None,
        agent: None,
    })
}

fn string_field(model: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match model.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((Some(field.into()), "must be a string".into())),
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{AssetKind, Limits, parse_document};

    const KUBEFLOW: &str = r#"
source: Red Hat
models:
  - name: rhelai1/granite-8b-code-base
    provider: IBM
    description: Granite-8B-Code-Base is a decoder-only code model.
    readme: |-
      # Granite
      A long readme.
    language: ["en", "de"]
    license: apache-2.0
    licenseLink: https://www.apache.org/licenses/LICENSE-2.0.txt
    maturity: Generally Available
    libraryName: transformers
    tasks:
      - text-generation
    createTimeSinceEpoch: "1733514949000"
    lastUpdateTimeSinceEpoch: "1734637721000"
    artifacts:
      - uri: oci://registry.redhat.io/rhelai1/granite-8b-code-instruct:1.3-1732870892
        createTimeSinceEpoch: "1733514949000"
        customProperties:
          foo: {string_value: bar, metadataType: MetadataStringValue}
  - name: model-with-no-artifacts
    provider: Test
    license: apache-2.0
    tasks: [test-task]
    artifacts: []
"#;

    #[test]
    fn parses_a_kubeflow_model_catalog() {
        let assets = parse_document(KUBEFLOW.as_bytes(), Limits::default()).expect("valid");
        assert_eq!(assets.len(), 2);
        let granite = &assets[0];
        assert_eq!(granite.kind, AssetKind::Model);
        assert_eq!(granite.name, "rhelai1/granite-8b-code-base");
        assert_eq!(granite.provider.as_deref(), Some("IBM"));
        assert_eq!(granite.license.as_deref(), Some("apache-2.0"));
        assert_eq!(granite.tags, ["text-generation"]);
        assert_eq!(granite.links.len(), 2);
        assert_eq!(granite.links[1].link_type, "artifact");
        let metadata = granite.metadata.as_ref().unwrap();
        assert_eq!(metadata["kubeflowSource"], "Red Hat");
        assert_eq!(metadata["kubeflow"]["libraryName"], "transformers");
        assert_eq!(metadata["kubeflow"]["language"][1], "de");
    }

    #[test]
    fn a_kubeflow_model_without_a_name_is_refused_by_index() {
        let err = parse_document(b"models:\n - {provider: x}\n", Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 invalid asset: models[0].name: is required"
        );
    }
}
