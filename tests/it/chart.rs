//! The Helm chart, rendered by the real `helm` (HELM, else on PATH; scripts/test.sh provides
//! one) with default values and with every optional feature on, and checked: restricted pod
//! security, least-privilege controller RBAC, aggregated roles, CRDs equal to `crds/`, and a
//! `kubectl apply --dry-run=client` against a discovery endpoint that knows real API groups.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use axum::{
    Json, Router, extract::Path as UrlPath, http::StatusCode, response::IntoResponse, routing::get,
};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> String {
    let variable = name.to_uppercase();
    if let Ok(path) = std::env::var(&variable)
        && !path.is_empty()
    {
        return path;
    }
    let on_path = Command::new(name).arg("version").output().is_ok();
    assert!(
        on_path,
        "no {name}: set {variable} or run the suite with scripts/test.sh, which fetches one"
    );
    name.to_owned()
}

/// The value files the chart is rendered with: the defaults and each file in `ci/`.
fn value_sets() -> Vec<Option<PathBuf>> {
    let mut sets = vec![None];
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("charts/curio/ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    sets.extend(files.into_iter().map(Some));
    assert!(sets.len() >= 3, "default values and at least two ci/ sets");
    sets
}

fn render(values: Option<&Path>) -> (String, Vec<Value>) {
    let mut command = Command::new(tool("helm"));
    command.args([
        "template",
        "curio",
        root().join("charts/curio").to_str().unwrap(),
        "--namespace",
        "curio-system",
        "--include-crds",
    ]);
    if let Some(values) = values {
        command.args(["--values", values.to_str().unwrap()]);
    }
    let output = command.output().expect("run helm");
    assert!(
        output.status.success(),
        "helm template {values:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple::<Value>(&text)
        .expect("helm renders YAML")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect();
    (text, docs)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn every_container_runs_restricted() {
    for values in value_sets() {
        let (_, docs) = render(values.as_deref());
        let mut checked = 0;
        for workload in docs.iter().filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("Deployment" | "Job" | "StatefulSet" | "DaemonSet")
            )
        }) {
            let pod = &workload["spec"]["template"]["spec"];
            let what = format!("{} {}", workload["kind"], workload["metadata"]["name"]);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{what}"
            );
            assert_ne!(pod["hostNetwork"], true, "{what}");
            assert_ne!(pod["hostPID"], true, "{what}");
            let containers = pod["containers"]
                .as_array()
                .into_iter()
                .chain(pod["initContainers"].as_array())
                .flatten();
            for container in containers {
                let name = format!("{what} / {}", container["name"]);
                let security = &container["securityContext"];
                assert_eq!(security["runAsNonRoot"], true, "{name}");
                assert!(
                    security["runAsUser"].as_i64().is_some_and(|u| u > 0),
                    "{name}"
                );
                assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
                assert_ne!(security["privileged"], true, "{name}");
                assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");
                assert!(security["capabilities"]["add"].is_null(), "{name}");
                assert_eq!(
                    security["seccompProfile"]["type"], "RuntimeDefault",
                    "{name}"
                );
                assert!(
                    container["resources"]["requests"]["memory"].is_string(),
                    "{name}"
                );
                assert!(
                    container["resources"]["limits"]["memory"].is_string(),
                    "{name}"
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 3,
            "controller, api and migrate containers ({values:?})"
        );
        // The long-running containers have probes.
        let deployment = named(&docs, "Deployment", "curio");
        for container in deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            assert!(
                container["livenessProbe"].is_object(),
                "{}",
                container["name"]
            );
            assert!(
                container["readinessProbe"].is_object(),
                "{}",
                container["name"]
            );
        }
    }
}

/// (apiGroup, resource, verb, resourceName or "*") the controller may be granted: what it
/// watches and patches, Leases in its own namespace, Events, TokenReview and
/// SubjectAccessReview create; with self-managed webhook certificates, its own Secret and
/// ValidatingWebhookConfiguration.
fn allowed_cluster_rules() -> BTreeSet<(String, String, String, String)> {
    let mut allowed = BTreeSet::new();
    let mut add = |group: &str, resources: &[&str], verbs: &[&str], names: &[&str]| {
        for resource in resources {
            for verb in verbs {
                for name in names {
                    allowed.insert((
                        group.into(),
                        (*resource).into(),
                        (*verb).into(),
                        (*name).into(),
                    ));
                }
            }
        }
    };
    add(
        "curio.dev",
        &["catalogsources", "refreshjobs"],
        &["get", "list", "watch", "update", "patch"],
        &["*"],
    );
    add("curio.dev", &["refreshjobs"], &["delete"], &["*"]);
    add(
        "curio.dev",
        &["catalogsources/status", "refreshjobs/status"],
        &["get", "update", "patch"],
        &["*"],
    );
    add(
        "curio.dev",
        &["catalogsources/finalizers"],
        &["update"],
        &["*"],
    );
    // CatalogPolicies are read, and only their status written; namespaces for their labels.
    add(
        "curio.dev",
        &["catalogpolicies"],
        &["get", "list", "watch"],
        &["*"],
    );
    add(
        "curio.dev",
        &["catalogpolicies/status"],
        &["get", "update", "patch"],
        &["*"],
    );
    add("", &["namespaces"], &["get", "list", "watch"], &["*"]);
    add("", &["configmaps"], &["get", "list", "watch"], &["*"]);
    add("", &["secrets"], &["get"], &["*"]);
    add("events.k8s.io", &["events"], &["create", "patch"], &["*"]);
    add(
        "authentication.k8s.io",
        &["tokenreviews"],
        &["create"],
        &["*"],
    );
    add(
        "authorization.k8s.io",
        &["subjectaccessreviews"],
        &["create"],
        &["*"],
    );
    add(
        "admissionregistration.k8s.io",
        &["validatingwebhookconfigurations"],
        &["get", "update"],
        &["curio"],
    );
    allowed
}

fn allowed_namespace_rules() -> BTreeSet<(String, String, String, String)> {
    let mut allowed = BTreeSet::new();
    allowed.insert((
        "coordination.k8s.io".into(),
        "leases".into(),
        "create".into(),
        "*".into(),
    ));
    for verb in ["get", "update"] {
        allowed.insert((
            "coordination.k8s.io".into(),
            "leases".into(),
            verb.into(),
            "curio".into(),
        ));
        allowed.insert((
            "".into(),
            "secrets".into(),
            verb.into(),
            "curio-webhook-tls".into(),
        ));
    }
    allowed.insert(("".into(), "secrets".into(), "create".into(), "*".into()));
    allowed
}

fn grants(role: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert!(
            rule["nonResourceURLs"].is_null(),
            "no non-resource URLs: {rule}"
        );
        let names: Vec<String> = rule["resourceNames"]
            .as_array()
            .map(|n| n.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_else(|| vec!["*".into()]);
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    for name in &names {
                        let (g, r, v) = (
                            group.as_str().unwrap(),
                            resource.as_str().unwrap(),
                            verb.as_str().unwrap(),
                        );
                        assert!(g != "*" && r != "*" && v != "*", "no wildcards: {rule}");
                        out.insert((g.into(), r.into(), v.into(), name.clone()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_controller_is_granted_nothing_beyond_its_list() {
    for values in value_sets() {
        let (_, docs) = render(values.as_deref());
        let cluster_role = named(&docs, "ClusterRole", "curio-controller");
        let granted = grants(cluster_role);
        let allowed = allowed_cluster_rules();
        let beyond: Vec<_> = granted.difference(&allowed).collect();
        assert!(
            beyond.is_empty(),
            "ClusterRole grants more than allowed ({values:?}): {beyond:?}"
        );
        // What it cannot work without.
        for needed in [
            ("curio.dev", "catalogsources", "watch"),
            ("curio.dev", "refreshjobs/status", "update"),
            ("authorization.k8s.io", "subjectaccessreviews", "create"),
            ("authentication.k8s.io", "tokenreviews", "create"),
            ("events.k8s.io", "events", "create"),
            ("curio.dev", "catalogpolicies", "watch"),
            ("curio.dev", "catalogpolicies/status", "patch"),
            ("", "namespaces", "watch"),
        ] {
            assert!(
                granted.contains(&(
                    needed.0.into(),
                    needed.1.into(),
                    needed.2.into(),
                    "*".into()
                )),
                "missing {needed:?}"
            );
        }
        let role = named(&docs, "Role", "curio-controller");
        assert_eq!(role["metadata"]["namespace"], "curio-system");
        let granted = grants(role);
        let allowed = allowed_namespace_rules();
        let beyond: Vec<_> = granted.difference(&allowed).collect();
        assert!(
            beyond.is_empty(),
            "Role grants more than allowed ({values:?}): {beyond:?}"
        );
        assert!(granted.contains(&(
            "coordination.k8s.io".into(),
            "leases".into(),
            "update".into(),
            "curio".into()
        )));

        // Bound to the chart's ServiceAccount only.
        for binding in of_kind(&docs, "ClusterRoleBinding")
            .into_iter()
            .chain(of_kind(&docs, "RoleBinding"))
        {
            assert_eq!(
                binding["subjects"],
                json!([{"kind": "ServiceAccount", "name": "curio", "namespace": "curio-system"}]),
                "{binding}"
            );
        }
        // No other role in the chart is bound to anything; besides its own, the built-in
        // roles every extension API server is bound to (the aggregated API is on by default).
        let bound: BTreeSet<&str> = of_kind(&docs, "ClusterRoleBinding")
            .into_iter()
            .chain(of_kind(&docs, "RoleBinding"))
            .map(|b| b["roleRef"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            bound,
            BTreeSet::from([
                "curio-controller",
                "system:auth-delegator",
                "extension-apiserver-authentication-reader"
            ])
        );
        let reader = named(
            &docs,
            "RoleBinding",
            "curio-extension-apiserver-authentication-reader",
        );
        assert_eq!(reader["metadata"]["namespace"], "kube-system");
        assert_eq!(reader["roleRef"]["kind"], "Role");
        // The migration Job has no Kubernetes credentials at all.
        let job = named(&docs, "Job", "curio-migrate");
        assert_eq!(
            job["spec"]["template"]["spec"]["automountServiceAccountToken"],
            false
        );
    }
}

#[test]
fn aggregated_roles_carry_their_labels_and_verbs() {
    let (_, docs) = render(None);
    let label = |role: &Value, into: &str| {
        role["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{into}")]
            == "true"
    };
    let view = named(&docs, "ClusterRole", "curio-view");
    let edit = named(&docs, "ClusterRole", "curio-edit");
    let admin = named(&docs, "ClusterRole", "curio-admin");
    assert!(label(view, "view") && label(view, "edit") && label(view, "admin"));
    assert!(!label(edit, "view") && label(edit, "edit") && label(edit, "admin"));
    assert!(!label(admin, "view") && !label(admin, "edit") && label(admin, "admin"));
    let verbs = |role: &Value| -> BTreeSet<(String, String)> {
        grants(role)
            .into_iter()
            .map(|(_, r, v, _)| (r, v))
            .collect()
    };
    let (view, edit, admin) = (verbs(view), verbs(edit), verbs(admin));
    for resource in [
        "models",
        "mcpservers",
        "agents",
        "auditevents",
        "catalogsources",
    ] {
        assert!(
            view.contains(&(resource.into(), "list".into())),
            "{resource}"
        );
    }
    assert!(
        !view.iter().any(
            |(_, v)| ["create", "update", "delete", "approve", "promote"].contains(&v.as_str())
        )
    );
    assert!(edit.contains(&("catalogsources".into(), "update".into())));
    assert!(
        !edit.iter().any(|(_, v)| v == "approve" || v == "promote"),
        "edit cannot approve"
    );
    assert!(admin.contains(&("catalogsources".into(), "approve".into())));
    assert!(admin.contains(&("catalogsources".into(), "promote".into())));
    // Policies are the platform's: anyone with view may read them (bound cluster-wide), and
    // none of Curio's roles may write them (cluster admins do).
    assert!(view.contains(&("catalogpolicies".into(), "list".into())));
    for role in [&view, &edit, &admin] {
        assert!(
            !role
                .iter()
                .any(|(r, v)| r == "catalogpolicies"
                    && !["get", "list", "watch"].contains(&v.as_str())),
            "{role:?}"
        );
    }
}

#[test]
fn the_apiservice_reaches_the_api_containers_https_port() {
    let (_, docs) = render(None);
    let apiservice = named(&docs, "APIService", "v1alpha1.catalog.curio.dev");
    assert_eq!(apiservice["spec"]["group"], "catalog.curio.dev");
    let service_name = apiservice["spec"]["service"]["name"].as_str().unwrap();
    assert_eq!(apiservice["spec"]["service"]["namespace"], "curio-system");
    let service = named(&docs, "Service", service_name);
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == apiservice["spec"]["service"]["port"])
        .expect("the Service has the APIService's port");
    let target = port["targetPort"].as_str().unwrap();
    let deployment = named(&docs, "Deployment", "curio");
    let api = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap();
    let container_port = api["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == target)
        .expect("the container names the target port");
    let listen = format!(
        "--secure-listen=0.0.0.0:{}",
        container_port["containerPort"]
    );
    assert!(
        api["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == &json!(listen)),
        "{api}"
    );
    // The chart's view role reads the new group.
    let view = grants(named(&docs, "ClusterRole", "curio-view"));
    assert!(view.contains(&(
        "catalog.curio.dev".into(),
        "models".into(),
        "watch".into(),
        "*".into()
    )));
    // Off: no APIService, no HTTPS listener, no extension-apiserver bindings.
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off.yaml");
    std::fs::write(&off, "aggregatedApi: {enabled: false}\n").unwrap();
    let (text, docs) = render(Some(&off));
    assert!(of_kind(&docs, "APIService").is_empty());
    assert!(!text.contains("--secure-listen"));
    assert!(!text.contains("system:auth-delegator"));
}

#[test]
fn the_chart_crds_equal_the_generated_ones() {
    let generated = root().join("crds");
    let chart = root().join("charts/curio/crds");
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&generated), names(&chart), "the same files");
    for name in names(&generated) {
        assert_eq!(
            std::fs::read_to_string(generated.join(&name)).unwrap(),
            std::fs::read_to_string(chart.join(&name)).unwrap(),
            "charts/curio/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/curio/crds/"
        );
    }
    // And helm renders them unchanged.
    let (_, docs) = render(None);
    let rendered = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(rendered.len(), 3);
    for crd in rendered {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let file: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(generated.join(format!("{name}.yaml"))).unwrap(),
        )
        .unwrap();
        assert_eq!(crd, &file, "{name}");
    }
}

#[test]
fn the_webhook_configuration_matches_the_service_and_settings() {
    for values in value_sets() {
        let (_, docs) = render(values.as_deref());
        let configuration = named(&docs, "ValidatingWebhookConfiguration", "curio");
        let webhook = &configuration["webhooks"][0];
        assert_eq!(webhook["sideEffects"], "NoneOnDryRun");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(webhook["clientConfig"]["service"]["name"], "curio-webhook");
        assert_eq!(webhook["clientConfig"]["service"]["path"], "/validate");
        assert_eq!(
            webhook["rules"][0]["resources"],
            json!(["catalogsources", "refreshjobs"])
        );
        let service = named(&docs, "Service", "curio-webhook");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
        let deployment = named(&docs, "Deployment", "curio");
        let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.contains(&"--webhook-configuration=curio"), "{args:?}");
        let cert_manager =
            configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str();
        match cert_manager {
            Some(from) => {
                assert_eq!(from, "curio-system/curio-webhook");
                named(&docs, "Certificate", "curio-webhook");
                assert!(args.contains(&"--webhook-cert-dir=/certs"));
            }
            None => assert!(args.contains(&"--webhook-self-managed")),
        }
    }
    let (_, defaults) = render(None);
    let configuration = named(&defaults, "ValidatingWebhookConfiguration", "curio");
    assert_eq!(
        configuration["webhooks"][0]["failurePolicy"], "Fail",
        "fail closed by default"
    );
    assert_eq!(
        named(&defaults, "Deployment", "curio")["spec"]["replicas"],
        2
    );
}

/// Discovery documents for the API groups a 1.30 cluster with cert-manager and the
/// Prometheus operator serves: enough for kubectl to map every kind the chart renders.
fn discovery() -> BTreeMap<String, Value> {
    let resource = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind,
               "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    let groups: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "",
            "v1",
            vec![
                resource("configmaps", "ConfigMap", true),
                resource("secrets", "Secret", true),
                resource("services", "Service", true),
                resource("serviceaccounts", "ServiceAccount", true),
                resource("namespaces", "Namespace", false),
                resource("pods", "Pod", true),
            ],
        ),
        (
            "apps",
            "v1",
            vec![
                resource("deployments", "Deployment", true),
                resource("statefulsets", "StatefulSet", true),
            ],
        ),
        (
            "batch",
            "v1",
            vec![
                resource("jobs", "Job", true),
                resource("cronjobs", "CronJob", true),
            ],
        ),
        (
            "apiregistration.k8s.io",
            "v1",
            vec![resource("apiservices", "APIService", false)],
        ),
        (
            "policy",
            "v1",
            vec![resource(
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
            )],
        ),
        (
            "networking.k8s.io",
            "v1",
            vec![
                resource("networkpolicies", "NetworkPolicy", true),
                resource("ingresses", "Ingress", true),
            ],
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            vec![
                resource("roles", "Role", true),
                resource("rolebindings", "RoleBinding", true),
                resource("clusterroles", "ClusterRole", false),
                resource("clusterrolebindings", "ClusterRoleBinding", false),
            ],
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            vec![
                resource(
                    "validatingwebhookconfigurations",
                    "ValidatingWebhookConfiguration",
                    false,
                ),
                resource(
                    "mutatingwebhookconfigurations",
                    "MutatingWebhookConfiguration",
                    false,
                ),
            ],
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            vec![resource(
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )],
        ),
        (
            "coordination.k8s.io",
            "v1",
            vec![resource("leases", "Lease", true)],
        ),
        (
            "cert-manager.io",
            "v1",
            vec![
                resource("certificates", "Certificate", true),
                resource("issuers", "Issuer", true),
                resource("clusterissuers", "ClusterIssuer", false),
            ],
        ),
        (
            "monitoring.coreos.com",
            "v1",
            vec![
                resource("servicemonitors", "ServiceMonitor", true),
                resource("prometheusrules", "PrometheusRule", true),
            ],
        ),
    ];
    let mut documents = BTreeMap::new();
    let mut group_list = Vec::new();
    for (group, version, resources) in groups {
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        let path = if group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{group_version}")
        };
        documents.insert(
            path,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        );
        if !group.is_empty() {
            let gv = json!({"groupVersion": group_version, "version": version});
            group_list
                .push(json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv}));
        }
    }
    documents.insert("/api".into(), json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}));
    documents.insert(
        "/apis".into(),
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list}),
    );
    documents.insert(
        "/version".into(),
        json!({"major": "1", "minor": "30", "gitVersion": "v1.30.0"}),
    );
    documents
}

async fn discovery_server() -> String {
    let documents = std::sync::Arc::new(discovery());
    let answer = move |UrlPath(path): UrlPath<String>| {
        let documents = documents.clone();
        async move {
            match documents.get(&format!("/{path}")) {
                Some(document) => Json(document.clone()).into_response(),
                // Any object: it does not exist yet, so a client-side apply creates it.
                None => (
                    StatusCode::NOT_FOUND,
                    Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": format!("/{path} not found")})),
                )
                    .into_response(),
            }
        }
    };
    let router: Router = Router::new().route("/{*path}", get(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    url
}

#[tokio::test]
async fn kubectl_client_dry_run_accepts_the_rendered_chart() {
    let server = discovery_server().await;
    let kubectl = tool("kubectl");
    let dir = tempfile::tempdir().unwrap();
    for (index, values) in value_sets().into_iter().enumerate() {
        let (text, docs) = render(values.as_deref());
        let file = dir.path().join(format!("rendered-{index}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let output = tokio::process::Command::new(&kubectl)
            .args([
                "apply",
                "--dry-run=client",
                // No OpenAPI document here to validate against; a real cluster's e2e run
                // validates server-side.
                "--validate=false",
                "--server",
                &server,
                "-f",
                file.to_str().unwrap(),
            ])
            .env_remove("KUBECONFIG")
            .env("HOME", dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kubectl apply --dry-run=client ({values:?}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let applied = stdout.lines().filter(|l| l.contains("(dry run)")).count();
        assert_eq!(
            applied,
            docs.len(),
            "one line per object ({values:?}):\n{stdout}"
        );
    }
}

#[test]
fn bad_values_are_refused_with_a_message() {
    let cases = [
        ("webhook.failurePolicy=Maybe", "failurePolicy"),
        ("database.existingSecret.name=", "database.url"),
        ("replicaCount=0", "replicaCount"),
        ("colour=red", "colour"),
        ("audit.retention=forever", "retention"),
    ];
    for (set, mentions) in cases {
        let output = Command::new(tool("helm"))
            .args([
                "template",
                "curio",
                root().join("charts/curio").to_str().unwrap(),
                "--set",
                set,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{set} was accepted");
        assert!(stderr.contains(mentions), "{set}: {stderr}");
    }
}

#[test]
fn the_image_runs_as_the_user_the_chart_expects() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let final_stage = dockerfile.rsplit("\nFROM ").next().expect("a final stage");
    assert!(
        final_stage.starts_with("gcr.io/distroless/"),
        "{final_stage}"
    );
    assert!(
        final_stage.contains("\nUSER 65532:65532\n"),
        "{final_stage}"
    );
    assert!(final_stage.contains("ENTRYPOINT [\"/usr/local/bin/curio\"]"));
    assert!(dockerfile.contains("cargo build --release --locked --bin curio"));
    let (_, docs) = render(None);
    let deployment = named(&docs, "Deployment", "curio");
    for container in deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
    {
        assert_eq!(container["securityContext"]["runAsUser"], 65532);
        let command = container["args"][0].as_str().unwrap();
        assert!(["controller", "api"].contains(&command), "{command}");
    }
}

#[test]
fn the_argocd_customizations_carry_the_tested_lua() {
    let (_, defaults) = render(None);
    assert!(
        !defaults
            .iter()
            .any(|d| d["kind"] == "ConfigMap"
                && d["metadata"]["name"] == "curio-argocd-customizations"),
        "off by default"
    );
    let (_, docs) = render(Some(
        &root().join("charts/curio/ci/all-features-values.yaml"),
    ));
    let map = named(&docs, "ConfigMap", "curio-argocd-customizations");
    let file = |name: &str| {
        std::fs::read_to_string(root().join("charts/curio/files/argocd").join(name)).unwrap()
    };
    let data = &map["data"];
    assert_eq!(
        data["resource.customizations.health.curio.dev_CatalogSource"],
        file("catalogsource-health.lua")
    );
    assert_eq!(
        data["resource.customizations.health.curio.dev_RefreshJob"],
        file("refreshjob-health.lua")
    );
    let actions: Value = serde_saphyr::from_str(
        data["resource.customizations.actions.curio.dev_CatalogSource"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        actions["discovery.lua"],
        file("catalogsource-actions-discovery.lua")
    );
    assert_eq!(actions["definitions"][0]["name"], "refresh");
    assert_eq!(
        actions["definitions"][0]["action.lua"],
        file("catalogsource-action-refresh.lua")
    );
}
