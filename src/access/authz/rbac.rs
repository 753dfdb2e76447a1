//! A static RBAC authorizer: Kubernetes' rules over Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding manifests (for standalone mode and tests).
//!
//! Rules: a binding applies when a subject matches the user (User by name, Group by group,
//! ServiceAccount by `system:serviceaccount:<ns>:<name>`); ClusterRoleBindings grant everywhere,
//! RoleBindings in their namespace (to a Role there or a ClusterRole). A rule matches when its
//! apiGroups, resources and verbs contain the request's (or `*`) and, if it names
//! resourceNames, the request names one of them (so never a list). Aggregated ClusterRoles are
//! not expanded.

use std::collections::HashMap;

use async_trait::async_trait;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

use super::{Attributes, Authorizer, AuthzError, Decision};
use crate::access::identity::UserInfo;

#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error("{kind} without metadata.name")]
    Unnamed { kind: &'static str },
    #[error("{kind} {name} without metadata.namespace")]
    NoNamespace { kind: &'static str, name: String },
    /// The apiserver refuses these too; here they would silently grant nothing.
    #[error("{kind} {name}: roleRef.kind {found:?} is not {expected}")]
    RoleRefKind {
        kind: &'static str,
        name: String,
        found: String,
        expected: &'static str,
    },
    #[error("{kind} {name}: subject kind {found:?} is not User, Group or ServiceAccount")]
    SubjectKind {
        kind: &'static str,
        name: String,
        found: String,
    },
}

/// Refuses a binding the apiserver would refuse: a role reference or subject of an unknown kind.
fn check_binding(
    kind: &'static str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    role_ref: &k8s_openapi::api::rbac::v1::RoleRef,
    subjects: Option<&[k8s_openapi::api::rbac::v1::Subject]>,
    role_kinds: &[&str],
) -> Result<(), RbacError> {
    let name = meta.name.clone().unwrap_or_default();
    if !role_kinds.contains(&role_ref.kind.as_str()) {
        return Err(RbacError::RoleRefKind {
            kind,
            name,
            found: role_ref.kind.clone(),
            expected: if role_kinds.len() == 1 {
                "ClusterRole"
            } else {
                "Role or ClusterRole"
            },
        });
    }
    if let Some(subject) = subjects
        .into_iter()
        .flatten()
        .find(|s| !matches!(s.kind.as_str(), "User" | "Group" | "ServiceAccount"))
    {
        return Err(RbacError::SubjectKind {
            kind,
            name,
            found: subject.kind.clone(),
        });
    }
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct StaticRbac {
    /// Roles by namespace, then name.
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// RoleBindings by namespace: a decision reads only its namespace's (a cross-namespace
    /// list asks once per namespace, so a scan of every binding would grow with the tenants
    /// squared).
    role_bindings: HashMap<String, Vec<RoleBinding>>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
}

fn name_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &'static str,
) -> Result<String, RbacError> {
    meta.name.clone().ok_or(RbacError::Unnamed { kind })
}

fn namespace_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &'static str,
) -> Result<String, RbacError> {
    meta.namespace
        .clone()
        .ok_or_else(|| RbacError::NoNamespace {
            kind,
            name: meta.name.clone().unwrap_or_default(),
        })
}

impl StaticRbac {
    pub fn add_role(&mut self, role: Role) -> Result<(), RbacError> {
        let namespace = namespace_of(&role.metadata, "Role")?;
        let name = name_of(&role.metadata, "Role")?;
        self.roles
            .entry(namespace)
            .or_default()
            .insert(name, role.rules.unwrap_or_default());
        Ok(())
    }

    pub fn add_cluster_role(&mut self, role: ClusterRole) -> Result<(), RbacError> {
        let name = name_of(&role.metadata, "ClusterRole")?;
        self.cluster_roles
            .insert(name, role.rules.unwrap_or_default());
        Ok(())
    }

    pub fn add_role_binding(&mut self, binding: RoleBinding) -> Result<(), RbacError> {
        let namespace = namespace_of(&binding.metadata, "RoleBinding")?;
        check_binding(
            "RoleBinding",
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
            &["Role", "ClusterRole"],
        )?;
        self.role_bindings
            .entry(namespace)
            .or_default()
            .push(binding);
        Ok(())
    }

    pub fn add_cluster_role_binding(
        &mut self,
        binding: ClusterRoleBinding,
    ) -> Result<(), RbacError> {
        name_of(&binding.metadata, "ClusterRoleBinding")?;
        check_binding(
            "ClusterRoleBinding",
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
            &["ClusterRole"],
        )?;
        self.cluster_role_bindings.push(binding);
        Ok(())
    }

    fn rules_allow(rules: &[PolicyRule], a: &Attributes) -> bool {
        rules.iter().any(|rule| rule_matches(rule, a))
    }

    pub fn decide(&self, a: &Attributes) -> Decision {
        for binding in &self.cluster_role_bindings {
            if binding.role_ref.kind == "ClusterRole"
                && subjects_match(binding.subjects.as_deref(), &a.user)
                && self
                    .cluster_roles
                    .get(&binding.role_ref.name)
                    .is_some_and(|rules| Self::rules_allow(rules, a))
            {
                return Decision::Allow;
            }
        }
        let bindings = self.role_bindings.get(a.namespace.as_str());
        for binding in bindings.into_iter().flatten() {
            if !subjects_match(binding.subjects.as_deref(), &a.user) {
                continue;
            }
            let rules = match binding.role_ref.kind.as_str() {
                "Role" => self
                    .roles
                    .get(a.namespace.as_str())
                    .and_then(|roles| roles.get(&binding.role_ref.name)),
                "ClusterRole" => self.cluster_roles.get(&binding.role_ref.name),
                _ => None,
            };
            if rules.is_some_and(|rules| Self::rules_allow(rules, a)) {
                return Decision::Allow;
            }
        }
        Decision::Deny {
            reason: format!(
                "no RBAC rule allows {} to {} {}.{} in namespace {}",
                a.user.username, a.verb, a.resource, a.group, a.namespace
            ),
        }
    }
}

fn contains_or_star(list: Option<&Vec<String>>, value: &str) -> bool {
    list.is_some_and(|l| l.iter().any(|v| v == "*" || v == value))
}

fn rule_matches(rule: &PolicyRule, a: &Attributes) -> bool {
    contains_or_star(rule.api_groups.as_ref(), a.group)
        && contains_or_star(rule.resources.as_ref(), &a.resource)
        && rule.verbs.iter().any(|v| v == "*" || v == a.verb)
        && match rule.resource_names.as_deref() {
            None | Some([]) => true,
            Some(names) => a.name.as_ref().is_some_and(|n| names.contains(n)),
        }
}

fn subjects_match(subjects: Option<&[Subject]>, user: &UserInfo) -> bool {
    subjects
        .unwrap_or_default()
        .iter()
        .any(|s| match s.kind.as_str() {
            "User" => s.name == user.username,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => s.namespace.as_deref().is_some_and(|ns| {
                user.username
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    == Some((ns, s.name.as_str()))
            }),
            _ => false,
        })
}

#[async_trait]
impl Authorizer for StaticRbac {
    async fn authorize(&self, attributes: &Attributes) -> Result<Decision, AuthzError> {
        Ok(self.decide(attributes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rbac() -> StaticRbac {
        let mut r = StaticRbac::default();
        r.add_cluster_role(serde_json::from_value(json!({
            "metadata": {"name": "viewer"},
            "rules": [{"apiGroups": ["curio.dev"], "resources": ["*"], "verbs": ["get", "list"]}]
        })).unwrap()).unwrap();
        r.add_role(serde_json::from_value(json!({
            "metadata": {"name": "models", "namespace": "team-a"},
            "rules": [{"apiGroups": ["curio.dev"], "resources": ["models"], "verbs": ["list"]},
                      {"apiGroups": ["curio.dev"], "resources": ["catalogsources"], "verbs": ["get"], "resourceNames": ["public"]}]
        })).unwrap()).unwrap();
        r.add_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "b1", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "models"},
            "subjects": [{"kind": "User", "name": "mo"}]
        })).unwrap()).unwrap();
        r.add_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "b2", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "viewer"},
            "subjects": [{"kind": "Group", "name": "team-b-viewers"}]
        })).unwrap()).unwrap();
        r.add_cluster_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "everyone"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": "dash", "namespace": "ops"}]
        })).unwrap()).unwrap();
        r
    }

    fn ask(
        user: UserInfo,
        verb: &'static str,
        resource: &str,
        ns: &str,
        name: Option<&str>,
    ) -> bool {
        rbac()
            .decide(&Attributes {
                user,
                group: crate::access::authz::API_GROUP,
                verb,
                resource: resource.into(),
                namespace: ns.into(),
                name: name.map(Into::into),
            })
            .allowed()
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo::authenticated(
            name.into(),
            None,
            groups.iter().map(|g| g.to_string()).collect(),
        )
    }

    #[test]
    fn a_role_binding_reads_roles_of_its_own_namespace_and_matches_service_accounts_exactly() {
        let mut r = rbac();
        // team-b binds a Role "models" that only team-a has: nothing is granted.
        r.add_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "borrow", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "models"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team-b"}]
        })).unwrap()).unwrap();
        r.add_role(
            serde_json::from_value(json!({
                "metadata": {"name": "agents", "namespace": "team-b"},
                "rules": [{"apiGroups": ["curio.dev"], "resources": ["agents"], "verbs": ["list"]}]
            }))
            .unwrap(),
        )
        .unwrap();
        r.add_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "bot", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agents"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team-b"}]
        })).unwrap()).unwrap();
        let may = |username: &str, resource: &str, namespace: &str| {
            r.decide(&Attributes {
                user: user(username, &[]),
                group: crate::access::authz::API_GROUP,
                verb: "list",
                resource: resource.into(),
                namespace: namespace.into(),
                name: None,
            })
            .allowed()
        };
        assert!(may("system:serviceaccount:team-b:bot", "agents", "team-b"));
        assert!(!may("system:serviceaccount:team-b:bot", "models", "team-b"));
        assert!(!may("system:serviceaccount:team-b:bot", "agents", "team-a"));
        for other in [
            "system:serviceaccount:team-b:bot2",
            "system:serviceaccount:team-bb:bot",
            "system:serviceaccount:team-b",
            "system:serviceaccount:team-b:bot:x",
            "team-b:bot",
        ] {
            assert!(!may(other, "agents", "team-b"), "{other}");
        }
    }

    #[test]
    fn evaluates_kubernetes_rbac_rules() {
        assert!(ask(user("mo", &[]), "list", "models", "team-a", None));
        assert!(!ask(user("mo", &[]), "list", "agents", "team-a", None));
        assert!(!ask(user("mo", &[]), "list", "models", "team-b", None));
        assert!(!ask(user("mo", &[]), "get", "models", "team-a", Some("x")));
        // resourceNames: only that name, never a list.
        assert!(ask(
            user("mo", &[]),
            "get",
            "catalogsources",
            "team-a",
            Some("public")
        ));
        assert!(!ask(
            user("mo", &[]),
            "get",
            "catalogsources",
            "team-a",
            Some("private")
        ));
        assert!(!ask(
            user("mo", &[]),
            "list",
            "catalogsources",
            "team-a",
            None
        ));
        // Group through a RoleBinding to a ClusterRole: only in the binding's namespace.
        assert!(ask(
            user("v", &["team-b-viewers"]),
            "list",
            "agents",
            "team-b",
            None
        ));
        assert!(!ask(
            user("v", &["team-b-viewers"]),
            "list",
            "agents",
            "team-a",
            None
        ));
        assert!(!ask(
            user("v", &["team-b-viewers"]),
            "delete",
            "agents",
            "team-b",
            None
        ));
        // ServiceAccount through a ClusterRoleBinding: everywhere.
        assert!(ask(
            user("system:serviceaccount:ops:dash", &[]),
            "list",
            "models",
            "anywhere",
            None
        ));
        assert!(!ask(
            user("system:serviceaccount:other:dash", &[]),
            "list",
            "models",
            "anywhere",
            None
        ));
        assert!(!ask(
            UserInfo::anonymous(),
            "list",
            "models",
            "team-a",
            None
        ));
    }

    #[test]
    fn system_authenticated_covers_every_authenticated_user_and_no_anonymous_one() {
        let mut r = rbac();
        r.add_role_binding(serde_json::from_value(json!({
            "metadata": {"name": "all", "namespace": "public"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "viewer"},
            "subjects": [{"kind": "Group", "name": "system:authenticated"}]
        })).unwrap()).unwrap();
        let attributes = |user| Attributes {
            user,
            group: crate::access::authz::API_GROUP,
            verb: "list",
            resource: "models".into(),
            namespace: "public".into(),
            name: None,
        };
        assert!(r.decide(&attributes(user("anyone", &[]))).allowed());
        assert!(!r.decide(&attributes(UserInfo::anonymous())).allowed());
    }
}

/// Loading RBAC objects from YAML manifests (every `*.yaml`/`*.yml` under a folder).
pub mod manifests {
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::{RbacError, StaticRbac};

    #[derive(Debug, thiserror::Error)]
    pub enum LoadError {
        #[error("reading {path}: {source}")]
        Read {
            path: PathBuf,
            #[source]
            source: std::io::Error,
        },
        #[error("{path}: {source}")]
        Parse {
            path: PathBuf,
            #[source]
            source: Box<serde_saphyr::Error>,
        },
        #[error("{path}: {source}")]
        Document {
            path: PathBuf,
            #[source]
            source: DocumentError,
        },
        #[error("{path}: {source}")]
        Rbac {
            path: PathBuf,
            #[source]
            source: RbacError,
        },
    }

    /// Why one RBAC document was not added.
    #[derive(Debug, thiserror::Error)]
    pub enum DocumentError {
        #[error("{kind}: {source}")]
        Shape {
            kind: String,
            #[source]
            source: serde_json::Error,
        },
        #[error(transparent)]
        Rbac(#[from] RbacError),
    }

    /// Adds one document if it is an RBAC kind; returns whether it was.
    pub fn add_document(rbac: &mut StaticRbac, doc: &Value) -> Result<bool, DocumentError> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let parsed = match kind {
            "Role" => serde_json::from_value(doc.clone()).map(|r| rbac.add_role(r)),
            "ClusterRole" => serde_json::from_value(doc.clone()).map(|r| rbac.add_cluster_role(r)),
            "RoleBinding" => serde_json::from_value(doc.clone()).map(|r| rbac.add_role_binding(r)),
            "ClusterRoleBinding" => {
                serde_json::from_value(doc.clone()).map(|r| rbac.add_cluster_role_binding(r))
            }
            _ => return Ok(false),
        };
        match parsed {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e.into()),
            Err(source) => Err(DocumentError::Shape {
                kind: kind.to_owned(),
                source,
            }),
        }
    }

    pub fn load_dir(dir: &Path) -> Result<StaticRbac, LoadError> {
        let mut rbac = StaticRbac::default();
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
                path: path.clone(),
                source,
            })?;
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&text).map_err(|source| LoadError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            for doc in docs.iter().filter(|d| !d.is_null()) {
                add_document(&mut rbac, doc).map_err(|source| LoadError::Document {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(rbac)
    }

    fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| LoadError::Read {
                    path: dir.to_owned(),
                    source,
                })?
                .path();
            if path.is_dir() {
                collect(&path, out)?;
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
        Ok(())
    }
}
