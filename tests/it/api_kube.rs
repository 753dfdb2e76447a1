//! The aggregated API `catalog.curio.dev/v1alpha1` on the HTTP surface (no cluster): discovery,
//! objects and Tables, selectors, cross-namespace lists, and the watch contract (resume from a
//! resourceVersion, 410 after the window, bookmarks, deletions, isolation, revocation), plus the
//! same feed as server-sent events with `Last-Event-ID`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::common::{api::*, ns, postgres_store, record, refresh};
use curio::{
    access::authz::{Attributes, Authorizer, AuthzError, Decision, manifests},
    api::{ApiState, kube::watch::WatchSettings},
    catalog::AssetKind,
};
use serde_json::{Value, json};

const BASE: &str = "/apis/catalog.curio.dev/v1alpha1";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// The test users plus `rita`, who may read models in every namespace (a ClusterRoleBinding).
fn state(store: curio::store::Store) -> ApiState {
    let mut rbac = static_rbac();
    for doc in [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "catalog-reader"},
               "rules": [{"apiGroups": ["catalog.curio.dev"], "resources": ["models"], "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "rita"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "catalog-reader"},
               "subjects": [{"kind": "User", "name": "rita"}]}),
    ] {
        manifests::add_document(&mut rbac, &doc).unwrap();
    }
    let tokens = format!("{TOKENS}rita-token,rita,9\n");
    let mut state = ApiState::new(
        store,
        Arc::new(curio::access::authn::StaticTokens::parse(&tokens).unwrap()),
        Arc::new(rbac),
    );
    state.watch = WatchSettings {
        recheck: Duration::from_millis(200),
        bookmark: Duration::from_millis(300),
    };
    state
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn discovery_and_openapi_describe_the_group() {
    let (store, _) = postgres_store().await;
    let client = Client::new(spawn(state(store)).await);
    let (code, groups) = client.get(None, "/apis", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(groups["kind"], "APIGroupList");
    assert_eq!(groups["groups"][0]["name"], "catalog.curio.dev");
    let (_, group) = client.get(None, "/apis/catalog.curio.dev", &[]).await;
    assert_eq!(group["preferredVersion"]["version"], "v1alpha1");
    let (_, resources) = client.get(None, BASE, &[]).await;
    let plurals: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(plurals, ["models", "mcpservers", "agents"]);
    assert_eq!(resources["resources"][0]["shortNames"], json!(["mdl"]));
    let (_, index) = client.get(None, "/openapi/v3", &[]).await;
    let url = index["paths"]["apis/catalog.curio.dev/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let (code, v3) = client.get(None, url, &[]).await;
    assert_eq!(code, 200);
    assert!(
        v3["components"]["schemas"]["dev.curio.catalog.v1alpha1.Model"]["properties"]["spec"]
            .is_object()
    );
    let (code, v2) = client.get(None, "/openapi/v2", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(v2["swagger"], "2.0");
}

#[tokio::test]
async fn objects_tables_selectors_and_authorization() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let mut extra = vec![
        record(AssetKind::Model, "granite-team-a", "1"),
        record(AssetKind::Model, "llama-team-a", "3.1"),
        record(AssetKind::McpServer, "github-team-a", "1"),
        record(AssetKind::Agent, "triage-team-a", "1"),
    ];
    extra.push(record(
        AssetKind::Model,
        "meta-llama/Llama-3.1-8B-Instruct",
        "3.1",
    ));
    refresh(&store, &ns("team-a"), "src-inline", extra).await;
    let client = Client::new(spawn(state(store)).await);
    let models = format!("{BASE}/namespaces/team-a/models");

    let (code, list) = client.get(Some("vera-token"), &models, &[]).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "ModelList");
    assert!(
        list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    let listed = names(&list);
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&"granite-team-a.v1.src-inline".to_owned()));
    assert!(listed.contains(&"llama-team-a.v3-1.src-inline".to_owned()));
    let hashed = listed
        .iter()
        .find(|n| n.starts_with("meta-llama-llama-3-1-8b-instruct.v3-1.src-inline.x"))
        .expect("a hashed name")
        .clone();
    for item in list["items"].as_array().unwrap() {
        assert_eq!(item["apiVersion"], "catalog.curio.dev/v1alpha1");
        assert_eq!(item["kind"], "Model");
        assert_eq!(item["metadata"]["namespace"], "team-a");
        assert!(item["metadata"]["uid"].is_string());
        assert!(item["metadata"]["creationTimestamp"].is_string());
        assert_eq!(
            item["metadata"]["labels"]["catalog.curio.dev/source"],
            "src-inline"
        );
        assert_eq!(item["status"]["source"], "src-inline");
        assert!(item["status"]["digest"].is_string());
    }

    // Get by object name; the original name is in spec.
    let (code, object) = client
        .get(Some("vera-token"), &format!("{models}/{hashed}"), &[])
        .await;
    assert_eq!(code, 200, "{object}");
    assert_eq!(object["spec"]["name"], "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(object["spec"]["version"], "3.1");
    let (code, missing) = client
        .get(
            Some("vera-token"),
            &format!("{models}/nope.v1.src-inline"),
            &[],
        )
        .await;
    assert_eq!(code, 404);
    assert_eq!(missing["reason"], "NotFound");

    // Field selector by the original name; label selector by source.
    let (_, by_name) = client
        .get(
            Some("vera-token"),
            &format!("{models}?fieldSelector=spec.name%3Dmeta-llama%2FLlama-3.1-8B-Instruct"),
            &[],
        )
        .await;
    assert_eq!(names(&by_name), std::slice::from_ref(&hashed));
    let (_, by_object_name) = client
        .get(
            Some("vera-token"),
            &format!("{models}?fieldSelector=metadata.name%3Dgranite-team-a.v1.src-inline"),
            &[],
        )
        .await;
    assert_eq!(names(&by_object_name), ["granite-team-a.v1.src-inline"]);
    let (_, by_label) = client
        .get(
            Some("vera-token"),
            &format!("{models}?labelSelector=catalog.curio.dev%2Fname%3Dgranite-team-a"),
            &[],
        )
        .await;
    assert_eq!(names(&by_label), ["granite-team-a.v1.src-inline"]);
    let (code, _) = client
        .get(
            Some("vera-token"),
            &format!("{models}?fieldSelector=spec.provider%3Dx"),
            &[],
        )
        .await;
    assert_eq!(code, 400);

    // Paging as kubectl does it.
    let (_, first) = client
        .get(Some("vera-token"), &format!("{models}?limit=2"), &[])
        .await;
    assert_eq!(names(&first).len(), 2);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let (_, second) = client
        .get(
            Some("vera-token"),
            &format!("{models}?limit=2&continue={token}"),
            &[],
        )
        .await;
    assert_eq!(names(&second).len(), 1);

    // A Table, as kubectl asks for it.
    let (code, table) = client
        .get(Some("vera-token"), &models, &[("accept", TABLE)])
        .await;
    assert_eq!(code, 200);
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &columns[..7],
        [
            "Name",
            "Display Name",
            "Version",
            "Stage",
            "Approved",
            "Source",
            "Age"
        ]
    );
    assert_eq!(table["rows"].as_array().unwrap().len(), 3);
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(
        table["rows"][0]["object"]["metadata"]["namespace"],
        "team-a"
    );

    // Authorization in the catalog.curio.dev group: another team, a kind not granted, anonymous.
    client
        .expect_all(&[
            Expect::new(Some("bob-token"), &models, 403).why("another team"),
            Expect::new(Some("mo-token"), &models, 200).why("models only"),
            Expect::new(
                Some("mo-token"),
                format!("{BASE}/namespaces/team-a/agents"),
                403,
            )
            .why("a kind mo may not list"),
            Expect::new(None, &models, 403).why("anonymous"),
            Expect::new(Some("vera-token"), format!("{BASE}/models"), 403)
                .why("-A needs a cluster-wide right"),
            Expect::new(
                Some("vera-token"),
                format!("{BASE}/namespaces/team-a/widgets"),
                404,
            ),
            Expect::new(Some("vera-token"), format!("{models}?bogus=1"), 400),
        ])
        .await;
    let (_, forbidden) = client.get(Some("bob-token"), &models, &[]).await;
    assert!(
        forbidden["message"]
            .as_str()
            .unwrap()
            .contains("catalog.curio.dev"),
        "{forbidden}"
    );
    let (_, bob_own) = client
        .get(
            Some("bob-token"),
            &format!("{BASE}/namespaces/team-b/models"),
            &[],
        )
        .await;
    assert!(names(&bob_own).iter().all(|n| n.contains("team-b")));

    // A cluster-wide reader sees every namespace.
    let (code, all) = client
        .get(Some("rita-token"), &format!("{BASE}/models"), &[])
        .await;
    assert_eq!(code, 200, "{all}");
    let namespaces: std::collections::BTreeSet<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["team-a", "team-b"].into());
}

/// A watch's lines, read as they arrive.
struct Lines {
    response: reqwest::Response,
    buffer: String,
}

impl Lines {
    async fn open(client: &Client, token: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = client
            .http
            .get(format!("{}{path}", client.base))
            .bearer_auth(token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next record (a line, or an SSE frame), or `None` when the stream ended.
    async fn next(&mut self, separator: &str) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.find(separator) {
                let record = self.buffer[..at].to_owned();
                self.buffer.drain(..at + separator.len());
                if record.trim().is_empty() {
                    continue;
                }
                return Some(record);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn event(&mut self) -> Value {
        let line = self.next("\n").await.expect("an event");
        serde_json::from_str(&line).unwrap()
    }

    /// The next event that is not a bookmark.
    async fn change(&mut self) -> Value {
        loop {
            let event = self.event().await;
            if event["type"] != "BOOKMARK" {
                return event;
            }
        }
    }
}

fn summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap().to_owned(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn a_watch_follows_the_kubernetes_contract() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(state(store.clone())).await);
    let models = format!("{BASE}/namespaces/team-a/models");
    let (_, list) = client.get(Some("vera-token"), &models, &[]).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = Lines::open(
        &client,
        "vera-token",
        &format!("{models}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
        &[],
    )
    .await;

    // Another tenant's writes never appear; this namespace's do, in order.
    refresh(
        &store,
        &ns("team-b"),
        "src-inline",
        vec![record(AssetKind::Model, "secret-b", "1")],
    )
    .await;
    refresh(
        &store,
        &ns("team-a"),
        "src-inline",
        vec![
            record(AssetKind::Model, "granite-team-a", "1"),
            record(AssetKind::Model, "phi-4", "1"),
            record(AssetKind::McpServer, "github-team-a", "1"),
            record(AssetKind::Agent, "triage-team-a", "1"),
        ],
    )
    .await;
    let first = watch.change().await;
    let second = watch.change().await;
    let mut got = [summary(&first), summary(&second)];
    got.sort();
    assert_eq!(
        got,
        [
            ("ADDED".to_owned(), "phi-4.v1.src-inline".to_owned()),
            (
                "DELETED".to_owned(),
                "llama-team-a.v3-1.src-inline".to_owned()
            ),
        ]
    );
    // An update is MODIFIED.
    let changed =
        crate::common::record(AssetKind::Model, "phi-4", "1").with_stage(Some("production".into()));
    refresh(
        &store,
        &ns("team-a"),
        "src-inline",
        vec![
            record(AssetKind::Model, "granite-team-a", "1"),
            changed,
            record(AssetKind::McpServer, "github-team-a", "1"),
            record(AssetKind::Agent, "triage-team-a", "1"),
        ],
    )
    .await;
    let modified = watch.change().await;
    assert_eq!(
        summary(&modified),
        ("MODIFIED".into(), "phi-4.v1.src-inline".into())
    );
    assert_eq!(modified["object"]["status"]["stage"], "production");
    let modified_rv = modified["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bookmarks come when asked for, at the stream's position.
    let bookmark = loop {
        let event = watch.event().await;
        if event["type"] == "BOOKMARK" {
            break event;
        }
    };
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        modified_rv
    );

    // Resuming from the first list's revision replays the changes since, nothing else.
    let mut resumed = Lines::open(
        &client,
        "vera-token",
        &format!("{models}?watch=true&resourceVersion={rv}"),
        &[],
    )
    .await;
    let mut replay = vec![];
    for _ in 0..2 {
        replay.push(summary(&resumed.change().await));
    }
    replay.sort();
    assert_eq!(
        replay,
        [
            (
                "DELETED".to_owned(),
                "llama-team-a.v3-1.src-inline".to_owned()
            ),
            // Created after the revision resumed from: ADDED, in its latest state.
            ("ADDED".to_owned(), "phi-4.v1.src-inline".to_owned()),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    // Without a resourceVersion: the current objects first, as ADDED.
    let mut fresh = Lines::open(&client, "vera-token", &format!("{models}?watch=true"), &[]).await;
    let mut initial = vec![
        summary(&fresh.change().await),
        summary(&fresh.change().await),
    ];
    initial.sort();
    assert_eq!(
        initial,
        [
            (
                "ADDED".to_owned(),
                "granite-team-a.v1.src-inline".to_owned()
            ),
            ("ADDED".to_owned(), "phi-4.v1.src-inline".to_owned()),
        ]
    );

    // After the window, a watch from before it is told to relist.
    store
        .compact_feed(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    let mut expired = Lines::open(
        &client,
        "vera-token",
        &format!("{models}?watch=true&resourceVersion={rv}"),
        &[],
    )
    .await;
    let gone = expired.event().await;
    assert_eq!(gone["type"], "ERROR");
    assert_eq!(gone["object"]["code"], 410);
    assert_eq!(gone["object"]["reason"], "Expired");
    assert_eq!(expired.next("\n").await, None, "the stream ends");
}

/// Allows everything until revoked.
struct Revocable(AtomicBool);

#[async_trait::async_trait]
impl Authorizer for Revocable {
    async fn authorize(&self, _: &Attributes) -> Result<Decision, AuthzError> {
        Ok(if self.0.load(Ordering::SeqCst) {
            Decision::Allow
        } else {
            Decision::Deny {
                reason: "revoked".into(),
            }
        })
    }
}

#[tokio::test]
async fn a_revoked_right_ends_the_watch() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let allowed = Arc::new(Revocable(AtomicBool::new(true)));
    let mut state = state(store);
    state.authz = allowed.clone();
    let client = Client::new(spawn(state).await);
    let mut watch = Lines::open(
        &client,
        "vera-token",
        &format!("{BASE}/namespaces/team-a/models?watch=true&resourceVersion=1"),
        &[],
    )
    .await;
    allowed.0.store(false, Ordering::SeqCst);
    let ended = watch.change().await;
    assert_eq!(ended["type"], "ERROR");
    assert_eq!(ended["object"]["code"], 403);
    assert_eq!(watch.next("\n").await, None);
}

#[tokio::test]
async fn server_sent_events_resume_with_last_event_id() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(state(store.clone())).await);
    let path = "/api/v1/namespaces/team-a/models?watch=true";
    let mut events = Lines::open(&client, "vera-token", path, &[]).await;
    let parse = |frame: String| -> (i64, Value) {
        let mut id = 0;
        let mut data = Value::Null;
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str(v).unwrap();
            }
        }
        (id, data)
    };
    // The current models first.
    let mut seen = vec![];
    let mut last_id = 0;
    for _ in 0..2 {
        let (id, data) = parse(events.next("\n\n").await.unwrap());
        assert_eq!(data["type"], "ADDED");
        seen.push(data["object"]["name"].as_str().unwrap().to_owned());
        last_id = last_id.max(id);
    }
    seen.sort();
    assert_eq!(seen, ["granite-team-a", "llama-team-a"]);
    drop(events);
    // While disconnected, a model is added; resuming from the last id delivers just that.
    refresh(
        &store,
        &ns("team-a"),
        "src-inline",
        vec![
            record(AssetKind::Model, "granite-team-a", "1"),
            record(AssetKind::Model, "llama-team-a", "3.1"),
            record(AssetKind::Model, "phi-4", "1"),
            record(AssetKind::McpServer, "github-team-a", "1"),
            record(AssetKind::Agent, "triage-team-a", "1"),
        ],
    )
    .await;
    let id = last_id.to_string();
    let mut resumed = Lines::open(&client, "vera-token", path, &[("last-event-id", &id)]).await;
    let (_, data) = parse(resumed.next("\n\n").await.unwrap());
    assert_eq!(data["type"], "ADDED");
    assert_eq!(data["object"]["name"], "phi-4");
    // Another team's stream is refused, as its list is.
    let (code, _) = client
        .get(
            Some("bob-token"),
            "/api/v1/namespaces/team-a/models?watch=true",
            &[],
        )
        .await;
    assert_eq!(code, 403);
}

/// `kubectl get models -A -w` as a cluster-wide reader: changes in every namespace, including one
/// that had no catalog data when the watch began.
#[tokio::test]
async fn a_cluster_wide_watch_follows_every_namespace_even_new_ones() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(state(store.clone())).await);
    let (_, list) = client
        .get(Some("rita-token"), &format!("{BASE}/models"), &[])
        .await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = Lines::open(
        &client,
        "rita-token",
        &format!("{BASE}/models?watch=true&resourceVersion={rv}"),
        &[],
    )
    .await;
    refresh(
        &store,
        &ns("team-c"),
        "src",
        vec![record(AssetKind::Model, "brand-new", "1")],
    )
    .await;
    let event = watch.change().await;
    assert_eq!(summary(&event), ("ADDED".into(), "brand-new.v1.src".into()));
    assert_eq!(event["object"]["metadata"]["namespace"], "team-c");
    refresh(
        &store,
        &ns("team-b"),
        "src-inline",
        vec![record(AssetKind::Model, "granite-team-b", "1")],
    )
    .await;
    let event = watch.change().await;
    assert_eq!(
        summary(&event),
        ("DELETED".into(), "llama-team-b.v3-1.src-inline".into())
    );
    // The MCP server and the agent team-b lost in that write are not this watch's: the next
    // event is the next model.
    refresh(
        &store,
        &ns("team-a"),
        "src-inline",
        vec![
            record(AssetKind::Model, "granite-team-a", "1"),
            record(AssetKind::Model, "llama-team-a", "3.1"),
            record(AssetKind::Model, "phi-4", "1"),
            record(AssetKind::McpServer, "github-team-a", "1"),
            record(AssetKind::Agent, "triage-team-a", "1"),
        ],
    )
    .await;
    let event = watch.change().await;
    assert_eq!(
        summary(&event),
        ("ADDED".into(), "phi-4.v1.src-inline".into())
    );
    assert_eq!(event["object"]["metadata"]["namespace"], "team-a");
}
