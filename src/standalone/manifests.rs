//! Reading one manifest file: YAML documents → the objects standalone mode understands.
//! Pure: text in, objects (or an error naming the line) out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use super::locate;
use crate::crd::{
    CatalogPolicy, CatalogSource, RefreshJob,
    strict::{self, FieldProblem, ResourceKind},
};

/// The one variable expanded in manifests: the process's own base URL, so URL sources can
/// point at files it serves (as Flux's post-build substitution would).
pub const SELF_URL_VARIABLE: &str = "${CURIO_URL}";

#[derive(Debug, Clone)]
pub enum Object {
    Namespace {
        name: String,
        labels: BTreeMap<String, String>,
    },
    Source(Box<CatalogSource>),
    Policy(Box<CatalogPolicy>),
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

/// Which object a document describes, as far as it can be read: to keep that object's last
/// good version when this one is refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A document that was not applied: where and why, and what it was if that much could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentProblem {
    pub error: ManifestError,
    pub identity: Option<Identity>,
}

/// What one file holds: the objects to apply, each with the line its document starts on, and
/// the documents refused.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub objects: Vec<(usize, Object)>,
    pub problems: Vec<DocumentProblem>,
}

/// The documents of a file as (first line, text); a line starting with `---` separates them.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut first = 1;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            docs.push((first, std::mem::take(&mut current)));
            first = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((first, current));
    docs
}

/// Parses every document of one file; a document that cannot be applied is reported and the
/// others still apply. `self_url` replaces [`SELF_URL_VARIABLE`].
pub fn parse(text: &str, self_url: &str) -> Parsed {
    let text = text.replace(SELF_URL_VARIABLE, self_url);
    let mut parsed = Parsed::default();
    for (first, document) in documents(&text) {
        let doc: Value = match serde_saphyr::from_str(&document) {
            Ok(doc) => doc,
            Err(e) => {
                let message = first_line(&e.to_string());
                let (line, detail) = syntax_detail(&message);
                parsed.problems.push(DocumentProblem {
                    error: ManifestError {
                        line: first + line.unwrap_or(1) - 1,
                        message: detail,
                    },
                    identity: None,
                });
                continue;
            }
        };
        if doc.is_null() {
            continue;
        }
        let identity = identity(&doc);
        match object(doc) {
            Ok(object) => parsed.objects.push((first, object)),
            Err(refusals) => {
                parsed
                    .problems
                    .extend(refusals.into_iter().map(|refusal| DocumentProblem {
                        error: ManifestError {
                            line: refusal.path.as_deref().map_or(first, |path| {
                                locate::line_of(&document, first, &locate::steps(path))
                            }),
                            message: refusal.message,
                        },
                        identity: identity.clone(),
                    }))
            }
        }
    }
    parsed
}

/// A parser's message without the snippet some parsers append after its first line.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

/// A YAML parser's message as (its line, what is wrong): `error: line 3 column 18: unclosed
/// bracket` → (3, `column 18: unclosed bracket`), so the line is said once.
fn syntax_detail(message: &str) -> (Option<usize>, String) {
    let text = message.strip_prefix("error: ").unwrap_or(message);
    let line = line_of(text);
    let detail = text
        .strip_prefix("line ")
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        .map(|rest| rest.trim_start_matches([',', ' ']))
        .unwrap_or(text);
    let detail = detail.strip_prefix(": ").unwrap_or(detail);
    (line, detail.to_owned())
}

/// The first "line N" a parser message mentions.
fn line_of(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The kinds that live outside namespaces.
fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CatalogPolicy"
    )
}

fn identity(doc: &Value) -> Option<Identity> {
    let kind = text_field(doc, "/kind")?.to_owned();
    let name = text_field(doc, "/metadata/name")?.to_owned();
    let namespace = if cluster_scoped(&kind) {
        String::new()
    } else {
        text_field(doc, "/metadata/namespace")
            .unwrap_or("default")
            .to_owned()
    };
    Some(Identity {
        kind,
        namespace,
        name,
    })
}

impl Object {
    /// Which object this is, as [`identity`] reads it from a document.
    pub fn identity(&self) -> Option<Identity> {
        let id = |kind: &str, namespace: Option<String>, name: Option<String>| {
            Some(Identity {
                kind: kind.to_owned(),
                namespace: namespace.unwrap_or_default(),
                name: name?,
            })
        };
        match self {
            Object::Namespace { name, .. } => id("Namespace", None, Some(name.clone())),
            Object::Policy(p) => id("CatalogPolicy", None, p.metadata.name.clone()),
            Object::Source(s) => id(
                "CatalogSource",
                s.metadata.namespace.clone(),
                s.metadata.name.clone(),
            ),
            Object::Job(j) => id(
                "RefreshJob",
                j.metadata.namespace.clone(),
                j.metadata.name.clone(),
            ),
            Object::ConfigMap {
                namespace, name, ..
            } => id("ConfigMap", Some(namespace.clone()), Some(name.clone())),
            Object::Secret {
                namespace, name, ..
            } => id("Secret", Some(namespace.clone()), Some(name.clone())),
            Object::Rbac(doc) => identity(doc),
            Object::Skipped { .. } => None,
        }
    }
}

/// One reason a document is refused, at a field (`spec.sorce`) where there is one.
struct Refusal {
    path: Option<String>,
    message: String,
}

impl Refusal {
    fn whole(message: impl Into<String>) -> Vec<Self> {
        vec![Self {
            path: None,
            message: message.into(),
        }]
    }
}

fn text_field<'a>(doc: &'a Value, pointer: &str) -> Option<&'a str> {
    doc.pointer(pointer).and_then(Value::as_str)
}

fn object(mut doc: Value) -> Result<Object, Vec<Refusal>> {
    let kind = text_field(&doc, "/kind")
        .ok_or_else(|| Refusal::whole("a document without a kind"))?
        .to_owned();
    let name = text_field(&doc, "/metadata/name")
        .ok_or_else(|| Refusal::whole(format!("a {kind} without metadata.name")))?
        .to_owned();
    if text_field(&doc, "/metadata/namespace").is_none()
        && !cluster_scoped(&kind)
        && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), "default".into());
    }
    let namespace = text_field(&doc, "/metadata/namespace")
        .unwrap_or_default()
        .to_owned();
    let describe = |e: serde_json::Error| Refusal::whole(format!("{kind} {namespace}/{name}: {e}"));
    let api_version = text_field(&doc, "/apiVersion").unwrap_or_default();
    if api_version.starts_with("curio.dev/") && ResourceKind::from_kind(&kind).is_none() {
        return Err(Refusal::whole(format!(
            "{kind} {namespace}/{name}: curio.dev has no kind {kind:?} (CatalogSource, RefreshJob or CatalogPolicy)"
        )));
    }
    Ok(match kind.as_str() {
        "Namespace" => Object::Namespace {
            labels: match doc.pointer("/metadata/labels") {
                Some(labels) => serde_json::from_value(labels.clone()).map_err(describe)?,
                None => BTreeMap::new(),
            },
            name,
        },
        "CatalogSource" | "RefreshJob" | "CatalogPolicy" => {
            if api_version != "curio.dev/v1alpha1" {
                return Err(Refusal::whole(format!(
                    "{kind} {namespace}/{name}: apiVersion must be curio.dev/v1alpha1, not {api_version:?}"
                )));
            }
            curio_object(&kind, &namespace, &name, doc)?
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

/// A CatalogSource, RefreshJob or CatalogPolicy, checked as a kube-apiserver with strict field validation and
/// the CRD's CEL rules would check it.
fn curio_object(
    kind: &str,
    namespace: &str,
    name: &str,
    doc: Value,
) -> Result<Object, Vec<Refusal>> {
    let at = |problems: Vec<FieldProblem>| -> Vec<Refusal> {
        problems
            .into_iter()
            .map(|p| Refusal {
                message: format!("{kind} {namespace}/{name}: {p}"),
                path: (!p.path.is_empty()).then_some(p.path),
            })
            .collect()
    };
    let describe = |e: serde_json::Error| Refusal::whole(format!("{kind} {namespace}/{name}: {e}"));
    let resource = ResourceKind::from_kind(kind)
        .ok_or_else(|| Refusal::whole(format!("{kind} is not a curio.dev kind")))?;
    let unknown = strict::unknown_fields(resource, &doc);
    if !unknown.is_empty() {
        return Err(at(unknown));
    }
    match resource {
        ResourceKind::CatalogSource => {
            let source: CatalogSource = serde_json::from_value(doc).map_err(describe)?;
            let broken = strict::source_rules(&source);
            if !broken.is_empty() {
                return Err(at(broken));
            }
            Ok(Object::Source(Box::new(source)))
        }
        ResourceKind::RefreshJob => {
            let job: RefreshJob = serde_json::from_value(doc).map_err(describe)?;
            let broken = strict::job_rules(&job, None);
            if !broken.is_empty() {
                return Err(at(broken));
            }
            Ok(Object::Job(Box::new(job)))
        }
        ResourceKind::CatalogPolicy => {
            let policy: CatalogPolicy = serde_json::from_value(doc).map_err(describe)?;
            let broken = strict::policy_rules(&policy);
            if !broken.is_empty() {
                return Err(at(broken));
            }
            Ok(Object::Policy(Box::new(policy)))
        }
    }
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
        let parsed = parse(text, "http://127.0.0.1:8080");
        assert_eq!(parsed.problems, []);
        let objects: Vec<Object> = parsed.objects.into_iter().map(|(_, o)| o).collect();
        assert!(matches!(&objects[0], Object::Namespace { name, .. } if name == "team-a"));
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
        let parsed = parse(broken, "");
        assert!(parsed.problems[0].error.line >= 4, "{:?}", parsed.problems);
        assert_eq!(parsed.problems[0].identity, None);
        assert!(
            matches!(&parsed.objects[..], [(1, Object::Namespace { name, .. })] if name == "a"),
            "the good document still applies"
        );

        let wrong = "kind: Namespace\nmetadata: {name: a}\n---\napiVersion: curio.dev/v1alpha1\nkind: CatalogSource\nmetadata: {name: s}\nspec: {nonsense: 1}\n";
        let parsed = parse(wrong, "");
        let problem = &parsed.problems[0];
        assert_eq!(problem.error.line, 7, "{problem:?}");
        assert!(
            problem
                .error
                .message
                .contains("CatalogSource default/s: spec.nonsense: unknown field"),
            "{problem:?}"
        );
        assert_eq!(
            problem
                .identity
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("CatalogSource default/s")
        );
    }

    #[test]
    fn a_syntax_error_says_its_line_once() {
        assert_eq!(
            syntax_detail("error: line 3 column 18: unclosed bracket '['"),
            (Some(3), "column 18: unclosed bracket '['".to_owned())
        );
        let parsed = parse("kind: ConfigMap\nmetadata: {name: [oops\n", "");
        let message = parsed.problems[0].error.to_string();
        assert_eq!(message.matches("line ").count(), 1, "{message}");
    }
}
