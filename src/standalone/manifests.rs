//! Reading one manifest file: YAML documents → the objects standalone mode understands.
//! Pure: text in, objects (or an error naming the line) out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::crd::{CatalogSource, RefreshJob};

/// The one variable expanded in manifests: the process's own base URL, so URL sources can
/// point at files it serves (as Flux's post-build substitution would).
pub const SELF_URL_VARIABLE: &str = "${CURIO_URL}";

#[derive(Debug, Clone)]
pub enum Object {
    Namespace(String),
    Source(Box<CatalogSource>),
    Job(Box<RefreshJob>),
    ConfigMap {
        namespace: String,
        name: String,
        data: BTreeMap<String, String>,
    },
    Secret {
        namespace: String,
        name: String,
        data: BTreeMap<String, Vec<u8>>,
    },
    /// Role, ClusterRole, RoleBinding or ClusterRoleBinding, checked when RBAC is built.
    Rbac(Value),
    /// A kind standalone mode does not handle: reported and skipped.
    Skipped {
        kind: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ManifestError {
    pub line: usize,
    pub message: String,
}

/// The line each document starts on (1-based), for messages about a whole document.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("---") && index > 0 {
            starts.push(index + 2);
        }
    }
    starts
}

/// Parses every document of one file. `self_url` replaces [`SELF_URL_VARIABLE`].
pub fn parse(text: &str, self_url: &str) -> Result<Vec<Object>, ManifestError> {
    let text = text.replace(SELF_URL_VARIABLE, self_url);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| ManifestError {
        line: line_of(&e.to_string()).unwrap_or(1),
        message: e.to_string(),
    })?;
    // Empty documents (a leading `---`, a trailing one) do not count for line numbering.
    let lines = document_lines(&text);
    let mut objects = Vec::new();
    for (at, doc) in docs.into_iter().enumerate() {
        let line = lines.get(at).copied().unwrap_or(1);
        if doc.is_null() {
            continue;
        }
        objects.push(object(doc).map_err(|message| ManifestError { line, message })?);
    }
    Ok(objects)
}

/// The first "line N" a parser message mentions.
fn line_of(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn text_field<'a>(doc: &'a Value, pointer: &str) -> Option<&'a str> {
    doc.pointer(pointer).and_then(Value::as_str)
}

fn object(mut doc: Value) -> Result<Object, String> {
    let kind = text_field(&doc, "/kind")
        .ok_or("a document without a kind")?
        .to_owned();
    let name = text_field(&doc, "/metadata/name")
        .ok_or_else(|| format!("a {kind} without metadata.name"))?
        .to_owned();
    if text_field(&doc, "/metadata/namespace").is_none()
        && !matches!(
            kind.as_str(),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding"
        )
        && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), "default".into());
    }
    let namespace = text_field(&doc, "/metadata/namespace")
        .unwrap_or_default()
        .to_owned();
    let describe = |e: serde_json::Error| format!("{kind} {namespace}/{name}: {e}");
    Ok(match kind.as_str() {
        "Namespace" => Object::Namespace(name),
        "CatalogSource" | "RefreshJob" => {
            let version = text_field(&doc, "/apiVersion").unwrap_or_default();
            if version != "curio.dev/v1alpha1" {
                return Err(format!(
                    "{kind} {namespace}/{name}: apiVersion must be curio.dev/v1alpha1, not {version:?}"
                ));
            }
            if kind == "CatalogSource" {
                Object::Source(Box::new(
                    serde_json::from_value(doc.clone()).map_err(describe)?,
                ))
            } else {
                Object::Job(Box::new(
                    serde_json::from_value(doc.clone()).map_err(describe)?,
                ))
            }
        }
        "ConfigMap" => {
            let data = match doc.get("data") {
                Some(data) => serde_json::from_value(data.clone()).map_err(describe)?,
                None => BTreeMap::new(),
            };
            Object::ConfigMap {
                namespace,
                name,
                data,
            }
        }
        "Secret" => {
            let secret: Secret = serde_json::from_value(doc.clone()).map_err(describe)?;
            let mut data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (key, value) in secret.string_data.unwrap_or_default() {
                data.insert(key, value.into_bytes());
            }
            Object::Secret {
                namespace,
                name,
                data,
            }
        }
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => Object::Rbac(doc),
        _ => Object::Skipped { kind, name },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_and_defaults_the_namespace() {
        let text = "\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata: {name: remote, namespace: team-a}
spec: {source: {url: {url: '${CURIO_URL}/files/a.yaml'}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: catalog}
data: {catalog.yaml: 'assets: []'}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: team-a}
data: {token: czNjcmV0}
stringData: {user: alice}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
";
        let objects = parse(text, "http://127.0.0.1:8080").unwrap();
        assert!(matches!(&objects[0], Object::Namespace(n) if n == "team-a"));
        let Object::Source(source) = &objects[1] else {
            panic!("{:?}", objects[1])
        };
        assert_eq!(
            source.spec.source.url.as_ref().unwrap().url,
            "http://127.0.0.1:8080/files/a.yaml"
        );
        assert!(
            matches!(&objects[2], Object::ConfigMap { namespace, data, .. } if namespace == "default" && data["catalog.yaml"] == "assets: []")
        );
        assert!(
            matches!(&objects[3], Object::Secret { data, .. } if data["token"] == b"s3cret" && data["user"] == b"alice")
        );
        assert!(
            matches!(&objects[4], Object::Skipped { kind, name } if kind == "Deployment" && name == "web")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let broken =
            "kind: Namespace\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: [oops\n";
        let error = parse(broken, "").unwrap_err();
        assert!(error.line >= 4, "{error}");

        let wrong = "kind: Namespace\nmetadata: {name: a}\n---\napiVersion: curio.dev/v1alpha1\nkind: CatalogSource\nmetadata: {name: s}\nspec: {nonsense: 1}\n";
        let error = parse(wrong, "").unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        assert!(error.message.contains("CatalogSource default/s"), "{error}");
    }
}
