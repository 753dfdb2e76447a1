//! The response cache: a write is visible to the next read, through two API processes that
//! share one PostgreSQL database; a cached answer never crosses to a caller allowed less; the
//! cache stays within its byte bound.

use std::sync::Arc;

use crate::common::{api::*, ns, postgres_store, record, refresh};
use curio::catalog::AssetKind;
use curio::{
    access::authz::{StaticRbac, manifests},
    api::{
        ApiState,
        cache::{CacheMetrics, ResponseCache},
    },
    store,
};
use serde_json::{Value, json};

/// A counter of the state's registry (`curio_api_response_cache_<name>_total`).
fn counter(state: &ApiState, name: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry).unwrap();
    let series = format!("curio_api_response_cache_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_write_is_visible_to_the_next_read_through_two_api_processes() {
    let (first, url) = postgres_store().await;
    seed(&first).await;
    // Two API processes: each its own pool and its own cache, one database.
    let second = store::connect(&url).await.unwrap();
    let (a, b) = (static_state(first.clone()), static_state(second));
    let (client_a, client_b) = (
        Client::new(spawn(a.clone()).await),
        Client::new(spawn(b.clone()).await),
    );
    let list = "/api/v1/namespaces/team-a/models?sort=name";
    let get = "/api/v1/namespaces/team-a/models/phi-4";
    let registry = "/registry/namespaces/team-a/v0.1/servers";
    let servers = |body: &Value| -> Vec<String> {
        body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["server"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for client in [&client_a, &client_b] {
        let (_, body) = client.get(Some("vera-token"), registry, &[]).await;
        assert_eq!(servers(&body), ["github-team-a"]);
        let (code, body) = client.get(Some("vera-token"), list, &[]).await;
        assert_eq!(code, 200);
        assert_eq!(names(&body), ["granite-team-a", "llama-team-a"]);
        let (code, _) = client.get(Some("vera-token"), get, &[]).await;
        assert_eq!(code, 404);
    }
    let (_, _) = client_a.get(Some("vera-token"), list, &[]).await;
    assert!(counter(&a, "hits") >= 1, "the second read is a hit");

    // A refresh through the store (as the controller does) adds a model.
    let mut desired = vec![
        record(AssetKind::Model, "granite-team-a", "1"),
        record(AssetKind::Model, "llama-team-a", "3.1"),
        record(AssetKind::McpServer, "github-team-a", "1"),
        record(AssetKind::Agent, "triage-team-a", "1"),
    ];
    desired.push(record(AssetKind::Model, "phi-4", "1"));
    desired.push(record(AssetKind::McpServer, "new-server", "1"));
    refresh(&first, &ns("team-a"), "src-inline", desired).await;
    for client in [&client_a, &client_b] {
        let (_, body) = client.get(Some("vera-token"), registry, &[]).await;
        assert_eq!(servers(&body), ["github-team-a", "new-server"]);
        let (_, body) = client.get(Some("vera-token"), list, &[]).await;
        assert_eq!(names(&body), ["granite-team-a", "llama-team-a", "phi-4"]);
        let (code, body) = client.get(Some("vera-token"), get, &[]).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["name"], "phi-4");
    }
    // A change in team-b leaves team-a's answers cached.
    let hits = counter(&a, "hits");
    refresh(
        &first,
        &ns("team-b"),
        "src-inline",
        vec![record(AssetKind::Model, "other", "1")],
    )
    .await;
    let (_, body) = client_a.get(Some("vera-token"), list, &[]).await;
    assert_eq!(names(&body).len(), 3);
    assert_eq!(
        counter(&a, "hits"),
        hits + 1,
        "team-a's page survived team-b's refresh"
    );
}

#[tokio::test]
async fn cached_answers_never_cross_to_a_caller_allowed_less() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    // carol reads every namespace.
    let mut rbac: StaticRbac = static_rbac();
    assert!(manifests::add_document(&mut rbac, &json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "carol"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-view"},
        "subjects": [{"kind": "User", "name": "carol", "apiGroup": "rbac.authorization.k8s.io"}]
    })).unwrap());
    let state = ApiState {
        authn: Arc::new(
            curio::access::authn::StaticTokens::parse(&format!("{TOKENS}carol-token,carol,6\n"))
                .unwrap(),
        ),
        ..state_with(store, Arc::new(rbac))
    };
    let client = Client::new(spawn(state.clone()).await);
    let namespaces_of = |body: &Value| -> Vec<String> {
        let mut n: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["namespace"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n.dedup();
        n
    };
    for _ in 0..2 {
        let (code, body) = client
            .get(
                Some("carol-token"),
                "/api/v1/assets?namespaces=team-a,team-b",
                &[],
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(namespaces_of(&body), ["team-a", "team-b"]);
    }
    assert!(counter(&state, "hits") >= 1);
    // alice asks for team-a only: team-a's rows only, whatever is cached.
    let (_, body) = client
        .get(Some("alice-token"), "/api/v1/assets?namespaces=team-a", &[])
        .await;
    assert_eq!(namespaces_of(&body), ["team-a"]);
    // vera's page (every kind) is cached; mo, models only, gets models only.
    for _ in 0..2 {
        let (_, body) = client
            .get(Some("vera-token"), "/api/v1/namespaces/team-a/assets", &[])
            .await;
        assert_eq!(body["items"].as_array().unwrap().len(), 4);
    }
    let (_, body) = client
        .get(Some("mo-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Model", "Model"]);
    // Cached or not, a caller who may not read a namespace gets a 403 and nothing else.
    for (token, path) in [
        (Some("bob-token"), "/api/v1/namespaces/team-a/assets"),
        (Some("bob-token"), "/api/v1/assets?namespaces=team-a,team-b"),
        (
            Some("mo-token"),
            "/api/v1/namespaces/team-a/agents/triage-team-a",
        ),
        (None, "/api/v1/namespaces/team-a/assets"),
    ] {
        let (code, body) = client.get(token, path, &[]).await;
        assert_eq!(code, 403, "{token:?} {path}: {body}");
        assert!(body.get("items").is_none() && body.get("name").is_none());
    }
}

#[tokio::test]
async fn the_cache_stays_within_its_byte_bound() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    refresh(
        &store,
        &ns("team-a"),
        "bulk",
        crate::common::models("bulk", 300),
    )
    .await;
    let mut registry = curio::telemetry::registry();
    let bound = 32 * 1024;
    let responses = Arc::new(ResponseCache::new(
        bound,
        CacheMetrics::register(&mut registry),
    ));
    let state = ApiState {
        responses: responses.clone(),
        registry: Arc::new(registry),
        ..static_state(store)
    };
    let client = Client::new(spawn(state.clone()).await);
    for limit in 1..=120 {
        let (code, _) = client
            .get(
                Some("vera-token"),
                &format!("/api/v1/namespaces/team-a/models?limit={limit}"),
                &[],
            )
            .await;
        assert_eq!(code, 200);
    }
    let held = responses.weighted_size().await;
    assert!(
        held > 0 && held <= bound,
        "{held} bytes held, bound {bound}"
    );
    assert!(
        counter(&state, "evictions") > 0,
        "pages were evicted to stay within the bound"
    );
    assert_eq!(counter(&state, "misses"), 120);
}
