//! `curio standalone` as a real process on a copy of `examples/standalone`, once on the
//! embedded SQLite store and once on PostgreSQL, checked over HTTP: sources Ready with their
//! counts, tenant isolation, the models-only viewer, edits, a malformed file, a deleted source
//! file, and the audit trail of each.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::api::Client;
use serde_json::Value;

struct Standalone {
    child: Child,
    base: String,
    stderr_log: PathBuf,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// `examples/standalone` as committed (so edits to the working copy, as the README invites,
/// never change what this test sees), or as it is when this is not a git checkout.
fn pristine_examples(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let staging = to.with_extension("git");
    std::fs::create_dir_all(&staging).unwrap();
    let archived = Command::new("sh")
        .arg("-c")
        .arg("git -C \"$1\" archive HEAD examples/standalone | tar -x -C \"$2\"")
        .args(["sh"])
        .arg(repo)
        .arg(&staging)
        .status()
        .is_ok_and(|s| s.success())
        && staging.join("examples/standalone").is_dir();
    if archived {
        copy_dir(&staging.join("examples/standalone"), to);
    } else {
        copy_dir(&repo.join("examples/standalone"), to);
    }
}

/// A second process on the same data directory exits at once, naming the first one's PID.
fn second_process_is_refused(manifests: &Path, data: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_curio"))
        .args(["standalone", "--manifests"])
        .arg(manifests)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run a second curio standalone");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("another curio standalone (PID "),
        "the message names the holder: {stderr}"
    );
}

/// Starts the process on port 0 and reads the address it prints.
fn start(manifests: &Path, data: &Path, database_url: Option<&str>) -> Standalone {
    let stderr_log = data.join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_curio"));
    command
        .args(["standalone", "--manifests"])
        .arg(manifests)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"])
        .args(["--poll-interval", "300ms"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_log).unwrap());
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command.spawn().expect("start curio standalone");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let banner = lines.next().expect("a banner line").unwrap();
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_owned();
    let rest: Vec<String> = lines.by_ref().map_while(Result::ok).take(14).collect();
    // Keep reading what else it prints: a pipe closed under a writing process is not what a
    // terminal or a log collector does.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    assert!(
        rest.iter()
            .any(|l| l.contains("kubectl:") && l.contains("https://127.0.0.1:")),
        "the banner shows the HTTPS address: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("alice") && l.contains("vera")),
        "the banner lists the users: {rest:?}"
    );
    let curls: Vec<&String> = rest
        .iter()
        .filter(|l| l.trim_start().starts_with("curl"))
        .collect();
    assert_eq!(curls.len(), 3, "three curl commands: {rest:?}");
    assert!(curls[2].contains("403"), "{curls:?}");
    Standalone {
        child,
        base,
        stderr_log,
    }
}

/// The real kubectl (KUBECTL, as scripts/test.sh provides) against standalone's HTTPS listener.
fn kubectl_reads_the_catalog(kubeconfig: &Path) {
    let kubectl = std::env::var("KUBECTL").expect(
        "KUBECTL: a kubectl binary (scripts/test.sh sets it from scripts/tools.sh kubectl)",
    );
    let run = |args: &[&str]| {
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    };
    let table = run(&["--user", "vera", "get", "models", "-n", "team-a"]);
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("DISPLAY NAME")
            && lines[0].contains("APPROVED"),
        "{stdout}"
    );
    assert_eq!(
        lines.len(),
        5,
        "a header and team-a's four models: {stdout}"
    );
    let denied = run(&["--user", "vera", "get", "models", "-n", "team-b"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(!denied.status.success());
    assert!(stderr.contains("Forbidden"), "{stderr}");
    let yaml = run(&[
        "--user",
        "vera",
        "get",
        "mdl",
        "-n",
        "team-a",
        "--field-selector",
        "spec.name=meta-llama/Llama-3.1-8B-Instruct",
        "-o",
        "jsonpath={.items[*].spec.version}",
    ]);
    assert_eq!(String::from_utf8_lossy(&yaml.stdout), "3.1");
}

async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if probe().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// (Ready status, assetCount, message) of a source, as the API shows it.
async fn source_status(api: &Client, token: &str, ns: &str, name: &str) -> (String, i64, String) {
    let (code, body) = api
        .get(
            Some(token),
            &format!("/api/v1/namespaces/{ns}/catalogsources/{name}"),
            &[],
        )
        .await;
    if code != 200 {
        return (format!("HTTP {code}"), -1, String::new());
    }
    let status = &body["status"];
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (
        ready,
        status["assetCount"].as_i64().unwrap_or(-1),
        status["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn audit(api: &Client, token: &str, ns: &str) -> Vec<Value> {
    let (code, body) = api
        .get(
            Some(token),
            &format!("/api/v1/namespaces/{ns}/auditevents?limit=500"),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn exercise(database_url: Option<&str>) {
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    let data = work.path().join("data");
    pristine_examples(&manifests);
    std::fs::create_dir_all(&data).unwrap();
    let process = start(&manifests, &data, database_url);
    let api = Client::new(process.base.clone());
    if database_url.is_none() {
        second_process_is_refused(&manifests, &data);
    }

    // Every source Ready with its count.
    let expected = [
        ("alice-token", "team-a", "foundation-models", 4),
        ("alice-token", "team-a", "mcp-servers", 3),
        ("alice-token", "team-a", "agents", 2),
        ("bob-token", "team-b", "open-models", 3),
        ("bob-token", "team-b", "mcp-servers", 2),
        ("bob-token", "team-b", "agents", 1),
        ("bob-token", "team-b", "agent-cards", 2),
        // team-a's approved MCP servers, synced from team-a's registry on this process.
        ("bob-token", "team-b", "team-a-registry", 1),
    ];
    for (token, ns, name, count) in expected {
        let api = &api;
        eventually(&format!("{ns}/{name} Ready with {count}"), || async move {
            let (ready, assets, _) = source_status(api, token, ns, name).await;
            ready == "True" && assets == count
        })
        .await;
    }

    // The MCP registry tour: team-b's registry serves what it mirrored from team-a's.
    let (code, body) = api
        .get(
            Some("tess-token"),
            "/registry/namespaces/team-b/v0.1/servers?version=latest&search=postgres",
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["servers"][0]["server"]["name"], "modelcontextprotocol/server-postgres",
        "{body}"
    );
    assert_eq!(
        body["servers"][0]["_meta"]["dev.curio/catalog"]["source"],
        "team-a-registry"
    );
    let (code, _) = api
        .get(
            Some("registry-mirror-token"),
            "/registry/namespaces/team-b/v0.1/servers",
            &[],
        )
        .await;
    assert_eq!(code, 403, "the mirror token reads team-a's registry only");
    let (code, body) = api
        .get(
            Some("tess-token"),
            "/api/v1/namespaces/team-b/agents/release-notes-drafter",
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["agent"]["skills"][0]["id"], "draft-notes");

    // Tenant isolation: vera reads team-a, not team-b.
    let (code, body) = api
        .get(Some("vera-token"), "/api/v1/namespaces/team-a/models", &[])
        .await;
    assert_eq!(code, 200);
    assert_eq!(names(&body).len(), 4);
    let (code, body) = api
        .get(Some("vera-token"), "/api/v1/namespaces/team-b/models", &[])
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    let (code, _) = api
        .get(Some("vera-token"), "/api/v1/namespaces/team-b/assets", &[])
        .await;
    assert_eq!(code, 403);

    // The same through kubectl, with the kubeconfig standalone wrote (HTTPS, per-user tokens).
    kubectl_reads_the_catalog(&data.join("kubeconfig"));

    // The models-only viewer never sees an MCP server or an agent.
    let (code, body) = api
        .get(Some("mo-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    assert_eq!(code, 200, "{body}");
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 4);
    assert!(kinds.iter().all(|k| *k == "Model"), "{kinds:?}");
    for plural in ["mcpservers", "agents"] {
        let (code, _) = api
            .get(
                Some("mo-token"),
                &format!("/api/v1/namespaces/team-a/{plural}"),
                &[],
            )
            .await;
        assert_eq!(code, 403, "{plural}");
    }
    let (code, body) = api
        .get(Some("max-token"), "/api/v1/assets?namespaces=team-b", &[])
        .await;
    assert_eq!(code, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["kind"] == "Model"), "{body}");

    // Editing a catalog file (served over HTTP to a URL source) shows within 5 s.
    let agents_file = manifests.join("files/team-a/agents.yaml");
    let original = std::fs::read_to_string(&agents_file).unwrap();
    let edited = format!(
        "{original}  - kind: Agent\n    name: incident-summarizer\n    version: \"0.1.0\"\n    provider: team-a\n    license: apache-2.0\n"
    );
    std::fs::write(&agents_file, &edited).unwrap();
    let edited_at = Instant::now();
    eventually("the new agent listed", || {
        let api = &api;
        async move {
            let (_, body) = api
                .get(Some("vera-token"), "/api/v1/namespaces/team-a/agents", &[])
                .await;
            names(&body).contains(&"incident-summarizer".to_string())
        }
    })
    .await;
    eprintln!("edit visible after {:?}", edited_at.elapsed());

    // And a ConfigMap's catalog, edited in its manifest.
    let mcp_file = manifests.join("team-a/mcp-servers.yaml");
    let mcp = std::fs::read_to_string(&mcp_file).unwrap();
    std::fs::write(
        &mcp_file,
        mcp.replace(
            "name: modelcontextprotocol/server-filesystem",
            "name: modelcontextprotocol/server-everything",
        ),
    )
    .unwrap();
    eventually("the renamed MCP server", || {
        let api = &api;
        async move {
            let (_, body) = api
                .get(
                    Some("alice-token"),
                    "/api/v1/namespaces/team-a/mcpservers",
                    &[],
                )
                .await;
            let listed = names(&body);
            listed.contains(&"modelcontextprotocol/server-everything".to_string())
                && !listed.contains(&"modelcontextprotocol/server-filesystem".to_string())
        }
    })
    .await;

    // A malformed catalog keeps the last good assets and says why in the source's status.
    std::fs::write(
        &agents_file,
        "assets:\n  - kind: Agent\n    name: [broken\n",
    )
    .unwrap();
    eventually("agents not Ready, with the parse error", || {
        let api = &api;
        async move {
            let (ready, assets, message) =
                source_status(api, "alice-token", "team-a", "agents").await;
            ready == "False" && assets == 3 && message.contains("line")
        }
    })
    .await;
    let (_, body) = api
        .get(Some("vera-token"), "/api/v1/namespaces/team-a/agents", &[])
        .await;
    assert_eq!(names(&body).len(), 3, "the last good agents stay");

    // A malformed manifest changes nothing and is reported with its path and line.
    std::fs::write(
        &mcp_file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n",
    )
    .unwrap();
    let log = process.stderr_log.clone();
    eventually("the broken manifest reported", || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.contains("mcp-servers.yaml") && l.contains("line"))
            })
        }
    })
    .await;
    let (_, body) = api
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/mcpservers",
            &[],
        )
        .await;
    assert_eq!(
        names(&body).len(),
        3,
        "the broken file's last good objects stay"
    );
    assert_eq!(
        source_status(&api, "alice-token", "team-a", "mcp-servers")
            .await
            .0,
        "True"
    );

    // A misspelled field is refused at its line; discovery shows the problem to those who may
    // read the namespace's sources, and to nobody else.
    let agents_file = manifests.join("team-a/agents.yaml");
    let agents = std::fs::read_to_string(&agents_file).unwrap();
    std::fs::write(
        &agents_file,
        agents.replacen("spec:\n", "spec:\n  intervall: 5m\n", 1),
    )
    .unwrap();
    let problems = |token: &'static str| {
        let api = &api;
        async move {
            let (code, body) = api
                .get(Some(token), "/api/v1/discovery?namespace=team-a", &[])
                .await;
            (
                code,
                body["problems"].as_array().cloned().unwrap_or_default(),
            )
        }
    };
    eventually("the misspelled field in discovery", || async {
        problems("alice-token").await.1.iter().any(|p| {
            p["file"] == "team-a/agents.yaml"
                && p["line"].as_u64().is_some()
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("spec.intervall: unknown field"))
        })
    })
    .await;
    assert_eq!(
        problems("mo-token").await,
        (200, vec![]),
        "mo may not read sources"
    );
    assert_eq!(problems("bob-token").await.0, 403, "another tenant");
    let (code, body) = api
        .get(None, "/api/v1/discovery?namespace=team-a", &[])
        .await;
    assert_eq!((code, body.get("problems")), (403, None), "anonymous");
    std::fs::write(&agents_file, agents).unwrap();
    eventually("the fixed file clears the problem", || async {
        problems("alice-token").await.1.is_empty()
    })
    .await;

    // Deleting a source's file removes its assets.
    std::fs::remove_file(manifests.join("team-b/agents.yaml")).unwrap();
    eventually("team-b's agents gone", || {
        let api = &api;
        async move {
            let (code, body) = api
                .get(Some("bob-token"), "/api/v1/namespaces/team-b/agents", &[])
                .await;
            // The assets go first, then the source's row (two writes, as on a cluster).
            let (source_code, _) = api
                .get(
                    Some("bob-token"),
                    "/api/v1/namespaces/team-b/catalogsources/agents",
                    &[],
                )
                .await;
            let from_agents = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["source"] == "agents");
            // The agent-cards source's agents stay.
            code == 200 && !from_agents && names(&body).len() == 2 && source_code == 404
        }
    })
    .await;

    // The audit trail shows each change with actor, time and reason.
    let team_a = audit(&api, "alice-token", "team-a").await;
    let find = |events: &[Value], verb: &str, name: &str| -> Value {
        events
            .iter()
            .find(|e| e["verb"] == verb && e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {verb} of {name} in {events:#?}"))
    };
    let created = find(&team_a, "create", "ibm-granite/granite-3.1-8b-instruct");
    assert_eq!(created["actor"], "system:curio-standalone");
    assert_eq!(
        created["reason"],
        "team-a onboarding: approved open-weight models"
    );
    assert!(
        created["time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    let added = find(&team_a, "create", "incident-summarizer");
    assert!(added["reason"].as_str().is_some_and(|r| !r.is_empty()));
    find(&team_a, "create", "modelcontextprotocol/server-everything");
    find(&team_a, "delete", "modelcontextprotocol/server-filesystem");
    let job_reason = team_a
        .iter()
        .any(|e| e["resource"] == "refreshjobs" && e["reason"] == "quarterly model review");
    assert!(job_reason, "the RefreshJob's phases carry its reason");
    let team_b = audit(&api, "bob-token", "team-b").await;
    let removed = find(&team_b, "delete", "release-notes-writer");
    assert_eq!(removed["reason"], "CatalogSource agents deleted");
    assert_eq!(removed["actor"], "system:curio-standalone");
    // Tenants do not see each other's trail.
    let (code, _) = api
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-b/auditevents",
            &[],
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn standalone_on_sqlite() {
    exercise(None).await;
}

#[tokio::test]
async fn standalone_on_postgres() {
    let url = crate::common::empty_postgres().await;
    exercise(Some(&url)).await;
}
