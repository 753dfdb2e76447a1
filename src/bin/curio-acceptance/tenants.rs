//! The tenants and their catalogs, as values: names, tokens, secret markers, the manifests of
//! the standalone folder, and which assets a change round rewrites.

use serde_json::{Value, json};

/// Every asset's description carries `MARKER_PREFIX<tenant>-…`: a response holding another
/// tenant's marker is a cross-tenant leak.
pub const MARKER_PREFIX: &str = "curio-secret-";

#[derive(Clone, Debug)]
pub struct Tenant {
    pub index: usize,
    pub namespace: String,
    /// Assets in all, over three sources: inline (a tenth), ConfigMap and URL (the rest, half
    /// each).
    pub assets: usize,
    /// Per asset, the revision its description carries (bumped by change rounds).
    pub revisions: Vec<u32>,
    /// Bearer tokens of the viewer and of the models-only user: static ones in standalone
    /// mode, ServiceAccount tokens from the apiserver in cluster mode.
    pub viewer_token: String,
    pub models_token: String,
}

/// Where an asset lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Inline,
    ConfigMap,
    Url,
}

impl Tenant {
    /// Tenant `index`, in namespace `<prefix>-<index>`.
    pub fn new(prefix: &str, index: usize, assets: usize) -> Self {
        let namespace = format!("{prefix}-{index:03}");
        Self {
            index,
            viewer_token: format!("viewer-{namespace}"),
            models_token: format!("models-{namespace}"),
            namespace,
            assets,
            revisions: vec![0; assets],
        }
    }

    /// The namespace of tenant `index` of the same run.
    pub fn sibling(&self, index: usize) -> String {
        let prefix = self
            .namespace
            .rsplit_once('-')
            .map_or(self.namespace.as_str(), |(p, _)| p);
        format!("{prefix}-{index:03}")
    }

    pub fn viewer_token(&self) -> String {
        self.viewer_token.clone()
    }

    pub fn models_token(&self) -> String {
        self.models_token.clone()
    }

    pub fn marker(&self) -> String {
        format!("{MARKER_PREFIX}{}-", self.namespace)
    }

    pub fn part(&self, asset: usize) -> Part {
        let inline = self.assets / 10;
        if asset < inline {
            Part::Inline
        } else if asset < inline + (self.assets - inline) / 2 {
            Part::ConfigMap
        } else {
            Part::Url
        }
    }

    pub fn kind(asset: usize) -> &'static str {
        ["Model", "Model", "McpServer", "Agent"][asset % 4]
    }

    /// The API's plural of [`Tenant::kind`].
    pub fn plural(asset: usize) -> &'static str {
        ["models", "models", "mcpservers", "agents"][asset % 4]
    }

    pub fn name(asset: usize) -> String {
        format!("asset-{asset:05}")
    }

    /// The text a reader sees once `revision` of the asset is in the API.
    pub fn revision_text(&self, asset: usize, revision: u32) -> String {
        format!("{}{asset}-rev-{revision}", self.marker())
    }

    fn asset(&self, asset: usize) -> Value {
        json!({
            "kind": Self::kind(asset),
            "name": Self::name(asset),
            "version": "1",
            "displayName": format!("Asset {asset} of {}", self.namespace),
            "description": format!("Owned by {} only: {}", self.namespace,
                self.revision_text(asset, self.revisions[asset])),
            "provider": (["Example", "Acme", "Initech"][asset % 3]),
            "license": (["apache-2.0", "mit"][asset % 2]),
            "tags": ["llm", format!("family-{}", asset % 10)],
            "labels": {"task": "chat"},
        })
    }

    fn catalog(&self, part: Part) -> Value {
        let assets: Vec<Value> = (0..self.assets)
            .filter(|a| self.part(*a) == part)
            .map(|a| self.asset(a))
            .collect();
        json!({"apiVersion": "curio.dev/v1alpha1", "kind": "Catalog", "assets": assets})
    }

    /// The files of this tenant's folder (`<namespace>/…`) and served file
    /// (`files/<namespace>/catalog.json`), as (relative path, content).
    pub fn files(&self) -> Vec<(String, String)> {
        let ns = &self.namespace;
        let doc = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
        // A group (the token file's users) and a ServiceAccount (cluster mode's users).
        let binding = |name: &str, role: &str, group: String, account: &str| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": name, "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                   "subjects": [{"kind": "Group", "name": group},
                                {"kind": "ServiceAccount", "name": account, "namespace": ns}]})
        };
        let mut files = vec![
            (
                format!("{ns}/namespace.json"),
                doc(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
            ),
            (
                format!("{ns}/viewers.json"),
                doc(binding(
                    "viewers",
                    ROLE_VIEW,
                    format!("{ns}-viewers"),
                    VIEWER_ACCOUNT,
                )),
            ),
            (
                format!("{ns}/model-viewers.json"),
                doc(binding(
                    "model-viewers",
                    ROLE_MODELS_VIEW,
                    format!("{ns}-model-viewers"),
                    MODELS_ACCOUNT,
                )),
            ),
            (
                format!("{ns}/admins.json"),
                doc(binding(
                    "admins",
                    ROLE_ADMIN,
                    format!("{ns}-admins"),
                    ADMIN_ACCOUNT,
                )),
            ),
            (
                format!("{ns}/inline.json"),
                doc(
                    json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
                    "metadata": {"name": "inline", "namespace": ns},
                    "spec": {"source": {"inline": {"assets": self.catalog(Part::Inline)["assets"]}}}}),
                ),
            ),
            (
                format!("{ns}/url.json"),
                doc(
                    json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
                    "metadata": {"name": "url", "namespace": ns},
                    "spec": {"interval": "1h", "source": {"url": {"url": format!("${{CURIO_URL}}/files/{ns}/catalog.json")}}}}),
                ),
            ),
        ];
        files.push(self.config_map_file());
        files.push(self.url_file());
        files
    }

    /// The ConfigMap source's file (ConfigMap and source together).
    pub fn config_map_file(&self) -> (String, String) {
        let ns = &self.namespace;
        let text = serde_json::to_string(&self.catalog(Part::ConfigMap)).unwrap_or_default();
        let docs = [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "catalog", "namespace": ns},
                   "data": {"catalog.yaml": text}}),
            json!({"apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
                   "metadata": {"name": "configmap", "namespace": ns},
                   "spec": {"source": {"configMap": {"name": "catalog"}}}}),
        ];
        // Two YAML documents (JSON is YAML).
        let body = docs
            .iter()
            .map(|d| serde_json::to_string(d).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n");
        (format!("{ns}/configmap.yaml"), body)
    }

    /// The URL source's served catalog.
    pub fn url_file(&self) -> (String, String) {
        (
            format!("files/{}/catalog.json", self.namespace),
            serde_json::to_string(&self.catalog(Part::Url)).unwrap_or_default(),
        )
    }

    /// Bumps the revision of `share` (e.g. 0.01) of the assets of `part`, chosen by `round`;
    /// the assets changed.
    pub fn change(&mut self, part: Part, share: f64, round: usize) -> Vec<usize> {
        let in_part: Vec<usize> = (0..self.assets).filter(|a| self.part(*a) == part).collect();
        let count = ((self.assets as f64 * share).ceil() as usize)
            .max(1)
            .min(in_part.len());
        let changed: Vec<usize> = (0..count)
            .map(|i| in_part[(round * 7919 + i * 13) % in_part.len()])
            .collect();
        for a in &changed {
            self.revisions[*a] += 1;
        }
        changed
    }
}

/// The cluster roles the tenants' bindings name (prefixed: a cluster may have Curio's own).
pub const ROLE_ADMIN: &str = "curio-acceptance-admin";
pub const ROLE_VIEW: &str = "curio-acceptance-view";
pub const ROLE_MODELS_VIEW: &str = "curio-acceptance-models-view";
/// Each tenant's ServiceAccounts, bound like the token file's groups.
pub const VIEWER_ACCOUNT: &str = "viewer";
pub const MODELS_ACCOUNT: &str = "models";
pub const ADMIN_ACCOUNT: &str = "admin";

/// The shared manifests: the cluster roles.
pub fn shared_files() -> Vec<(String, String)> {
    let role = |name: &str, rules: Value| {
        serde_json::to_string(&json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}))
        .unwrap_or_default()
    };
    let roles = [
        role(
            ROLE_ADMIN,
            json!([{"apiGroups": ["curio.dev"], "resources": ["*"], "verbs": ["*"]},
                   {"apiGroups": ["catalog.curio.dev"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]),
        ),
        role(
            ROLE_VIEW,
            json!([{"apiGroups": ["curio.dev"], "resources": ["catalogsources", "refreshjobs", "auditevents", "models", "mcpservers", "agents"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["catalog.curio.dev"], "resources": ["models", "mcpservers", "agents"], "verbs": ["get", "list", "watch"]}]),
        ),
        role(
            ROLE_MODELS_VIEW,
            json!([{"apiGroups": ["curio.dev", "catalog.curio.dev"], "resources": ["models"], "verbs": ["get", "list", "watch"]}]),
        ),
    ]
    .join("\n---\n");
    vec![("roles.yaml".into(), roles)]
}

/// The token file (`token,user,uid,"groups"`): per tenant a viewer and a models-only user.
pub fn token_file(tenants: &[Tenant]) -> String {
    let mut tokens = String::new();
    for t in tenants {
        let ns = &t.namespace;
        tokens.push_str(&format!(
            "{},viewer-{ns},v{},\"{ns}-viewers\"\n",
            t.viewer_token(),
            t.index
        ));
        tokens.push_str(&format!(
            "{},models-{ns},m{},\"{ns}-model-viewers\"\n",
            t.models_token(),
            t.index
        ));
    }
    tokens
}

/// Namespaces of markers in `body` other than `own`'s: each is a leak.
pub fn foreign_markers(body: &str, own: &str) -> usize {
    body.match_indices(MARKER_PREFIX)
        .filter(|(at, _)| {
            let rest = &body[at + MARKER_PREFIX.len()..];
            !rest.starts_with(own)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_marker_is_found_and_ones_own_is_not() {
        let a = Tenant::new("acc", 1, 100);
        let b = Tenant::new("acc", 2, 100);
        assert_eq!(Tenant::new("acc1f2e3d", 1, 10).sibling(2), "acc1f2e3d-002");
        let body = format!("x {} y {}", a.revision_text(3, 0), b.revision_text(4, 1));
        assert_eq!(foreign_markers(&body, "acc-001-"), 1);
        assert_eq!(foreign_markers(&a.revision_text(3, 0), "acc-001-"), 0);
    }

    #[test]
    fn parts_split_the_catalog_and_changes_bump_revisions() {
        let mut t = Tenant::new("acc", 0, 1000);
        let inline = (0..1000).filter(|a| t.part(*a) == Part::Inline).count();
        let url = (0..1000).filter(|a| t.part(*a) == Part::Url).count();
        assert_eq!((inline, url), (100, 450));
        let changed = t.change(Part::Url, 0.01, 3);
        assert_eq!(changed.len(), 10);
        assert!(
            changed
                .iter()
                .all(|a| t.part(*a) == Part::Url && t.revisions[*a] == 1)
        );
    }
}
