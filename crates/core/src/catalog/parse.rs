//! Reading a catalog document (YAML or JSON): Curio's format, Kubeflow's model catalog, MCP
//! `server.json` and registry answers, A2A Agent Cards. The format is told by the document's shape.

use serde_json::Value;

use super::{
    a2a,
    error::{CatalogError, map_items},
    kubeflow, mcp,
    model::Asset,
    validate::validate_assets,
};

pub const API_VERSION: &str = "curio.dev/v1alpha1";
pub const KIND: &str = "Catalog";

/// Bounds on one document; a document past either is refused before any asset is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_assets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_assets: 10_000,
        }
    }
}

/// Parses and validates a whole document. Never panics, whatever the bytes.
pub fn parse_document(bytes: &[u8], limits: Limits) -> Result<Vec<Asset>, CatalogError> {
    if bytes.len() > limits.max_bytes {
        return Err(CatalogError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| CatalogError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
    })?;
    let document = parse_tree(text)?;
    let (list, assets) = match document {
        Value::Array(items) => {
            let all_cards = items
                .iter()
                .all(|i| i.as_object().is_some_and(a2a::looks_like_card));
            if !all_cards {
                return Err(CatalogError::Shape(format!(
                    "a top-level list must be A2A Agent Cards (each with name and skills or capabilities); {FORMATS}"
                )));
            }
            check_count(items.len(), limits)?;
            ("agentCards", a2a::cards_to_assets(items, "agentCards")?)
        }
        Value::Object(top) => from_mapping(top, limits)?,
        _ => return Err(CatalogError::Shape(FORMATS.into())),
    };
    validate_assets(&assets, list).map_err(CatalogError::Invalid)?;
    Ok(assets)
}

/// What a document may be, for errors that found none of them.
const FORMATS: &str = "a catalog is a mapping with `assets` (Curio format), `models` (Kubeflow model catalog) or `servers` (an MCP registry answer), one MCP server.json, one A2A Agent Card, or a list of Agent Cards";

/// A mapping's format, told by its keys.
fn from_mapping(
    mut top: serde_json::Map<String, Value>,
    limits: Limits,
) -> Result<(&'static str, Vec<Asset>), CatalogError> {
    let lists: Vec<&str> = ["assets", "models", "servers"]
        .into_iter()
        .filter(|k| top.contains_key(*k))
        .collect();
    match lists.as_slice() {
        ["assets"] => {
            check_curio_header(&top)?;
            let items = take_list(&mut top, "assets")?;
            check_count(items.len(), limits)?;
            Ok(("assets", curio_assets(items)?))
        }
        ["models"] => {
            let items = take_list(&mut top, "models")?;
            check_count(items.len(), limits)?;
            let source = top.get("source").cloned();
            Ok(("models", kubeflow::models_to_assets(items, source)?))
        }
        ["servers"] => {
            let items = take_list(&mut top, "servers")?;
            check_count(items.len(), limits)?;
            Ok(("servers", mcp::registry_to_assets(items)?))
        }
        [] if a2a::looks_like_card(&top) => Ok((
            "agentCard",
            a2a::cards_to_assets(vec![Value::Object(top)], "agentCard")?,
        )),
        [] if mcp::looks_like_server(&top) => {
            Ok(("server.json", mcp::server_document(Value::Object(top))?))
        }
        [] => Err(CatalogError::Shape(format!(
            "no `assets`, `models` or `servers` list, and not a server.json or an Agent Card: {FORMATS}"
        ))),
        _ => Err(CatalogError::Shape(format!(
            "a catalog has one of `assets` (Curio format), `models` (Kubeflow model catalog) and `servers` (MCP registry), not {}",
            lists.join(" and ")
        ))),
    }
}

fn parse_tree(text: &str) -> Result<Value, CatalogError> {
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        serde_json::from_str(text).map_err(|e| CatalogError::Syntax {
            format: "JSON",
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            message: strip_position(&e.to_string()),
        })
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
            let location = e.location();
            CatalogError::Syntax {
                format: "YAML",
                line: location.map(|l| l.line()).filter(|l| *l > 0),
                column: location.map(|l| l.column()).filter(|c| *c > 0),
                message: strip_position(&e.to_string()),
            }
        })
    }
}

/// Both parsers append " at line L, column C"; the error already carries both.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn check_curio_header(top: &serde_json::Map<String, Value>) -> Result<(), CatalogError> {
    for key in top.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "assets") {
            return Err(CatalogError::Shape(format!(
                "unknown top-level field `{key}` (expected apiVersion, kind, assets)"
            )));
        }
    }
    match top.get("apiVersion") {
        None => {}
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => {
            return Err(CatalogError::Shape(format!(
                "apiVersion must be {API_VERSION}, got {other}"
            )));
        }
    }
    match top.get("kind") {
        None => Ok(()),
        Some(Value::String(k)) if k == KIND => Ok(()),
        Some(other) => Err(CatalogError::Shape(format!(
            "kind must be {KIND}, got {other}"
        ))),
    }
}

fn take_list(
    top: &mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<Vec<Value>, CatalogError> {
    match top.remove(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(CatalogError::Shape(format!("`{key}` must be a list"))),
    }
}

fn check_count(count: usize, limits: Limits) -> Result<(), CatalogError> {
    if count > limits.max_assets {
        return Err(CatalogError::TooManyAssets {
            count,
            limit: limits.max_assets,
        });
    }
    Ok(())
}

fn curio_assets(items: Vec<Value>) -> Result<Vec<Asset>, CatalogError> {
    map_items(items, "assets", |item| {
        serde_json::from_value::<Asset>(item)
            .map(Some)
            .map_err(|e| (None, e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::AssetKind;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Vec<Asset>, CatalogError> {
        parse_document(text.as_bytes(), Limits::default())
    }

    const GOOD: &str = r#"
apiVersion: curio.dev/v1alpha1
kind: Catalog
assets:
  - kind: Model
    name: granite-3-8b-instruct
    version: "3.0"
    displayName: Granite 3 8B Instruct
    provider: IBM
    license: apache-2.0
    tags: [llm, instruct]
    labels: {task: text-generation}
    links: [{type: weights, uri: "oci://quay.io/ibm/granite:3.0"}]
    metadata: {contextLength: 128000}
  - kind: McpServer
    name: github
    version: "1.2.0"
  - kind: Agent
    name: triage-bot
"#;

    #[test]
    fn parses_the_curio_format() {
        let assets = parse(GOOD).expect("valid document");
        assert_eq!(assets.len(), 3);
        assert_eq!(assets[0].kind, AssetKind::Model);
        assert_eq!(assets[0].labels["task"], "text-generation");
        assert_eq!(
            assets[0].metadata.as_ref().unwrap()["contextLength"],
            128000
        );
        assert_eq!(assets[2].version, "");
    }

    #[test]
    fn json_and_yaml_give_the_same_assets() {
        let yaml = parse(GOOD).unwrap();
        let json = serde_json::json!({"assets": yaml.clone()}).to_string();
        assert_eq!(parse(&json).unwrap(), yaml);
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let text = "assets:\n  - kind: Model\n    name: [unclosed\n    version: 1\n";
        let err = parse(text).unwrap_err();
        match &err {
            CatalogError::Syntax {
                line: Some(line), ..
            } => assert!(*line >= 3, "{err}"),
            other => panic!("expected a syntax error with a line, got {other:?}"),
        }
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn malformed_json_names_the_line() {
        let err = parse("{\n \"assets\": [\n {\"kind\": \"Model\",, }\n]}").unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::Syntax {
                    format: "JSON",
                    line: Some(3),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn too_many_assets_is_a_clear_error() {
        let mut text = String::from("assets:\n");
        for i in 0..10_001 {
            text.push_str(&format!("  - {{kind: Model, name: m{i}}}\n"));
        }
        let err = parse_document(
            text.as_bytes(),
            Limits {
                max_bytes: 64 << 20,
                max_assets: 10_000,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            CatalogError::TooManyAssets {
                count: 10_001,
                limit: 10_000
            }
        );
        assert_eq!(
            err.to_string(),
            "document has 10001 assets, over the limit of 10000"
        );
    }

    #[test]
    fn oversized_document_is_refused_before_parsing() {
        let err = parse_document(
            &[b' '; 100],
            Limits {
                max_bytes: 99,
                max_assets: 10,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            CatalogError::TooLarge {
                size: 100,
                limit: 99
            }
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_indices() {
        let text = "assets:\n - {kind: Model, name: a, version: '1'}\n - {kind: Model, name: b}\n - {kind: Model, name: a, version: '1'}\n";
        let err = parse(text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("assets[2]") && msg.contains("assets[0]"),
            "{msg}"
        );
        // Same name in another kind or version is fine.
        parse("assets:\n - {kind: Model, name: a, version: '1'}\n - {kind: Agent, name: a, version: '1'}\n - {kind: Model, name: a, version: '2'}\n").unwrap();
    }

    #[test]
    fn an_invalid_name_names_the_index_and_field() {
        let err =
            parse("assets:\n - {kind: Model, name: ok}\n - {kind: Model, name: 'bad name!'}\n")
                .unwrap_err();
        match err {
            CatalogError::Invalid(problems) => {
                assert_eq!(problems.len(), 1);
                assert_eq!(problems[0].index, 1);
                assert_eq!(problems[0].field.as_deref(), Some("name"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let err = parse("assets:\n - {kind: Model, name: a, nmae: typo}\n").unwrap_err();
        assert!(
            err.to_string().contains("assets[0]") && err.to_string().contains("nmae"),
            "{err}"
        );
        let err = parse("assets:\n - {kind: Dataset, name: a}\n").unwrap_err();
        assert!(err.to_string().contains("Dataset"), "{err}");
    }

    #[test]
    fn wrong_header_is_refused() {
        assert!(matches!(
            parse("kind: Other\nassets: []\n"),
            Err(CatalogError::Shape(_))
        ));
        assert!(matches!(
            parse("apiVersion: v1\nassets: []\n"),
            Err(CatalogError::Shape(_))
        ));
        assert!(matches!(parse("- a\n- b\n"), Err(CatalogError::Shape(_))));
        assert!(matches!(
            parse("hello: world\n"),
            Err(CatalogError::Shape(_))
        ));
        assert_eq!(parse("assets: []\n").unwrap(), vec![]);
    }

    #[test]
    fn non_utf8_is_refused_with_its_line() {
        let err = parse_document(b"assets:\n - \xff\n", Limits::default()).unwrap_err();
        assert_eq!(err, CatalogError::NotUtf8 { line: 2 });
    }

    #[test]
    fn alias_bombs_are_refused() {
        // Ten-fold expansion per level, twelve levels deep: 10^13 nodes if expanded.
        let mut text = String::from(
            "assets:\n  - kind: Model\n    name: x\n    metadata:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("      b{i}: &b{i} [{refs}]\n"));
        }
        assert!(parse(&text).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_document(&bytes, Limits::default());
        }

        #[test]
        fn random_yamlish_text_never_panics(text in "[-a-z:{}\\[\\],'\" \n&*!|>#0-9]{0,300}") {
            let _ = parse_document(text.as_bytes(), Limits::default());
        }
    }
}
