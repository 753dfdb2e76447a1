//! Cluster mode: Curio as it runs on Kubernetes — two leader-electing `curio controller`
//! replicas and one `curio api`, as local processes — against the cluster in `KUBECONFIG`.
//! The harness applies the tenants' objects to the cluster, serves their URL catalogs itself,
//! gives each tenant's users ServiceAccount tokens, and reaches Curio's processes only through
//! a [`Relay`] it can take down (the apiserver outage).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{authentication::v1::TokenRequest, coordination::v1::Lease, core::v1::ServiceAccount},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    config::Kubeconfig,
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    proxy::Relay,
    tenants::{MODELS_ACCOUNT, Tenant, VIEWER_ACCOUNT},
};

const MANAGER: &str = "curio-acceptance";
const LEASE: &str = "curio-controller";
/// How long the harness's file server holds back a slow path (see [`crate::noisy`]).
const SLOW_SERVE: Duration = Duration::from_secs(8);

/// A child process killed (SIGKILL) when dropped.
struct Process {
    name: String,
    role: &'static str,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Processes {
    api: Option<Process>,
    controllers: Vec<Process>,
    /// Replicas started so far: each new one gets the next name.
    started: usize,
}

/// A served file's body and ETag.
type Served = (Arc<str>, String);

/// Catalogs the harness serves at `/files/…` with their ETags (as any web server or object
/// store would), some of them slowly.
#[derive(Clone, Default)]
struct Files {
    content: Arc<RwLock<HashMap<String, Served>>>,
    slow: Arc<RwLock<Vec<String>>>,
}

pub struct Cluster {
    client: Client,
    binary: PathBuf,
    pub database_url: String,
    /// Where the Lease lives.
    pub system_namespace: String,
    watch_namespaces: Vec<String>,
    /// Curio's kubeconfig: the harness's, pointed at the relay.
    kubeconfig: PathBuf,
    pub relay: Relay,
    files: Files,
    files_base: String,
    api_port: u16,
    logs: PathBuf,
    processes: Mutex<Processes>,
}

pub struct Settings {
    pub binary: PathBuf,
    pub database_url: String,
    pub system_namespace: String,
    pub watch_namespaces: Vec<String>,
    /// Evidence folder: the processes' logs and Curio's kubeconfig go here.
    pub out: PathBuf,
    /// Apply the CRDs without their CEL rules (servers before 1.25).
    pub strip_cel: bool,
    pub stop: CancellationToken,
}

impl Cluster {
    /// Connects to the cluster in `KUBECONFIG`, applies the CRDs, and starts the relay and the
    /// file server. Curio itself starts with [`Cluster::start`].
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let client = Client::try_default()
            .await
            .context("a cluster from KUBECONFIG")?;
        apply_crds(&client, settings.strip_cel).await?;

        let mut config = Kubeconfig::read().context("reading the kubeconfig")?;
        let upstream = point_at_relay(&mut config, None)?;
        let relay = Relay::start(upstream, settings.stop.clone()).await?;
        point_at_relay(&mut config, Some(relay.port))?;
        let kubeconfig = settings.out.join("curio-kubeconfig.json");
        std::fs::write(&kubeconfig, serde_json::to_string_pretty(&config)?)?;

        let files = Files::default();
        let files_base = serve_files(files.clone(), settings.stop).await?;
        let api_port = crate::free_port()?;
        Ok(Self {
            client,
            binary: settings.binary,
            database_url: settings.database_url,
            system_namespace: settings.system_namespace,
            watch_namespaces: settings.watch_namespaces,
            kubeconfig,
            relay,
            files,
            files_base,
            api_port,
            logs: settings.out,
            processes: Mutex::new(Processes::default()),
        })
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// Serves `relative` if it is under `files/`, else applies its documents (JSON documents
    /// joined by `---`, as the standalone folder holds them) with server-side apply:
    /// namespaces first, the rest at once.
    pub async fn put(&self, relative: &str, content: &str) -> anyhow::Result<()> {
        if relative.starts_with("files/") {
            use sha2::Digest;
            let etag = format!("\"{:x}\"", sha2::Sha256::digest(content.as_bytes()));
            if let Ok(mut files) = self.files.content.write() {
                files.insert(relative.to_owned(), (Arc::from(content), etag));
            }
            return Ok(());
        }
        let content = content.replace("${CURIO_URL}", &self.files_base);
        let documents = content
            .split("\n---\n")
            .map(serde_json::from_str::<Value>)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{relative} is not JSON documents"))?;
        let (namespaces, rest): (Vec<Value>, Vec<Value>) = documents
            .into_iter()
            .partition(|d| d["kind"] == "Namespace");
        for namespace in namespaces {
            self.apply(namespace).await?;
        }
        futures::stream::iter(rest)
            .map(|d| self.apply(d))
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .with_context(|| format!("applying {relative}"))?;
        Ok(())
    }

    /// Serves `relative` only after [`SLOW_SERVE`].
    pub fn serve_slowly(&self, relative: &str) {
        if let Ok(mut slow) = self.files.slow.write() {
            slow.push(relative.to_owned());
        }
    }

    async fn apply(&self, document: Value) -> anyhow::Result<()> {
        let resource = api_resource(&document)?;
        let object: DynamicObject = serde_json::from_value(document)?;
        let name = object.name_any();
        let api: Api<DynamicObject> = match object.namespace() {
            Some(namespace) => Api::namespaced_with(self.client.clone(), &namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {} {name}", resource.kind))?;
        Ok(())
    }

    /// Gives each tenant's viewer and models-only user a ServiceAccount token (the bindings
    /// in the tenant's files name these ServiceAccounts).
    pub async fn issue_tokens(&self, tenants: &mut [Tenant]) -> anyhow::Result<()> {
        let issued: Vec<(String, String)> = futures::stream::iter(tenants.iter())
            .map(|tenant| async move {
                let viewer = self.token(&tenant.namespace, VIEWER_ACCOUNT).await?;
                let models = self.token(&tenant.namespace, MODELS_ACCOUNT).await?;
                anyhow::Ok((viewer, models))
            })
            .buffered(8)
            .try_collect()
            .await?;
        for (tenant, (viewer, models)) in tenants.iter_mut().zip(issued) {
            tenant.viewer_token = viewer;
            tenant.models_token = models;
        }
        Ok(())
    }

    async fn token(&self, namespace: &str, account: &str) -> anyhow::Result<String> {
        self.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace}}))
            .await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        // Long enough for any run; the apiserver may shorten it, and says so in the answer.
        let request: TokenRequest = serde_json::from_value(json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": 6 * 3600}
        }))?;
        let answer = accounts
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                account,
                &PostParams::default(),
                &request,
            )
            .await
            .with_context(|| format!("a token for {namespace}/{account}"))?;
        answer
            .status
            .map(|s| s.token)
            .context("a TokenRequest without a token")
    }

    /// Migrates the database, then starts `curio api` and two controller replicas and waits
    /// until the API is ready.
    pub async fn start(&self) -> anyhow::Result<()> {
        let migrate = Command::new(&self.binary)
            .args(["migrate", "--database-url", &self.database_url])
            .stdout(Stdio::null())
            .stderr(self.log("migrate")?)
            .status()?;
        if !migrate.success() {
            bail!("curio migrate failed: {migrate}");
        }
        let api = self.spawn(
            "api",
            "curio api",
            &[
                "api",
                "--database-url",
                &self.database_url,
                "--listen",
                &format!("127.0.0.1:{}", self.api_port),
                "--metrics-address",
                &format!("127.0.0.1:{}", crate::free_port()?),
            ],
        )?;
        if let Ok(mut processes) = self.processes.lock() {
            processes.api = Some(api);
        }
        for _ in 0..2 {
            self.start_controller()?;
        }
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "curio api did not become ready (see {})",
            self.logs.display()
        )
    }

    /// Starts one more controller replica.
    pub fn start_controller(&self) -> anyhow::Result<String> {
        let name = {
            let mut processes = self
                .processes
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            processes.started += 1;
            format!("controller-{}", processes.started)
        };
        let identity = format!("system:serviceaccount:{}:curio", self.system_namespace);
        let process = self.spawn(
            &name,
            "curio controller",
            &[
                "controller",
                "--database-url",
                &self.database_url,
                "--lease-namespace",
                &self.system_namespace,
                "--replica",
                &name,
                "--controller-identity",
                &identity,
                "--watch-namespaces",
                &self.watch_namespaces.join(","),
                "--metrics-address",
                &format!("127.0.0.1:{}", crate::free_port()?),
                "--allow-url-cidrs",
                "127.0.0.1/32",
                "--retry-base",
                "1s",
            ],
        )?;
        if let Ok(mut processes) = self.processes.lock() {
            processes.controllers.push(process);
        }
        Ok(name)
    }

    fn log(&self, name: &str) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("curio-{name}.log")))?)
    }

    fn spawn(&self, name: &str, role: &'static str, args: &[&str]) -> anyhow::Result<Process> {
        let child = Command::new(&self.binary)
            .args(args)
            .args(["--log-format", "json"])
            .env("KUBECONFIG", &self.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("ACCEPTANCE_CURIO_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(self.log(name)?)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        Ok(Process {
            name: name.to_owned(),
            role,
            child,
        })
    }

    /// Stops the API and every replica (SIGKILL).
    pub fn stop(&self) {
        if let Ok(mut processes) = self.processes.lock() {
            processes.api.take();
            processes.controllers.clear();
        }
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        let Ok(processes) = self.processes.lock() else {
            return Vec::new();
        };
        processes
            .api
            .iter()
            .chain(processes.controllers.iter())
            .map(|p| (p.role.to_owned(), p.child.id()))
            .collect()
    }

    /// The replica holding the Lease.
    pub async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.system_namespace);
        leases
            .get(LEASE)
            .await
            .ok()?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    }

    /// SIGKILLs replica `name`; whether it was running.
    pub fn kill(&self, name: &str) -> bool {
        let Ok(mut processes) = self.processes.lock() else {
            return false;
        };
        let before = processes.controllers.len();
        processes.controllers.retain(|p| p.name != name);
        processes.controllers.len() < before
    }

    /// A RefreshJob's `status.phase`.
    pub async fn job_phase(&self, namespace: &str, name: &str) -> Option<String> {
        let resource =
            api_resource(&json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob"}))
                .ok()?;
        let jobs: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let job = jobs.get(name).await.ok()?;
        job.data["status"]["phase"].as_str().map(str::to_owned)
    }

    /// Deletes the run's namespaces (on a bare apiserver they stay Terminating: harmless).
    pub async fn clean_up(&self, namespaces: &[String]) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        for namespace in namespaces {
            let _ = api.delete(namespace, &DeleteParams::default()).await;
        }
    }
}

/// The API resource of a document the harness applies.
fn api_resource(document: &Value) -> anyhow::Result<ApiResource> {
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    let kind = document["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "Namespace" => "namespaces",
        "ConfigMap" => "configmaps",
        "ServiceAccount" => "serviceaccounts",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "CatalogSource" => "catalogsources",
        "RefreshJob" => "refreshjobs",
        other => bail!("the harness does not apply {other:?}"),
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// Points the current context's cluster of `config` at the relay on `port` (keeping the
/// server's name for TLS), or with `None` only reads it; the server's `host:port` either way.
fn point_at_relay(config: &mut Kubeconfig, port: Option<u16>) -> anyhow::Result<String> {
    let context_name = config
        .current_context
        .clone()
        .context("the kubeconfig has no current context")?;
    let cluster_name = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .context("the current context is not in the kubeconfig")?;
    let cluster = config
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_mut())
        .context("the current context's cluster is not in the kubeconfig")?;
    let server = url::Url::parse(cluster.server.as_deref().unwrap_or_default())
        .context("the cluster's server is not a URL")?;
    let host = server.host_str().context("the server has no host")?;
    let upstream = format!("{host}:{}", server.port_or_known_default().unwrap_or(443));
    if let Some(port) = port {
        if cluster.tls_server_name.is_none() {
            cluster.tls_server_name = Some(host.trim_matches(['[', ']']).to_owned());
        }
        cluster.server = Some(format!("https://127.0.0.1:{port}"));
    }
    Ok(upstream)
}

async fn apply_crds(client: &Client, strip_cel: bool) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in curio::crd::generate::definitions() {
        let name = crd.name_any();
        let crd = if strip_cel {
            curio::crd::generate::without_cel(crd)?
        } else {
            crd
        };
        crds.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let established = crds
                .get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .is_some_and(|s| {
                    s.conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established within a minute");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Serves `files` at `http://127.0.0.1:<port>/files/…`; the base URL.
async fn serve_files(files: Files, stop: CancellationToken) -> anyhow::Result<String> {
    use axum::{
        extract::Path,
        http::{HeaderMap, StatusCode, header},
        response::IntoResponse,
        routing::get,
    };
    let router = axum::Router::new().route(
        "/files/{*path}",
        get(move |Path(path): Path<String>, headers: HeaderMap| {
            let files = files.clone();
            async move {
                let key = format!("files/{path}");
                if files.slow.read().is_ok_and(|s| s.contains(&key)) {
                    tokio::time::sleep(SLOW_SERVE).await;
                }
                let content = files.content.read().ok().and_then(|f| f.get(&key).cloned());
                let Some((body, etag)) = content else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                let unchanged = headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == etag.as_bytes());
                if unchanged {
                    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
                } else {
                    (StatusCode::OK, [(header::ETAG, etag)], body.to_string()).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_is_pointed_at_the_relay_keeping_the_servers_name() {
        let mut config: Kubeconfig = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": "https://api.example.com:6443"}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}]
        }))
        .unwrap();
        assert_eq!(
            point_at_relay(&mut config, None).unwrap(),
            "api.example.com:6443"
        );
        point_at_relay(&mut config, Some(7000)).unwrap();
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:7000"));
        assert_eq!(cluster.tls_server_name.as_deref(), Some("api.example.com"));
    }

    #[test]
    fn only_the_kinds_the_harness_writes_are_applied() {
        let job = api_resource(&json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob"}))
            .unwrap();
        assert_eq!(
            (job.group.as_str(), job.plural.as_str()),
            ("curio.dev", "refreshjobs")
        );
        let namespace = api_resource(&json!({"apiVersion": "v1", "kind": "Namespace"})).unwrap();
        assert_eq!(
            (namespace.group.as_str(), namespace.version.as_str()),
            ("", "v1")
        );
        assert!(api_resource(&json!({"apiVersion": "v1", "kind": "Secret"})).is_err());
    }
}
