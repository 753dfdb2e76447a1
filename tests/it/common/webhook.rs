//! Webhook test support: the webhook served over real HTTPS with a certificate it issued, a
//! local server speaking SubjectAccessReview that evaluates real RBAC manifests, and
//! AdmissionReview bodies shaped as the apiserver sends them.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing};
use curio::{
    access::{
        authz::{Attributes, Authorizer, StaticRbac, SubjectAccessReviewer, manifests},
        identity::UserInfo,
    },
    cluster::Cluster,
    store::Store,
    webhook::{self, Webhook, certs, tls},
};
use curio_core::fixtures::{catalog_source, inline_spec, refresh_job};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use serde_json::{Value, json};

/// Who may approve and promote in team-a: bob both, carol promote only, alice neither
/// (she may create, update and delete sources, which the apiserver checks, not Curio).
pub fn approval_rbac() -> StaticRbac {
    let docs = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-admin"},
               "rules": [{"apiGroups": ["curio.dev"], "resources": ["catalogsources"],
                          "verbs": ["get", "list", "create", "update", "patch", "delete", "approve", "promote"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-promoter"},
               "rules": [{"apiGroups": ["curio.dev"], "resources": ["catalogsources"], "verbs": ["promote"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "curio-edit"},
               "rules": [{"apiGroups": ["curio.dev"], "resources": ["catalogsources", "refreshjobs"],
                          "verbs": ["get", "list", "create", "update", "patch", "delete"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "approvers", "namespace": "team-a"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-admin"},
               "subjects": [{"kind": "User", "name": "bob"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "promoters", "namespace": "team-a"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-promoter"},
               "subjects": [{"kind": "User", "name": "carol"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "editors", "namespace": "team-a"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-edit"},
               "subjects": [{"kind": "Group", "name": "team-a-editors"}]}),
    ];
    let mut rbac = StaticRbac::default();
    for doc in docs {
        assert!(manifests::add_document(&mut rbac, &doc).expect("valid RBAC"));
    }
    rbac
}

/// A local apiserver stand-in that answers SubjectAccessReviews from RBAC manifests.
pub struct SarServer {
    pub rbac: StaticRbac,
    pub calls: AtomicUsize,
    /// Answer 500 to every review (the authorizer is down).
    pub failing: AtomicBool,
    pub bodies: std::sync::Mutex<Vec<Value>>,
}

async fn review(
    State(server): State<Arc<SarServer>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    server.calls.fetch_add(1, Ordering::SeqCst);
    server.bodies.lock().unwrap().push(body.clone());
    if server.failing.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"kind": "Status", "code": 500, "message": "etcd unavailable"})),
        );
    }
    let sar: SubjectAccessReview = serde_json::from_value(body.clone()).expect("a SAR body");
    let ra = sar.spec.resource_attributes.clone().unwrap_or_default();
    assert_eq!(ra.group.as_deref(), Some("curio.dev"));
    const VERBS: [&str; 9] = [
        "get", "list", "watch", "create", "update", "patch", "delete", "approve", "promote",
    ];
    let asked = ra.verb.unwrap_or_default();
    let verb = VERBS
        .into_iter()
        .find(|v| *v == asked)
        .expect("a verb Curio asks about");
    let attributes = Attributes {
        user: UserInfo {
            username: sar.spec.user.clone().unwrap_or_default(),
            uid: sar.spec.uid.clone(),
            groups: sar.spec.groups.clone().unwrap_or_default(),
            extra: Default::default(),
        },
        group: curio::access::authz::API_GROUP,
        verb,
        resource: ra.resource.unwrap_or_default(),
        namespace: ra.namespace.unwrap_or_default(),
        name: ra.name,
    };
    let allowed = server.rbac.decide(&attributes).allowed();
    let mut response = body;
    response["status"] = json!({"allowed": allowed, "reason": if allowed { "RBAC: allowed by a RoleBinding" } else { "" }});
    (StatusCode::CREATED, Json(response))
}

/// Starts the SAR server; returns it and a kube client that talks to it.
pub async fn sar_server(rbac: StaticRbac) -> (Arc<SarServer>, kube::Client) {
    let server = Arc::new(SarServer {
        rbac,
        calls: AtomicUsize::new(0),
        failing: AtomicBool::new(false),
        bodies: Default::default(),
    });
    let router = Router::new()
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            routing::post(review),
        )
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let config = kube::Config::new(url.parse().unwrap());
    (server, kube::Client::try_from(config).unwrap())
}

/// The webhook on a loopback HTTPS port, and a client that trusts its CA (as the apiserver
/// trusts the configuration's caBundle).
pub struct Served {
    pub url: String,
    pub http: reqwest::Client,
    /// The webhook's metrics, registered as the controller registers them.
    pub registry: Arc<curio::telemetry::Registry>,
}

pub async fn serve(
    store: Store,
    authorizer: Arc<dyn Authorizer>,
    cluster: Option<Arc<dyn Cluster>>,
) -> Served {
    serve_with_policies(store, authorizer, cluster, None).await
}

/// [`serve`], enforcing `policies` at admission.
pub async fn serve_with_policies(
    store: Store,
    authorizer: Arc<dyn Authorizer>,
    cluster: Option<Arc<dyn Cluster>>,
    policies: Option<curio::cluster::policies::Policies>,
) -> Served {
    let issued = certs::issue(&["localhost".to_owned()], chrono::Utc::now()).unwrap();
    let cert = tls::SwappableCert::new(
        tls::certified_key(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap(),
    );
    let mut registry = curio::telemetry::registry();
    let metrics = curio::webhook::metrics::AdmissionMetrics::register(&mut registry);
    let handler = Arc::new(Webhook {
        store,
        authorizer,
        cluster,
        allow_http: false,
        policies,
        metrics,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = cert.server_config().unwrap();
    tokio::spawn(curio::server::serve_tls(
        listener,
        webhook::router(handler),
        config,
        None,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(issued.ca_pem.as_bytes()).unwrap())
        .https_only(true)
        .build()
        .unwrap();
    Served {
        url: format!("https://localhost:{port}{}", webhook::VALIDATE_PATH),
        http,
        registry: Arc::new(registry),
    }
}

pub fn sar_authorizer(client: kube::Client) -> Arc<dyn Authorizer> {
    Arc::new(SubjectAccessReviewer::new(
        client,
        std::time::Duration::from_secs(5),
    ))
}

/// A user as the apiserver describes it in `userInfo`.
pub fn user(name: &str, groups: &[&str]) -> Value {
    let mut groups: Vec<&str> = groups.to_vec();
    groups.push("system:authenticated");
    json!({"username": name, "uid": format!("uid-{name}"), "groups": groups,
           "extra": {"authentication.kubernetes.io/credential-id": [format!("JTI={name}-1")]}})
}

/// An AdmissionReview as kube-apiserver sends it to a validating webhook.
#[allow(clippy::too_many_arguments)]
pub fn admission_review(
    uid: &str,
    operation: &str,
    resource: &str,
    name: &str,
    user: Value,
    object: Option<Value>,
    old_object: Option<Value>,
    dry_run: bool,
) -> Value {
    let kind = if resource == "catalogsources" {
        "CatalogSource"
    } else {
        "RefreshJob"
    };
    let gvk = json!({"group": "curio.dev", "version": "v1alpha1", "kind": kind});
    let gvr = json!({"group": "curio.dev", "version": "v1alpha1", "resource": resource});
    let options = match operation {
        "CREATE" => {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"})
        }
        "UPDATE" => {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions", "fieldManager": "kubectl-client-side-apply"})
        }
        _ => {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
        }
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk, "resource": gvr,
            "requestKind": gvk, "requestResource": gvr,
            "name": name,
            "namespace": "team-a",
            "operation": operation,
            "userInfo": user,
            "object": object,
            "oldObject": old_object,
            "dryRun": dry_run,
            "options": options,
        }
    })
}

/// A CatalogSource as stored, with the apiserver's metadata.
pub fn source_object(name: &str, generation: i64, reason: Option<&str>, curation: Value) -> Value {
    let source = catalog_source("team-a", name)
        .uid(&format!("uid-source-{name}"))
        .generation(generation)
        .resource_version(&format!("{}", 100 + generation))
        .created("2026-11-22T10:00:00Z")
        .spec(inline_spec(json!([
            {"kind": "Model", "name": "granite-3-8b", "version": "3.0", "provider": "IBM", "license": "apache-2.0"},
            {"kind": "Model", "name": "llama-3-8b", "version": "3", "provider": "Meta"}])))
        .spec_field("curation", curation);
    match reason {
        Some(reason) => source.reason(reason).json(),
        None => source.json(),
    }
}

pub fn job_object(name: &str, source: &str, reason: &str) -> Value {
    refresh_job("team-a", name)
        .uid(&format!("uid-job-{name}"))
        .generation(1)
        .created("2026-11-22T10:00:00Z")
        .for_source(source)
        .spec_field("reason", reason.into())
        .json()
}

/// Posts a review; returns the HTTP status and the `response` part of the answer.
pub async fn post(served: &Served, review: &Value) -> (u16, Value) {
    let response = served
        .http
        .post(&served.url)
        .json(review)
        .send()
        .await
        .expect("webhook request");
    let code = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON answer");
    assert_eq!(body["kind"], "AdmissionReview", "{body}");
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1", "{body}");
    (code, body["response"].clone())
}
