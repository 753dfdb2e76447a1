//! API test support: two seeded tenants, five users plus anonymous, a real server on loopback.

use std::{collections::BTreeSet, sync::Arc};

use curio::{
    access::{
        authn::StaticTokens,
        authz::{Authorizer, StaticRbac, manifests},
    },
    api::{self, ApiState},
    catalog::AssetKind,
    server,
    store::{Namespace, ObjectRecord, Store},
};
use serde_json::{Value, json};

use super::{audit, ns, record, refresh};

pub const TOKENS: &str = "\
alice-token,alice,1,\"team-a-admins\"
vera-token,vera,2
mo-token,mo,3
bob-token,bob,4
nobody-token,nobody,5
";

pub fn rbac_documents() -> Vec<Value> {
    let binding = |ns: &str, name: &str, role: &str, subject: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject]
        })
    };
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-admin"},
               "rules": [{"apiGroups": ["curio.dev", "catalog.curio.dev"], "resources": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-view"},
               "rules": [{"apiGroups": ["curio.dev"],
                          "resources": ["catalogsources", "refreshjobs", "auditevents", "models", "mcpservers", "agents"],
                          "verbs": ["get", "list", "watch"]},
                         {"apiGroups": ["catalog.curio.dev"],
                          "resources": ["models", "mcpservers", "agents"],
                          "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-models-view"},
               "rules": [{"apiGroups": ["curio.dev", "catalog.curio.dev"], "resources": ["models"], "verbs": ["get", "list", "watch"]}]}),
        binding(
            "team-a",
            "admins",
            "curio-admin",
            json!({"kind": "Group", "name": "team-a-admins"}),
        ),
        binding(
            "team-a",
            "viewers",
            "curio-view",
            json!({"kind": "User", "name": "vera"}),
        ),
        binding(
            "team-a",
            "models",
            "curio-models-view",
            json!({"kind": "User", "name": "mo"}),
        ),
        binding(
            "team-b",
            "admins",
            "curio-admin",
            json!({"kind": "User", "name": "bob"}),
        ),
    ]
}

pub fn static_rbac() -> StaticRbac {
    let mut rbac = StaticRbac::default();
    for doc in rbac_documents() {
        assert!(manifests::add_document(&mut rbac, &doc).expect("valid RBAC document"));
    }
    rbac
}

/// What each user may read in each namespace: the matrix's source of truth.
pub fn permissions(user: &str, namespace: &str) -> BTreeSet<&'static str> {
    let all = [
        "catalogsources",
        "refreshjobs",
        "auditevents",
        "models",
        "mcpservers",
        "agents",
    ];
    match (user, namespace) {
        ("alice" | "vera", "team-a") | ("bob", "team-b") => all.into_iter().collect(),
        ("mo", "team-a") => ["models"].into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

/// Two tenants with a source, a job, an asset of every kind and audit events each.
pub async fn seed(store: &Store) {
    for tenant in ["team-a", "team-b"] {
        let n = ns(tenant);
        let assets = vec![
            record(AssetKind::Model, &format!("granite-{tenant}"), "1"),
            record(AssetKind::Model, &format!("llama-{tenant}"), "3.1"),
            record(AssetKind::McpServer, &format!("github-{tenant}"), "1"),
            record(AssetKind::Agent, &format!("triage-{tenant}"), "1"),
        ];
        refresh(store, &n, "src-inline", assets).await;
        store
            .upsert_source(&ObjectRecord {
                namespace: n.clone(),
                name: "src-inline".into(),
                uid: format!("uid-src-{tenant}"),
                generation: 1,
                spec: json!({"source": {"inline": {"assets": []}}}),
                status: Some(json!({"assetCount": 4, "conditions": []})),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("source");
        store
            .upsert_job(&ObjectRecord {
                namespace: n.clone(),
                name: "job-1".into(),
                uid: format!("uid-job-{tenant}"),
                generation: 1,
                spec: json!({"sourceRef": {"name": "src-inline"}, "reason": "nightly"}),
                status: Some(json!({"phase": "Succeeded", "attempts": 1})),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("job");
        store
            .record_audit_events(&[audit(&n, "create", "src-inline")])
            .await
            .expect("audit");
    }
}

pub fn static_state(store: Store) -> ApiState {
    ApiState::new(
        store,
        Arc::new(StaticTokens::parse(TOKENS).expect("tokens")),
        Arc::new(static_rbac()),
    )
}

pub fn state_with(store: Store, authz: Arc<dyn Authorizer>) -> ApiState {
    ApiState {
        authz,
        ..static_state(store)
    }
}

/// Serves the router on a loopback port; returns its base URL.
pub async fn spawn(state: ApiState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = api::router(state);
    tokio::spawn(async move {
        server::serve_http(listener, router, std::future::pending())
            .await
            .ok();
    });
    format!("http://{addr}")
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// GET `path` as `token` (None: anonymous) with extra headers; returns code and JSON body.
    pub async fn get(
        &self,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("request");
        let code = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub fn namespace_ok(name: &str) -> Namespace {
    ns(name)
}

/// One request of a table-driven test and the status it must get.
pub struct Expect<'a> {
    pub token: Option<&'a str>,
    pub path: String,
    pub headers: &'a [(&'a str, &'a str)],
    pub code: u16,
    /// Printed when the answer differs.
    pub why: &'a str,
}

impl<'a> Expect<'a> {
    pub fn new(token: Option<&'a str>, path: impl Into<String>, code: u16) -> Self {
        Self {
            token,
            path: path.into(),
            headers: &[],
            code,
            why: "",
        }
    }

    pub fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Self {
        Self { headers, ..self }
    }

    pub fn why(self, why: &'a str) -> Self {
        Self { why, ..self }
    }
}

impl Client {
    /// Sends every request and checks its status; a refusal must be a `Status` object.
    pub async fn expect_all(&self, cases: &[Expect<'_>]) {
        for case in cases {
            let (code, body) = self.get(case.token, &case.path, case.headers).await;
            assert_eq!(
                code, case.code,
                "{:?} GET {} {}: {body}",
                case.token, case.path, case.why
            );
            if code >= 400 {
                assert_eq!(body["kind"], "Status", "{}: {body}", case.path);
            }
        }
    }
}
