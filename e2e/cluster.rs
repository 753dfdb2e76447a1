//! End-to-end: two `curio controller` processes against a real cluster (from `KUBECONFIG`)
//! and one PostgreSQL (`DATABASE_URL`). Run through `e2e/run.sh`; see `e2e/README.md`.
//!
//! Written for bare API servers (no kubelet, no controller-manager: no Pods, no default
//! ServiceAccounts, no garbage collection, deleted namespaces stay Terminating) as well as
//! kind or k3d: everything lives in fresh namespaces named per run.

// Test support code: a panic here is a failed test, which is what an unwrap should be.
#![allow(clippy::unwrap_used)]

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use curio::crd::{CatalogSource, RefreshJob};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{ConfigMap, Namespace},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn apply_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Kubernetes before 1.25 cannot compile transition rules (oldSelf); E2E_STRIP_CEL=1 drops
    // the CEL rules for such servers. The CRDs Curio ships keep them.
    let strip = env("E2E_STRIP_CEL").is_some_and(|v| v == "1");
    if strip {
        eprintln!(
            "[e2e] E2E_STRIP_CEL=1: applying the CRDs without their x-kubernetes-validations rules"
        );
    }
    for crd in curio::crd::generate::definitions() {
        let name = crd.name_any();
        let crd = if strip {
            curio::crd::generate::without_cel(crd).expect("the CRD without its CEL rules")
        } else {
            crd
        };
        crds.patch(
            &name,
            &PatchParams::apply("curio-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        eventually(&format!("CRD {name} Established"), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

/// A catalog served over HTTP whose answer can be slowed down, to catch a job mid-run.
async fn serve_catalog(delay_ms: Arc<AtomicU64>) -> String {
    use axum::routing::get;
    let body = "assets:\n - {kind: Model, name: slow-model-a}\n - {kind: Model, name: slow-model-b}\n - {kind: Agent, name: slow-agent}\n";
    let router = axum::Router::new().route(
        "/catalog.yaml",
        get(move || {
            let delay_ms = delay_ms.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst))).await;
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/catalog.yaml", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    name: String,
    child: Child,
    metrics: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `curio migrate` against the database and insists it succeeds.
fn migrate(database_url: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_curio"))
        .args(["migrate", "--database-url", database_url])
        .status()
        .unwrap();
    assert!(status.success(), "curio migrate");
}

/// Starts `curio <args>` with its log in `$E2E_LOG_DIR/curio-e2e-<name>.log`.
fn spawn_curio(name: &str, args: &[&str]) -> Child {
    let log_dir = env("E2E_LOG_DIR").unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let log = std::fs::File::create(format!("{log_dir}/curio-e2e-{name}.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_curio"))
        .args(args)
        .env("RUST_LOG", "info,curio=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start curio {}: {e}", args[0]))
}

fn start_replica(name: &str, database_url: &str, lease_ns: &str, watch: &[&str]) -> Replica {
    let port = free_port();
    let child = spawn_curio(
        name,
        &[
            "controller",
            "--database-url",
            database_url,
            "--lease-namespace",
            lease_ns,
            "--replica",
            name,
            "--controller-identity",
            "system:serviceaccount:curio-e2e:curio",
            "--watch-namespaces",
            &watch.join(","),
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
            "--allow-url-cidrs",
            "127.0.0.1/32",
            "--retry-base",
            "1s",
            "--drain-timeout",
            "2s",
        ],
    );
    Replica {
        name: name.into(),
        child,
        metrics: format!("http://127.0.0.1:{port}/metrics"),
    }
}

async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

fn ready(source: &CatalogSource) -> Option<(String, String)> {
    let status = source.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn wait_ready(api: &Api<CatalogSource>, name: &str, count: i64) -> CatalogSource {
    eventually(
        &format!("CatalogSource {name} Ready with {count} assets"),
        || {
            let api = api.clone();
            let name = name.to_owned();
            async move {
                let source = api.get(&name).await.ok()?;
                (ready(&source)? == ("True".into(), "Succeeded".into())
                    && source.status.as_ref()?.asset_count == Some(count))
                .then_some(source)
            }
        },
    )
    .await
}

async fn job_phase(api: &Api<RefreshJob>, name: &str) -> Option<String> {
    let job = api.get(name).await.ok()?;
    let phase = job.status?.phase?;
    Some(format!("{phase:?}"))
}

async fn wait_phase(api: &Api<RefreshJob>, name: &str, phase: &str) {
    eventually(&format!("RefreshJob {name} {phase}"), || {
        let api = api.clone();
        let name = name.to_owned();
        let phase = phase.to_owned();
        async move { (job_phase(&api, &name).await? == phase).then_some(()) }
    })
    .await
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get("curio-controller")
        .await
        .ok()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// What every test starts from: a cluster (from `KUBECONFIG`) with the CRDs applied, the
/// database, and a run id that makes every name the test creates its own.
struct Setup {
    client: Client,
    database_url: String,
    run: String,
}

async fn setup() -> Setup {
    let (Some(_), Some(database_url)) = (env("KUBECONFIG"), env("DATABASE_URL")) else {
        panic!("KUBECONFIG and DATABASE_URL must be set: run e2e/run.sh");
    };
    let client = Client::try_default()
        .await
        .expect("a cluster from KUBECONFIG");
    apply_crds(&client).await;
    Setup {
        client,
        database_url,
        run: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    }
}

/// A fresh namespace for the controller's Lease and one for a tenant (`e2e-<run>-<suffix>`),
/// and the database migrated.
async fn system_and_team(
    client: &Client,
    database_url: &str,
    run: &str,
    suffix: &str,
) -> (String, String) {
    let (system, team) = (format!("curio-e2e-{run}"), format!("e2e-{run}-{suffix}"));
    for ns in [&system, &team] {
        create_namespace(client, ns).await;
    }
    migrate(database_url);
    (system, team)
}

#[tokio::test]
#[ignore = "needs a cluster: run e2e/run.sh"]
async fn two_controllers_reconcile_and_hand_over() {
    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let (system, team_a, team_b) = (
        format!("curio-e2e-{run}"),
        format!("e2e-{run}-a"),
        format!("e2e-{run}-b"),
    );
    for ns in [&system, &team_a, &team_b] {
        create_namespace(&client, ns).await;
    }
    migrate(&database_url);
    let db = Database::connect(database_url.as_str()).await.unwrap();

    let delay_ms = Arc::new(AtomicU64::new(0));
    let catalog_url = serve_catalog(delay_ms.clone()).await;
    let mut replicas = vec![
        start_replica(
            &format!("{run}-0"),
            &database_url,
            &system,
            &[&team_a, &team_b],
        ),
        start_replica(
            &format!("{run}-1"),
            &database_url,
            &system,
            &[&team_a, &team_b],
        ),
    ];
    let leases: Api<Lease> = Api::namespaced(client.clone(), &system);
    let first_leader = eventually("a leader", || holder(&leases)).await;

    // Team A: a ConfigMap source and a URL source; team B: an inline source.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &team_a);
    let catalog = "assets:\n - {kind: Model, name: granite-3-8b, version: '3.0', license: apache-2.0}\n - {kind: McpServer, name: github}\n";
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "catalog"},
        "data": {"catalog.yaml": catalog}
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let sources_a: Api<CatalogSource> = Api::namespaced(client.clone(), &team_a);
    let sources_b: Api<CatalogSource> = Api::namespaced(client.clone(), &team_b);
    let create = |api: &Api<CatalogSource>, value: serde_json::Value| {
        let api = api.clone();
        async move {
            let source: CatalogSource = serde_json::from_value(value).unwrap();
            api.create(&PostParams::default(), &source).await.unwrap()
        }
    };
    create(&sources_a, json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "models", "annotations": {"curio.dev/change-reason": "e2e onboarding"}},
        "spec": {"source": {"configMap": {"name": "catalog"}}, "curation": [{"match": "granite-*", "approved": true}]}
    })).await;
    create(
        &sources_a,
        json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "remote"},
            "spec": {"source": {"url": {"url": catalog_url}}}
        }),
    )
    .await;
    create(
        &sources_b,
        json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "agents"},
            "spec": {"source": {"inline": {"assets": [{"kind": "Agent", "name": "triage"}]}}}
        }),
    )
    .await;

    let models = wait_ready(&sources_a, "models", 2).await;
    assert_eq!(
        models.status.as_ref().unwrap().observed_generation,
        models.metadata.generation
    );
    assert!(models.finalizers().iter().any(|f| f == "curio.dev/cleanup"));
    wait_ready(&sources_a, "remote", 3).await;
    wait_ready(&sources_b, "agents", 1).await;
    let ns = |n: &str| sea_orm::Value::from(n.to_owned());
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM assets WHERE namespace = $1",
            vec![ns(&team_a)]
        )
        .await,
        5
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM assets WHERE namespace = $1 AND approved",
            vec![ns(&team_a)]
        )
        .await,
        1
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM audit_events WHERE namespace = $1 AND verb = 'create' AND reason = 'e2e onboarding' AND actor = 'system:serviceaccount:curio-e2e:curio'", vec![ns(&team_a)]).await,
        2
    );

    // A ConfigMap edit re-reconciles the source that reads it.
    let edited = format!("{catalog} - {{kind: Agent, name: reviewer}}\n");
    config_maps
        .patch(
            "catalog",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"catalog.yaml": edited}})),
        )
        .await
        .unwrap();
    wait_ready(&sources_a, "models", 3).await;

    // A bad document keeps the last good assets and says why.
    config_maps
        .patch(
            "catalog",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"catalog.yaml": "assets: [oops"}})),
        )
        .await
        .unwrap();
    let stalled = eventually("models Stalled", || {
        let api = sources_a.clone();
        async move {
            let s = api.get("models").await.ok()?;
            (ready(&s)? == ("False".into(), "InvalidCatalog".into())).then_some(s)
        }
    })
    .await;
    assert_eq!(stalled.status.unwrap().asset_count, Some(3));
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM assets WHERE namespace = $1 AND source = 'models'",
            vec![ns(&team_a)]
        )
        .await,
        3
    );

    // Jobs in both namespaces.
    let jobs_a: Api<RefreshJob> = Api::namespaced(client.clone(), &team_a);
    let jobs_b: Api<RefreshJob> = Api::namespaced(client.clone(), &team_b);
    let job = |name: &str, source: &str, reason: &str| -> RefreshJob {
        serde_json::from_value(json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
            "metadata": {"name": name},
            "spec": {"sourceRef": {"name": source}, "reason": reason, "backoffLimit": 1}
        }))
        .unwrap()
    };
    jobs_b
        .create(
            &PostParams::default(),
            &job("refresh-agents", "agents", "weekly refresh"),
        )
        .await
        .unwrap();
    wait_phase(&jobs_b, "refresh-agents", "Succeeded").await;
    let done = jobs_b.get("refresh-agents").await.unwrap();
    assert_eq!(done.status.as_ref().unwrap().unchanged, Some(1));
    assert!(
        done.owner_references()
            .iter()
            .any(|o| o.kind == "CatalogSource" && o.name == "agents"),
        "the job is owned by its source"
    );

    // A slow job: kill the leader while it runs; the other replica takes over and finishes it
    // exactly once.
    delay_ms.store(6000, Ordering::SeqCst);
    jobs_a
        .create(
            &PostParams::default(),
            &job("refresh-remote", "remote", "pick up new models"),
        )
        .await
        .unwrap();
    wait_phase(&jobs_a, "refresh-remote", "Running").await;
    let leader = holder(&leases).await.expect("a leader");
    let at = replicas
        .iter()
        .position(|r| r.name == leader)
        .expect("the leader is ours");
    let mut killed = replicas.remove(at);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    delay_ms.store(0, Ordering::SeqCst);
    let successor = eventually("another leader", || {
        let leases = leases.clone();
        let leader = leader.clone();
        async move { holder(&leases).await.filter(|h| *h != leader) }
    })
    .await;
    assert_eq!(successor, replicas[0].name);
    wait_phase(&jobs_a, "refresh-remote", "Succeeded").await;
    let finished = jobs_a.get("refresh-remote").await.unwrap();
    let attempts = finished.status.as_ref().unwrap().attempts;
    assert_eq!(
        attempts, 1,
        "the interrupted attempt was resumed, not retried as a new one"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM assets WHERE namespace = $1 AND source = 'remote'",
            vec![ns(&team_a)]
        )
        .await,
        3,
        "one copy of each asset"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM audit_events WHERE namespace = $1 AND resource = 'refreshjobs' AND object_name = 'refresh-remote' AND verb = 'start'", vec![ns(&team_a)]).await,
        1,
        "one start event for the attempt"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM audit_events WHERE namespace = $1 AND resource = 'refreshjobs' AND object_name = 'refresh-remote' AND verb = 'succeed'", vec![ns(&team_a)]).await,
        1,
        "one succeed event"
    );
    let metrics = reqwest_get(&replicas[0].metrics).await;
    assert!(metrics.contains("curio_leader 1"), "{metrics}");
    assert!(
        metrics.contains("curio_leader_transitions_total"),
        "{metrics}"
    );

    // Deleting a source removes its assets (audited) and lets the object go.
    sources_b
        .delete("agents", &DeleteParams::default())
        .await
        .unwrap();
    eventually("agents gone", || {
        let api = sources_b.clone();
        async move { api.get_opt("agents").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM assets WHERE namespace = $1",
            vec![ns(&team_b)]
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM audit_events WHERE namespace = $1 AND verb = 'delete' AND reason = 'CatalogSource agents deleted'", vec![ns(&team_b)]).await,
        1
    );

    // Graceful shutdown releases the Lease.
    let last = replicas.remove(0);
    let pid = last.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    eventually("the Lease released", || {
        let leases = leases.clone();
        async move { holder(&leases).await.is_none().then_some(()) }
    })
    .await;
    drop(last);
    assert!(!first_leader.is_empty());

    // Best effort: on a bare API server namespaces stay Terminating; names are per run.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&system, &team_a, &team_b] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}

/// A plain HTTP GET, through hyper (already a dependency), of a local endpoint.
async fn reqwest_get(url: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let uri: hyper::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(uri.path())
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Runs `kubectl apply -f -` as `user` (impersonated by the kubeconfig's identity) with
/// `manifest` on stdin; returns whether it succeeded and what it printed.
fn kubectl_apply_as(user: &str, manifest: &str) -> (bool, String) {
    kubectl_apply_with(&["--as", user], manifest)
}

/// `kubectl apply -f -` as the kubeconfig's own identity.
fn kubectl_apply(manifest: &str) -> (bool, String) {
    kubectl_apply_with(&[], manifest)
}

fn kubectl_apply_with(flags: &[&str], manifest: &str) -> (bool, String) {
    use std::io::Write;
    let kubectl = env("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut child = Command::new(&kubectl)
        .arg("apply")
        .args(flags)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {kubectl} (set KUBECTL, or use e2e/run.sh): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn source_manifest(namespace: &str, reason: &str, approved: bool) -> String {
    format!(
        r#"apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata:
  name: models
  namespace: {namespace}
  annotations:
    curio.dev/change-reason: "{reason}"
spec:
  source:
    inline:
      assets:
        - {{kind: Model, name: granite-3-8b, version: "3.0", provider: IBM, license: apache-2.0}}
  curation:
    - {{match: "granite-*", tags: [ibm], approved: {approved}}}
"#
    )
}

/// A ValidatingWebhookConfiguration for `team` only, and a controller serving it with a
/// self-managed certificate (it fills in the caBundle), watching `team`.
async fn webhook_controller(
    client: &Client,
    database_url: &str,
    run: &str,
    system: &str,
    team: &str,
) -> (Replica, String) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    // The webhook configuration, limited to this run's namespace; the controller fills in
    // its caBundle (the self-managed certificate path).
    let webhook_port = free_port();
    let configuration_name = format!("curio-e2e-{run}");
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let configuration: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": configuration_name},
        "webhooks": [{
            "name": "validate.curio.dev",
            "clientConfig": {"url": format!("https://localhost:{webhook_port}/validate")},
            "rules": [{"apiGroups": ["curio.dev"], "apiVersions": ["v1alpha1"],
                       "resources": ["catalogsources", "refreshjobs"],
                       "operations": ["CREATE", "UPDATE", "DELETE"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team}},
            "failurePolicy": "Fail",
            "sideEffects": "NoneOnDryRun",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10
        }]
    }))
    .unwrap();
    configurations
        .create(&PostParams::default(), &configuration)
        .await
        .unwrap();

    let metrics_port = free_port();
    let controller = Replica {
        name: format!("{run}-webhook"),
        child: spawn_curio(
            &format!("{run}-webhook"),
            &[
                "controller",
                "--database-url",
                database_url,
                "--lease-namespace",
                system,
                "--replica",
                &format!("{run}-webhook"),
                "--watch-namespaces",
                team,
                "--metrics-address",
                &format!("127.0.0.1:{metrics_port}"),
                "--webhook-self-managed",
                "--webhook-address",
                &format!("127.0.0.1:{webhook_port}"),
                "--webhook-dns-names",
                "localhost",
                "--webhook-configuration",
                &configuration_name,
            ],
        ),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    };
    eventually("the caBundle patched in", || {
        let configurations = configurations.clone();
        let name = configuration_name.clone();
        async move {
            let current = configurations.get(&name).await.ok()?;
            let webhooks = current.webhooks.unwrap_or_default();
            webhooks
                .iter()
                .all(|w| w.client_config.ca_bundle.is_some())
                .then_some(())
        }
    })
    .await;
    (controller, configuration_name)
}

#[tokio::test]
#[ignore = "needs a cluster: run e2e/run.sh"]
async fn webhook_requires_approve_and_audits_people() {
    use k8s_openapi::api::{
        admissionregistration::v1::ValidatingWebhookConfiguration,
        rbac::v1::{ClusterRole, RoleBinding},
    };

    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let (system, team) = system_and_team(&client, &database_url, &run, "w").await;

    let (controller, configuration_name) =
        webhook_controller(&client, &database_url, &run, &system, &team).await;
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &system);
    assert!(
        secrets
            .get_opt("curio-webhook-tls")
            .await
            .unwrap()
            .is_some(),
        "the certificate Secret"
    );

    // alice may edit sources; bob may also approve them.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let edit = format!("curio-e2e-{run}-edit");
    let approve = format!("curio-e2e-{run}-approve");
    for (name, verbs) in [
        (
            &edit,
            json!([
                "get", "list", "watch", "create", "update", "patch", "delete"
            ]),
        ),
        (&approve, json!(["approve", "promote"])),
    ] {
        let role: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": name},
            "rules": [{"apiGroups": ["curio.dev"], "resources": ["catalogsources", "refreshjobs"], "verbs": verbs}]
        }))
        .unwrap();
        roles.create(&PostParams::default(), &role).await.unwrap();
    }
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &team);
    let alice = format!("e2e-alice-{run}");
    let bob = format!("e2e-bob-{run}");
    for (name, role, user) in [
        ("alice-edit", &edit, &alice),
        ("bob-edit", &edit, &bob),
        ("bob-approve", &approve, &bob),
    ] {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": team},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        }))
        .unwrap();
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }

    // alice creates a source that approves nothing: admitted. (Retried while the apiserver
    // picks up the new webhook configuration and its caBundle.)
    let created = eventually("alice's source admitted", || {
        let manifest = source_manifest(&team, "onboard granite", false);
        let alice = alice.clone();
        async move {
            let (ok, output) = kubectl_apply_as(&alice, &manifest);
            if !ok {
                eprintln!("[e2e] not yet: {output}");
            }
            ok.then_some(output)
        }
    })
    .await;
    assert!(created.contains("created"), "{created}");
    // alice approves: refused, naming the missing permission.
    let (ok, refused) = kubectl_apply_as(&alice, &source_manifest(&team, "approve granite", true));
    assert!(!ok, "alice may not approve: {refused}");
    assert!(
        refused.contains("denied the request") && refused.contains("\"approve\" verb"),
        "{refused}"
    );
    // bob approves: admitted.
    let (ok, approved) =
        kubectl_apply_as(&bob, &source_manifest(&team, "granite passed review", true));
    assert!(ok, "bob may approve: {approved}");
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), &team);
    let source = sources.get("models").await.unwrap();
    assert_eq!(source.spec.curation[0].approved, Some(true));

    // The audit API, as a ServiceAccount allowed to read this namespace's trail.
    let reader = format!("curio-e2e-{run}-audit");
    let token = service_account_token(
        &client,
        &team,
        "auditor",
        &reader,
        json!([{"apiGroups": ["curio.dev"], "resources": ["auditevents"], "verbs": ["list"]}]),
    )
    .await;
    let api_port = free_port();
    let _api = Replica {
        name: format!("{run}-api"),
        child: spawn_curio(
            &format!("{run}-api"),
            &[
                "api",
                "--database-url",
                &database_url,
                "--listen",
                &format!("127.0.0.1:{api_port}"),
            ],
        ),
        metrics: String::new(),
    };
    let http = reqwest::Client::new();
    let url = format!(
        "http://127.0.0.1:{api_port}/api/v1/namespaces/{team}/auditevents?actor={alice},{bob}"
    );
    let trail: serde_json::Value = eventually("the audit API", || {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let response = http.get(&url).bearer_auth(&token).send().await.ok()?;
            (response.status() == 200).then_some(())?;
            response.json().await.ok()
        }
    })
    .await;
    let steps: Vec<(String, String, bool)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["verb"].as_str().unwrap().to_owned(),
                e["details"]["admission"]["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (alice.clone(), "create".to_owned(), true),
            (alice.clone(), "approve".to_owned(), false),
            (bob.clone(), "approve".to_owned(), true),
        ],
        "{trail}"
    );
    assert_eq!(trail["items"][2]["reason"], "granite passed review");
    // An outsider gets nothing.
    let response = http
        .get(format!(
            "http://127.0.0.1:{api_port}/api/v1/namespaces/{system}/auditevents"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Tidy up what is cluster-scoped; the namespaces are per run.
    drop(controller);
    let _ = configurations
        .delete(&configuration_name, &DeleteParams::default())
        .await;
    for role in [&edit, &approve, &reader] {
        let _ = roles.delete(role, &DeleteParams::default()).await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&system, &team] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}

fn config_map_source_manifest(namespace: &str, name: &str, interval: &str) -> String {
    format!(
        r#"apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: {interval}
  source:
    configMap: {{name: {name}}}
"#
    )
}

fn condition(source: &CatalogSource, type_: &str) -> Option<(String, String)> {
    let status = source.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

#[tokio::test]
#[ignore = "needs a cluster: run e2e/run.sh"]
async fn a_policy_limits_sources_and_pauses_refreshes() {
    use curio::crd::CatalogPolicy;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;

    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let (system, team) = system_and_team(&client, &database_url, &run, "p").await;

    // The policy selects this run's namespace only: other tenants of a shared cluster are
    // untouched.
    let policies: Api<CatalogPolicy> = Api::all(client.clone());
    let policy_name = format!("curio-e2e-{run}");
    let policy = |paused: bool| -> CatalogPolicy {
        serde_json::from_value(json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogPolicy",
            "metadata": {"name": policy_name},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team}},
                "paused": paused,
                "limits": {"maxSources": 2}
            }
        }))
        .unwrap()
    };
    let apply_policy = |paused: bool| {
        let (policies, name, policy) = (policies.clone(), policy_name.clone(), policy(paused));
        async move {
            policies
                .patch(
                    &name,
                    &PatchParams::apply("curio-e2e").force(),
                    &Patch::Apply(&policy),
                )
                .await
                .unwrap();
        }
    };
    apply_policy(false).await;
    let (controller, configuration_name) =
        webhook_controller(&client, &database_url, &run, &system, &team).await;

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &team);
    let catalog = |names: &[&str]| -> ConfigMap {
        let mut text = "assets:\n".to_owned();
        for name in names {
            text.push_str(&format!(" - {{kind: Model, name: {name}}}\n"));
        }
        serde_json::from_value(
            json!({"metadata": {"name": "periodic"}, "data": {"catalog.yaml": text}}),
        )
        .unwrap()
    };
    config_maps
        .create(&PostParams::default(), &catalog(&["m1"]))
        .await
        .unwrap();
    // Two sources are within the policy (retried while the apiserver picks up the webhook).
    let first = eventually("the first source admitted", || {
        let manifest = source_manifest(&team, "first", false);
        async move {
            let (ok, output) = kubectl_apply(&manifest);
            if !ok {
                eprintln!("[e2e] not yet: {output}");
            }
            ok.then_some(output)
        }
    })
    .await;
    assert!(first.contains("created"), "{first}");
    let (ok, output) = kubectl_apply(&config_map_source_manifest(&team, "periodic", "10s"));
    assert!(ok, "{output}");
    // The third is refused, with the policy's message.
    let (ok, refused) = kubectl_apply(&config_map_source_manifest(&team, "third", "1h"));
    assert!(!ok, "a third source is over maxSources: {refused}");
    assert!(
        refused.contains(&format!(
            "CatalogPolicy \"{policy_name}\": maxSources is 2: the namespace already has 2 CatalogSources"
        )),
        "{refused}"
    );

    // The periodic source refreshes every 10s...
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), &team);
    let refreshed_at = |source: &CatalogSource| {
        source
            .status
            .as_ref()
            .and_then(|s| s.last_refresh_time.clone())
    };
    let first_refresh = refreshed_at(&wait_ready(&sources, "periodic", 1).await);
    eventually("a periodic refresh", || {
        let (sources, first_refresh) = (sources.clone(), first_refresh.clone());
        async move {
            let source = sources.get("periodic").await.ok()?;
            (refreshed_at(&source) > first_refresh).then_some(())
        }
    })
    .await;
    // ...and the policy's status counts the namespace.
    eventually("the policy's usage", || {
        let (policies, name, team) = (policies.clone(), policy_name.clone(), team.clone());
        async move {
            let status = policies.get(&name).await.ok()?.status?;
            status
                .namespaces
                .iter()
                .any(|u| u.namespace == team && u.sources == 2 && u.assets == 2)
                .then_some(())
        }
    })
    .await;

    // Paused: the source says so, and refreshes stop (a changed ConfigMap is not read).
    apply_policy(true).await;
    let paused = eventually("the source paused", || {
        let sources = sources.clone();
        async move {
            let source = sources.get("periodic").await.ok()?;
            (condition(&source, "Reconciling")? == ("False".into(), "PausedByPolicy".into()))
                .then_some(source)
        }
    })
    .await;
    assert_eq!(
        condition(&paused, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    config_maps
        .replace("periodic", &PostParams::default(), &catalog(&["m1", "m2"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    let still = sources.get("periodic").await.unwrap();
    assert_eq!(
        refreshed_at(&still),
        refreshed_at(&paused),
        "no refresh while paused"
    );
    assert_eq!(still.status.as_ref().unwrap().asset_count, Some(1));

    // Resumed: the next refresh reads the changed ConfigMap.
    apply_policy(false).await;
    let resumed = wait_ready(&sources, "periodic", 2).await;
    assert_eq!(condition(&resumed, "Reconciling"), None);

    drop(controller);
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = configurations
        .delete(&configuration_name, &DeleteParams::default())
        .await;
    let _ = policies
        .delete(&policy_name, &DeleteParams::default())
        .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&system, &team] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}

fn helm(args: &[&str]) -> (bool, String) {
    let helm = env("HELM").unwrap_or_else(|| "helm".into());
    let output = Command::new(&helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {helm} (set HELM, or use e2e/run.sh): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Asks the apiserver whether `user` may do `verb` on `resource` (RBAC evaluated for real).
async fn may(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                        "subresource": subresource, "namespace": namespace, "name": name}}
    }))
    .unwrap();
    reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

#[tokio::test]
#[ignore = "needs a cluster: run e2e/run.sh"]
async fn the_chart_installs_with_least_privilege() {
    use k8s_openapi::api::{
        admissionregistration::v1::ValidatingWebhookConfiguration, apps::v1::Deployment,
        core::v1::Service,
    };
    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let namespace = format!("curio-e2e-{run}-chart");
    create_namespace(&client, &namespace).await;
    let release = format!("curio-{run}");
    let chart = format!("{}/charts/curio", env!("CARGO_MANIFEST_DIR"));
    // With an image that pods can pull (E2E_IMAGE=repo:tag) and a database URL they can reach
    // (E2E_CHART_DATABASE_URL), the release must become ready; without, the objects are
    // installed (validated and admitted by the apiserver) but no pod is expected to run.
    let image = env("E2E_IMAGE");
    let pod_database = env("E2E_CHART_DATABASE_URL").unwrap_or(database_url);
    let mut args = vec![
        "install".to_owned(),
        release.clone(),
        chart,
        "--namespace".into(),
        namespace.clone(),
        "--skip-crds".into(),
        "--set".into(),
        format!("fullnameOverride={release}"),
        "--set".into(),
        format!("database.url={pod_database}"),
        // Shared clusters may already have Curio's aggregated roles, and its APIService (one
        // per cluster; the aggregated API has a test of its own).
        "--set".into(),
        "aggregatedRoles.enabled=false".into(),
        "--set".into(),
        "aggregatedApi.enabled=false".into(),
        // Only this run's namespace goes through this release's webhook.
        "--set-json".into(),
        format!(
            r#"webhook.namespaceSelector={{"matchLabels":{{"kubernetes.io/metadata.name":"{namespace}"}}}}"#
        ),
    ];
    match &image {
        Some(image) => {
            let (repository, tag) = image.rsplit_once(':').expect("E2E_IMAGE=repository:tag");
            args.extend([
                "--set".into(),
                format!("image.repository={repository}"),
                "--set".into(),
                format!("image.tag={tag}"),
                "--wait".into(),
                "--timeout".into(),
                "5m".into(),
            ]);
        }
        None => {
            eprintln!(
                "[e2e] no E2E_IMAGE: installing the chart without hooks and without waiting for pods"
            );
            args.push("--no-hooks".into());
        }
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, output) = helm(&arg_refs);
    // The chart needs 1.25 (its CRDs' CEL transition rules): an older server is refused.
    let version = client
        .apiserver_version()
        .await
        .expect("the server version");
    let minor: u32 = version
        .minor
        .trim_end_matches('+')
        .parse()
        .unwrap_or(u32::MAX);
    if version.major == "1" && minor < 25 {
        assert!(!ok, "helm installed on Kubernetes 1.{minor}: {output}");
        assert!(output.contains("kubeVersion"), "{output}");
        eprintln!(
            "[e2e] Kubernetes 1.{minor}: the chart (kubeVersion >=1.25) is refused, as it must be; nothing more to check here"
        );
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let _ = namespaces
            .delete(&namespace, &DeleteParams::default())
            .await;
        return;
    }
    assert!(ok, "helm install: {output}");

    // Everything is there.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get(&release).await.expect("the Deployment");
    assert_eq!(deployment.spec.unwrap().replicas, Some(2));
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    for suffix in ["api", "webhook", "metrics"] {
        services
            .get(&format!("{release}-{suffix}"))
            .await
            .unwrap_or_else(|e| panic!("Service {release}-{suffix}: {e}"));
    }
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let configuration = configurations
        .get(&release)
        .await
        .expect("the webhook configuration");
    assert_eq!(
        configuration.webhooks.unwrap()[0].failure_policy.as_deref(),
        Some("Fail")
    );

    // The controller's ServiceAccount, as the apiserver's RBAC sees it.
    let sa = format!("system:serviceaccount:{namespace}:{release}");
    let ns = Some(namespace.as_str());
    let elsewhere = Some("default");
    let granted = [
        ("watch", "curio.dev", "catalogsources", elsewhere, None),
        ("patch", "curio.dev", "catalogsources", elsewhere, None),
        ("update", "curio.dev", "refreshjobs/status", elsewhere, None),
        ("delete", "curio.dev", "refreshjobs", elsewhere, None),
        ("list", "", "configmaps", elsewhere, None),
        ("get", "", "secrets", elsewhere, None),
        ("create", "events.k8s.io", "events", elsewhere, None),
        ("watch", "curio.dev", "catalogpolicies", None, None),
        ("patch", "curio.dev", "catalogpolicies/status", None, None),
        ("watch", "", "namespaces", None, None),
        (
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            None,
            None,
        ),
        (
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            None,
            None,
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            ns,
            Some(release.as_str()),
        ),
        (
            "update",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some(release.as_str()),
        ),
    ];
    for (verb, group, resource, namespace, name) in granted {
        assert!(
            may(&client, &sa, verb, group, resource, namespace, name).await,
            "the controller needs {verb} {resource} {namespace:?} {name:?}"
        );
    }
    let denied = [
        ("delete", "curio.dev", "catalogsources", elsewhere, None),
        ("create", "curio.dev", "catalogsources", elsewhere, None),
        ("update", "curio.dev", "catalogpolicies", None, None),
        ("create", "curio.dev", "catalogpolicies", None, None),
        ("list", "", "secrets", elsewhere, None),
        ("update", "", "configmaps", elsewhere, None),
        ("create", "", "pods", ns, None),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            elsewhere,
            Some(release.as_str()),
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            ns,
            Some("someone-elses-lease"),
        ),
        (
            "update",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some("another-webhook"),
        ),
        (
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            ns,
            None,
        ),
        ("impersonate", "", "users", None, None),
    ];
    for (verb, group, resource, namespace, name) in denied {
        assert!(
            !may(&client, &sa, verb, group, resource, namespace, name).await,
            "the controller must not {verb} {resource} {namespace:?} {name:?}"
        );
    }

    if image.is_some() {
        // Ready pods, a leader, and a webhook that answers.
        let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
        eventually("a leader", || holder(&leases)).await;
    }

    let (ok, output) = helm(&["uninstall", &release, "--namespace", &namespace]);
    assert!(ok, "helm uninstall: {output}");
    assert!(
        configurations.get_opt(&release).await.unwrap().is_none(),
        "uninstall removes the webhook configuration"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}

/// A ServiceAccount `name` in `namespace`, bound there to a new ClusterRole `role` with
/// `rules`, and a TokenRequest token for it: a caller authenticated by TokenReview and
/// authorized by SubjectAccessReview for real.
async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    role: &str,
    rules: serde_json::Value,
) -> String {
    use k8s_openapi::api::{
        authentication::v1::TokenRequest,
        core::v1::ServiceAccount,
        rbac::v1::{ClusterRole, RoleBinding},
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": role}, "rules": rules})).unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let token_request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 600}
    }))
    .unwrap();
    accounts
        .create_subresource::<TokenRequest, TokenRequest>(
            "token",
            name,
            &PostParams::default(),
            &token_request,
        )
        .await
        .expect("a token for the ServiceAccount")
        .status
        .expect("token status")
        .token
}

/// An MCP registry on loopback: two pages of `GET /upstream/v0.1/servers`, as the MCP Registry
/// API answers them.
async fn serve_registry() -> String {
    use axum::{extract::Query, routing::get};
    use std::collections::HashMap;
    let entry = |name: &str, version: &str| {
        json!({"server": {"name": name, "version": version, "description": format!("{name} server"),
                          "remotes": [{"type": "streamable-http", "url": format!("https://{}.example.com/mcp", name.replace('/', "-"))}]},
               "_meta": {"io.modelcontextprotocol.registry/official": {
                   "status": "active", "isLatest": true,
                   "publishedAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z"}}})
    };
    let first = json!({"servers": [entry("io.example/alpha", "1.0.0"), entry("io.example/beta", "2.1.0")],
                       "metadata": {"count": 2, "nextCursor": "page-2"}});
    let second = json!({"servers": [entry("io.example/gamma", "0.3.0")], "metadata": {"count": 1}});
    let router = axum::Router::new().route(
        "/upstream/v0.1/servers",
        get(move |Query(query): Query<HashMap<String, String>>| {
            let (first, second) = (first.clone(), second.clone());
            async move {
                let page = if query.get("cursor").map(String::as_str) == Some("page-2") {
                    second
                } else {
                    first
                };
                axum::Json(page)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upstream", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    url
}

#[tokio::test]
#[ignore = "needs a cluster: run e2e/run.sh"]
async fn an_mcp_registry_source_syncs_and_each_namespace_serves_a_registry() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let (system, team) = system_and_team(&client, &database_url, &run, "r").await;
    let registry = serve_registry().await;
    let _controller = start_replica(&format!("{run}-r"), &database_url, &system, &[&team]);
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), &team);
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "upstream"},
        "spec": {"source": {"mcpRegistry": {"url": registry}},
                 "curation": [{"match": "io.example/beta", "approved": true}]}
    }))
    .unwrap();
    sources
        .create(&PostParams::default(), &source)
        .await
        .expect("the apiserver takes an mcpRegistry source");
    let synced = wait_ready(&sources, "upstream", 3).await;
    let sync = synced.status.unwrap().registry_sync.expect("a sync state");
    assert_eq!(sync.updated_up_to.as_deref(), Some("2026-01-02T00:00:00Z"));
    if env("E2E_STRIP_CEL").is_none() {
        let both: CatalogSource = serde_json::from_value(json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "both"},
            "spec": {"source": {"mcpRegistry": {"url": registry}, "url": {"url": registry}}}
        }))
        .unwrap();
        let refused = sources
            .create(&PostParams::default(), &both)
            .await
            .expect_err("two source types are refused");
        assert!(
            refused
                .to_string()
                .contains("exactly one of inline, configMap, url or mcpRegistry"),
            "{refused}"
        );
    }

    // The namespace's registry, read as a ServiceAccount with a TokenRequest token: the same
    // TokenReview and SubjectAccessReview as every read.
    let role = format!("curio-e2e-{run}-mcpservers");
    let token = service_account_token(
        &client,
        &team,
        "mcp-client",
        &role,
        json!([{"apiGroups": ["curio.dev"], "resources": ["mcpservers"], "verbs": ["get", "list"]}]),
    )
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let api_port = free_port();
    let _api = Replica {
        name: format!("{run}-r-api"),
        child: spawn_curio(
            &format!("{run}-r-api"),
            &[
                "api",
                "--database-url",
                &database_url,
                "--listen",
                &format!("127.0.0.1:{api_port}"),
            ],
        ),
        metrics: String::new(),
    };
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api_port}/registry/namespaces/{team}");
    let get = |path: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let response = http.get(&path).bearer_auth(&token).send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.json::<serde_json::Value>().await.ok()?))
        }
    };
    let list: serde_json::Value = eventually("the namespace's registry", || {
        let url = format!("{base}/v0.1/servers?version=latest");
        async move {
            let (status, body) = get(url).await?;
            (status == 200).then_some(body)
        }
    })
    .await;
    let names: Vec<&str> = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["io.example/alpha", "io.example/beta", "io.example/gamma"]
    );
    let (status, approved) = get(format!("{base}/approved/v0.1/servers")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(approved["servers"][0]["server"]["name"], "io.example/beta");
    assert_eq!(approved["servers"].as_array().unwrap().len(), 1);
    let (status, one) = get(format!(
        "{base}/v0.1/servers/io.example%2Fgamma/versions/latest"
    ))
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(one["server"]["version"], "0.3.0");
    // Another namespace's registry: a 403 that names nothing.
    let (status, refused) = get(format!(
        "http://127.0.0.1:{api_port}/registry/namespaces/{system}/v0.1/servers"
    ))
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert!(refused["error"].is_string(), "{refused}");

    let _ = roles.delete(&role, &DeleteParams::default()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&system, &team] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}

/// `kubectl <args>` as the kubeconfig's identity; (success, stdout, stderr).
fn kubectl(args: &[&str]) -> (bool, String, String) {
    let kubectl = env("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let output = Command::new(&kubectl)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {kubectl} (set KUBECTL, or use e2e/run.sh): {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn inline_models(namespace: &str, name: &str, models: &[(&str, &str)]) -> String {
    let assets: Vec<serde_json::Value> = models
        .iter()
        .map(|(name, version)| {
            json!({"kind": "Model", "name": name, "version": version,
                   "displayName": format!("Display {name}"), "provider": "e2e", "license": "apache-2.0"})
        })
        .collect();
    json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"inline": {"assets": assets}}}
    })
    .to_string()
}

#[tokio::test]
#[ignore = "needs a cluster with the aggregation layer's front-proxy flags: run e2e/run.sh"]
async fn kubectl_reads_the_catalog_through_the_aggregation_layer() {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    let Setup {
        client,
        database_url,
        run,
    } = setup().await;
    let (system, team_a) = system_and_team(&client, &database_url, &run, "ka").await;
    let team_b = format!("e2e-{run}-kb");
    create_namespace(&client, &team_b).await;
    let _controller = start_replica(
        &format!("{run}-k"),
        &database_url,
        &system,
        &[&team_a, &team_b],
    );
    let (ok, out) = kubectl_apply(&inline_models(
        &team_a,
        "models",
        &[
            ("granite-3-8b-instruct", "3.0"),
            ("meta-llama/Llama-3.1-8B-Instruct", "3.1"),
        ],
    ));
    assert!(ok, "{out}");
    let (ok, out) = kubectl_apply(&inline_models(
        &team_b,
        "models",
        &[("secret-b-model", "1")],
    ));
    assert!(ok, "{out}");
    wait_ready(&Api::namespaced(client.clone(), &team_a), "models", 2).await;
    wait_ready(&Api::namespaced(client.clone(), &team_b), "models", 1).await;

    // curio api, out of cluster, serving HTTPS for the aggregator; the APIService reaches it
    // through an ExternalName Service (localhost).
    let port = free_port();
    let _api = Replica {
        name: format!("{run}-k-api"),
        child: spawn_curio(
            &format!("{run}-k-api"),
            &[
                "api",
                "--database-url",
                &database_url,
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
                "--secure-listen",
                &format!("127.0.0.1:{port}"),
            ],
        ),
        metrics: String::new(),
    };
    let services: Api<Service> = Api::namespaced(client.clone(), &system);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "curio-api"},
        "spec": {"type": "ExternalName", "externalName": "localhost"}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let apiservices: Api<APIService> = Api::all(client.clone());
    let name = "v1alpha1.catalog.curio.dev";
    // One APIService per cluster: a leftover from an earlier run is replaced.
    let _ = apiservices.delete(name, &DeleteParams::default()).await;
    let apiservice: APIService = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "group": "catalog.curio.dev", "version": "v1alpha1",
            "service": {"namespace": system, "name": "curio-api", "port": port},
            "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 1000, "versionPriority": 15
        }
    }))
    .unwrap();
    eventually("the APIService created", || {
        let (apiservices, apiservice) = (apiservices.clone(), apiservice.clone());
        async move {
            apiservices
                .create(&PostParams::default(), &apiservice)
                .await
                .ok()
        }
    })
    .await;
    eventually("the APIService Available", || {
        let apiservices = apiservices.clone();
        async move {
            let current = apiservices.get(name).await.ok()?;
            let conditions = current.status?.conditions?;
            conditions
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
                .then_some(())
        }
    })
    .await;

    // RBAC in the catalog.curio.dev group: alice reads team A; rita reads every namespace.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role = format!("curio-e2e-{run}-catalog-view");
    let (alice, rita) = (format!("e2e-alice-{run}"), format!("e2e-rita-{run}"));
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": role},
                "rules": [{"apiGroups": ["catalog.curio.dev"], "resources": ["models", "mcpservers", "agents"],
                           "verbs": ["get", "list", "watch"]}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let (ok, out) = kubectl_apply(
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "alice-catalog", "namespace": team_a},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "name": alice}]})
        .to_string(),
    );
    assert!(ok, "{out}");
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding = format!("curio-e2e-{run}-rita");
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "name": rita}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    // Discovery: kubectl sees the resources.
    let (ok, resources, err) = kubectl(&["api-resources", "--api-group=catalog.curio.dev"]);
    assert!(ok, "{err}");
    eprintln!("kubectl api-resources --api-group=catalog.curio.dev\n{resources}");
    for plural in ["models", "mcpservers", "agents"] {
        assert!(resources.contains(plural), "{resources}");
    }
    let (ok, can, _) = kubectl(&[
        "auth",
        "can-i",
        "list",
        "models.catalog.curio.dev",
        "-n",
        &team_a,
        "--as",
        &alice,
    ]);
    assert!(ok && can.trim() == "yes", "{can}");

    // A table with Curio's columns, as alice; -o wide adds more.
    let (ok, table, err) = kubectl(&["get", "models", "-n", &team_a, "--as", &alice]);
    assert!(ok, "{err}");
    eprintln!("kubectl get models -n {team_a}\n{table}");
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "DISPLAY NAME",
        "VERSION",
        "STAGE",
        "APPROVED",
        "SOURCE",
        "AGE",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert!(
        table.contains("granite-3-8b-instruct.v3-0.models"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");
    let (ok, wide, err) = kubectl(&["get", "models", "-n", &team_a, "--as", &alice, "-o", "wide"]);
    assert!(ok, "{err}");
    eprintln!("kubectl get models -n {team_a} -o wide\n{wide}");
    assert!(
        wide.lines().next().unwrap_or_default().contains("ASSET"),
        "{wide}"
    );
    assert!(wide.contains("meta-llama/Llama-3.1-8B-Instruct"), "{wide}");

    // yaml and json, the original name by field selector.
    let (ok, yaml, err) = kubectl(&[
        "get",
        "model",
        "granite-3-8b-instruct.v3-0.models",
        "-n",
        &team_a,
        "--as",
        &alice,
        "-o",
        "yaml",
    ]);
    assert!(ok, "{err}");
    assert!(
        yaml.contains("kind: Model") && yaml.contains("name: granite-3-8b-instruct"),
        "{yaml}"
    );
    let (ok, json_out, err) = kubectl(&[
        "get",
        "models",
        "-n",
        &team_a,
        "--as",
        &alice,
        "-o",
        "json",
        "--field-selector",
        "spec.name=meta-llama/Llama-3.1-8B-Instruct",
    ]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{json_out}");
    assert_eq!(list["items"][0]["spec"]["version"], "3.1");

    // Another team's namespace: Forbidden. A cluster-wide reader sees both with -A.
    let (ok, _, err) = kubectl(&["get", "models", "-n", &team_b, "--as", &alice]);
    assert!(!ok && err.contains("Forbidden"), "{err}");
    let (ok, all, err) = kubectl(&["get", "models", "-A", "--as", &rita]);
    assert!(ok, "{err}");
    assert!(all.contains(&team_a) && all.contains(&team_b), "{all}");
    let (ok, _, err) = kubectl(&["get", "models", "-A", "--as", &alice]);
    assert!(!ok && err.contains("Forbidden"), "{err}");

    // explain, from the group's OpenAPI.
    let (ok, explained, err) = kubectl(&["explain", "models.spec"]);
    assert!(ok, "{err}");
    assert!(explained.contains("displayName"), "{explained}");

    // get -w sees an edit of the CatalogSource within 5 s.
    let kubectl_bin = env("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut watch = Command::new(&kubectl_bin)
        .args([
            "get",
            "models",
            "-n",
            &team_a,
            "--as",
            &alice,
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial listing first.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200))
            && line.contains("granite-3-8b-instruct")
        {
            break;
        }
    }
    let (ok, out) = kubectl_apply(&inline_models(
        &team_a,
        "models",
        &[
            ("granite-3-8b-instruct", "3.0"),
            ("meta-llama/Llama-3.1-8B-Instruct", "3.1"),
            ("phi-4", "1"),
        ],
    ));
    assert!(ok, "{out}");
    let edited = Instant::now();
    let seen = loop {
        match lines_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("phi-4.v1.models") => break Some(line),
            _ if edited.elapsed() > Duration::from_secs(5) => break None,
            _ => {}
        }
    };
    let _ = watch.kill();
    let _ = watch.wait();
    let seen = seen.expect("kubectl get -w shows the added model within 5 s");
    assert!(seen.starts_with("ADDED"), "{seen}");
    eprintln!(
        "kubectl get -w saw the edit after {:?}: {seen}",
        edited.elapsed()
    );

    let _ = apiservices.delete(name, &DeleteParams::default()).await;
    let _ = bindings.delete(&binding, &DeleteParams::default()).await;
    let _ = roles.delete(&role, &DeleteParams::default()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&system, &team_a, &team_b] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}
