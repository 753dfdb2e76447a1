//! The wall between tenants: every user × every route × {own, other, both namespaces}, over
//! real HTTP and the real PostgreSQL with static tokens and static RBAC.

use crate::common::{api::*, postgres_store};
use serde_json::Value;

const USERS: [(&str, Option<&str>); 6] = [
    ("alice", Some("alice-token")),
    ("vera", Some("vera-token")),
    ("mo", Some("mo-token")),
    ("bob", Some("bob-token")),
    ("nobody", Some("nobody-token")),
    ("anonymous", None),
];

/// Every namespaced route: (path template, RBAC resource it needs; "*assets" = any asset kind).
fn routes(ns: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("/api/v1/discovery?namespace={ns}"), "*assets"),
        (
            format!("/api/v1/namespaces/{ns}/catalogsources"),
            "catalogsources",
        ),
        (
            format!("/api/v1/namespaces/{ns}/catalogsources/src-inline"),
            "catalogsources",
        ),
        (
            format!("/api/v1/namespaces/{ns}/refreshjobs"),
            "refreshjobs",
        ),
        (
            format!("/api/v1/namespaces/{ns}/refreshjobs/job-1"),
            "refreshjobs",
        ),
        (
            format!("/api/v1/namespaces/{ns}/auditevents"),
            "auditevents",
        ),
        (format!("/api/v1/namespaces/{ns}/assets"), "*assets"),
        (format!("/api/v1/namespaces/{ns}/assets?q=a"), "*assets"),
        (format!("/api/v1/namespaces/{ns}/assets/facets"), "*assets"),
        (
            format!("/api/v1/namespaces/{ns}/assets/facets?kind=Model&field=kind"),
            "models",
        ),
        (format!("/api/v1/assets/facets?namespaces={ns}"), "*assets"),
        (format!("/api/v1/namespaces/{ns}/models"), "models"),
        (
            format!("/api/v1/namespaces/{ns}/models/granite-{ns}"),
            "models",
        ),
        (format!("/api/v1/namespaces/{ns}/mcpservers"), "mcpservers"),
        (
            format!("/api/v1/namespaces/{ns}/mcpservers/github-{ns}"),
            "mcpservers",
        ),
        (format!("/api/v1/namespaces/{ns}/agents"), "agents"),
        (
            format!("/api/v1/namespaces/{ns}/agents/triage-{ns}"),
            "agents",
        ),
        (format!("/api/v1/assets?namespaces={ns}"), "*assets"),
        // The namespace's MCP registry.
        (
            format!("/registry/namespaces/{ns}/v0.1/servers"),
            "mcpservers",
        ),
        (
            format!("/registry/namespaces/{ns}/v0/servers?version=latest"),
            "mcpservers",
        ),
        (
            format!("/registry/namespaces/{ns}/approved/v0.1/servers"),
            "mcpservers",
        ),
        (
            format!("/registry/namespaces/{ns}/v0.1/servers/github-{ns}/versions"),
            "mcpservers",
        ),
        (
            format!("/registry/namespaces/{ns}/v0.1/servers/github-{ns}/versions/latest"),
            "mcpservers",
        ),
        // The aggregated API (checked in catalog.curio.dev; the test roles grant both groups).
        (format!("{KUBE}/namespaces/{ns}/models"), "models"),
        (
            format!("{KUBE}/namespaces/{ns}/models/granite-{ns}.v1.src-inline"),
            "models",
        ),
        (format!("{KUBE}/namespaces/{ns}/mcpservers"), "mcpservers"),
        (
            format!("{KUBE}/namespaces/{ns}/mcpservers/github-{ns}.v1.src-inline"),
            "mcpservers",
        ),
        (format!("{KUBE}/namespaces/{ns}/agents"), "agents"),
        (
            format!("{KUBE}/namespaces/{ns}/agents/triage-{ns}.v1.src-inline"),
            "agents",
        ),
    ]
}

const KUBE: &str = "/apis/catalog.curio.dev/v1alpha1";

const ASSET_RESOURCES: [&str; 3] = ["models", "mcpservers", "agents"];

fn may(user: &str, ns: &str, resource: &str) -> bool {
    let perms = permissions(user, ns);
    if resource == "*assets" {
        ASSET_RESOURCES.iter().any(|r| perms.contains(r))
    } else {
        perms.contains(resource)
    }
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "Model" => "models",
        "McpServer" => "mcpservers",
        "Agent" => "agents",
        "CatalogSource" => "catalogsources",
        "RefreshJob" => "refreshjobs",
        other => panic!("unexpected kind {other}"),
    }
}

/// No row from a namespace, or of a kind, the user may not read.
fn assert_only_readable(user: &str, path: &str, body: &Value) {
    if path.starts_with("/registry/") {
        let entries = match body.get("servers").and_then(Value::as_array) {
            Some(servers) => servers.clone(),
            None => vec![body.clone()],
        };
        for entry in entries {
            let ns = entry
                .pointer("/_meta/dev.curio~1catalog/namespace")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{path}: entry without namespace: {entry}"));
            assert!(
                may(user, ns, "mcpservers"),
                "{user} {path}: leaked a server of {ns}"
            );
        }
        return;
    }
    let Some(items) = body.get("items").and_then(Value::as_array) else {
        let ns = body
            .get("namespace")
            .or_else(|| body.pointer("/metadata/namespace"))
            .and_then(Value::as_str);
        let kind = body
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| *k != "Discovery");
        if let (Some(ns), Some(kind)) = (ns, kind) {
            assert!(
                may(user, ns, plural(kind)),
                "{user} {path}: got a {kind} of {ns}"
            );
        }
        return;
    };
    for item in items {
        let ns = item
            .get("namespace")
            .or_else(|| item.pointer("/metadata/namespace"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{path}: item without namespace: {item}"));
        match item.get("kind").and_then(Value::as_str) {
            Some(kind @ ("Model" | "McpServer" | "Agent")) => {
                assert!(
                    may(user, ns, plural(kind)),
                    "{user} {path}: leaked {kind} from {ns}"
                )
            }
            _ => assert!(
                !permissions(user, ns).is_empty(),
                "{user} {path}: leaked a row from {ns}"
            ),
        }
    }
}

#[tokio::test]
async fn isolation_matrix() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let mut cells = 0;
    for (user, token) in USERS {
        for ns in ["team-a", "team-b"] {
            for (path, resource) in routes(ns) {
                let (code, body) = client.get(token, &path, &[]).await;
                let expected = if may(user, ns, resource) { 200 } else { 403 };
                assert_eq!(code, expected, "{user} GET {path}: {body}");
                if code == 200 {
                    assert_only_readable(user, &path, &body);
                } else if path.starts_with("/registry/") {
                    assert!(body["error"].is_string(), "{user} {path}: {body}");
                    assert!(body.get("servers").is_none());
                    assert!(
                        !body.to_string().contains("github-"),
                        "{user} {path}: {body}"
                    );
                } else {
                    assert_eq!(body["kind"], "Status", "{user} {path}");
                    assert!(body.get("items").is_none());
                }
                cells += 1;
            }
        }
        // Both namespaces at once: allowed only when both are readable.
        let path = "/api/v1/assets?namespaces=team-a,team-b";
        let (code, body) = client.get(token, path, &[]).await;
        let expected = if may(user, "team-a", "*assets") && may(user, "team-b", "*assets") {
            200
        } else {
            403
        };
        assert_eq!(code, expected, "{user} GET {path}: {body}");
        cells += 1;
    }
    assert_eq!(cells, 6 * (2 * 29 + 1));
}

/// Watches (the aggregated API's and the server-sent events) carry only rows the watcher may
/// read, and are refused where a list would be.
#[tokio::test]
async fn watches_carry_only_readable_rows() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let mut cases = Vec::new();
    for (user, token) in USERS {
        for ns in ["team-a", "team-b"] {
            for resource in ASSET_RESOURCES {
                cases.push((
                    user,
                    token,
                    ns,
                    resource,
                    format!("{KUBE}/namespaces/{ns}/{resource}?watch=true&timeoutSeconds=1"),
                ));
                cases.push((
                    user,
                    token,
                    ns,
                    resource,
                    format!("/api/v1/namespaces/{ns}/{resource}?watch=true&timeoutSeconds=1"),
                ));
            }
        }
    }
    let checks = cases.iter().map(|(user, token, ns, resource, path)| {
        let client = &client;
        async move {
            let mut request = client.http.get(format!("{}{path}", client.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let code = response.status().as_u16();
            let text = response.text().await.unwrap();
            let expected = if may(user, ns, resource) { 200 } else { 403 };
            assert_eq!(code, expected, "{user} GET {path}: {text}");
            if code != 200 {
                return 0;
            }
            let mut events = 0;
            for line in text.lines() {
                let json = line.strip_prefix("data: ").unwrap_or(line);
                if json.trim().is_empty() || line.starts_with("id: ") {
                    continue;
                }
                let event: Value = serde_json::from_str(json).unwrap();
                if event["type"] == "BOOKMARK" {
                    continue;
                }
                let object = &event["object"];
                let namespace = object
                    .pointer("/metadata/namespace")
                    .or_else(|| object.get("namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{path}: {event}"));
                let kind = object["kind"].as_str().unwrap();
                assert!(
                    may(user, namespace, plural(kind)),
                    "{user} {path}: leaked {kind} of {namespace}"
                );
                events += 1;
            }
            events
        }
    });
    let delivered: usize = futures::future::join_all(checks).await.into_iter().sum();
    assert!(
        delivered > 0,
        "the allowed watches delivered the seeded assets"
    );
}

#[tokio::test]
async fn lists_show_exactly_the_readable_kinds() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let kinds = |body: &Value| -> Vec<String> {
        let mut k: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    let (_, body) = client
        .get(Some("mo-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    assert_eq!(kinds(&body), ["Model"]);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (_, body) = client
        .get(Some("vera-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    assert_eq!(kinds(&body), ["Agent", "McpServer", "Model"]);
    let (code, _) = client
        .get(
            Some("mo-token"),
            "/api/v1/namespaces/team-a/assets?kind=Agent",
            &[],
        )
        .await;
    assert_eq!(code, 403);
    let (_, body) = client
        .get(Some("mo-token"), "/api/v1/discovery?namespace=team-a", &[])
        .await;
    assert_eq!(body["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(body["plugins"][0]["resource"], "models");
}

#[tokio::test]
async fn spoofed_identity_and_impersonation_headers_are_ignored() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let state = static_state(store);
    // The process's metrics, as its separate metrics listener serves them.
    let registry = state.registry.clone();
    let client = Client::new(spawn(state).await);
    let spoof = [
        ("X-Remote-User", "bob"),
        ("X-Remote-Group", "system:masters"),
    ];
    let impersonate = [
        ("Impersonate-User", "bob"),
        ("Impersonate-Group", "system:masters"),
    ];
    let admin = [("X-Remote-User", "admin")];
    let team_b = "/api/v1/namespaces/team-b/models";
    client
        .expect_all(&[
            Expect::new(None, team_b, 403)
                .headers(&spoof)
                .why("anonymous with X-Remote-User"),
            Expect::new(None, team_b, 403).headers(&admin),
            Expect::new(Some("vera-token"), team_b, 403)
                .headers(&spoof)
                .why("viewer with X-Remote-User"),
            Expect::new(Some("vera-token"), team_b, 403)
                .headers(&impersonate)
                .why("viewer with Impersonate-User"),
            Expect::new(Some("vera-token"), "/api/v1/namespaces/team-a/models", 200)
                .headers(&spoof)
                .why("the real identity still works"),
        ])
        .await;
    let metrics = curio::telemetry::render(&registry);
    assert!(
        metrics.contains("curio_identity_headers_ignored_total{header=\"x-remote-user\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("curio_identity_headers_ignored_total{header=\"impersonate-user\"}"));
}

#[tokio::test]
async fn path_tricks_never_return_data() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    for path in [
        "/api/v1/namespaces/team-b%2F..%2Fteam-a/models",
        "/api/v1/namespaces/team-b%2F../models",
        "/api/v1/namespaces/TEAM-B/models",
        "/api/v1/namespaces/Team-A/models",
        "/api/v1/namespaces/team-b/models/",
        "/api/v1/namespaces/team-b/",
        "/api/v1/namespaces/team-b%00/models",
        "/api/v1/namespaces/team-b/secrets",
        "/api/v1/assets?namespaces=team-a,team-b%2C",
        "/api/v1/assets?namespaces=team-a,TEAM-B",
    ] {
        let (code, body) = client.get(Some("vera-token"), path, &[]).await;
        assert!(matches!(code, 400 | 403 | 404), "{path}: {code} {body}");
        assert_eq!(body["kind"], "Status", "{path}");
    }
    // Trailing slash on one's own namespace is not a list either.
    let (code, _) = client
        .get(Some("vera-token"), "/api/v1/namespaces/team-a/models/", &[])
        .await;
    assert_ne!(code, 200);
}

#[tokio::test]
async fn a_continue_token_is_bound_to_its_query() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let (code, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/models?limit=1",
            &[],
        )
        .await;
    assert_eq!(code, 200);
    let token = body["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_owned();
    // Next page of the same query works and does not repeat the first item.
    let (code, next) = client
        .get(
            Some("alice-token"),
            &format!("/api/v1/namespaces/team-a/models?limit=1&continue={token}"),
            &[],
        )
        .await;
    assert_eq!(code, 200);
    assert_ne!(next["items"][0]["name"], body["items"][0]["name"]);
    // Replayed on team-b (by its admin), or with other filters: refused.
    let (code, err) = client
        .get(
            Some("bob-token"),
            &format!("/api/v1/namespaces/team-b/models?limit=1&continue={token}"),
            &[],
        )
        .await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("different query"));
    client
        .expect_all(&[
            Expect::new(
                Some("alice-token"),
                format!("/api/v1/namespaces/team-a/models?limit=1&tag=llm&continue={token}"),
                400,
            )
            .why("other filters"),
            Expect::new(
                Some("alice-token"),
                format!("/api/v1/namespaces/team-a/agents?limit=1&continue={token}"),
                400,
            )
            .why("another kind"),
            // A token grants nothing by itself: a user without access still gets 403.
            Expect::new(
                Some("nobody-token"),
                format!("/api/v1/namespaces/team-a/models?limit=1&continue={token}"),
                403,
            ),
            Expect::new(
                Some("alice-token"),
                "/api/v1/namespaces/team-a/models?continue=garbage",
                400,
            ),
        ])
        .await;
}

#[tokio::test]
async fn bad_requests_get_a_status_and_never_a_500() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let (code, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/assets?q=%25",
            &[],
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        0,
        "q=% matched {body}"
    );
    let (code, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/assets?q=_",
            &[],
        )
        .await;
    assert_eq!((code, body["items"].as_array().unwrap().len()), (200, 0));
    for path in [
        "/api/v1/namespaces/team-a/assets?limit=0",
        "/api/v1/namespaces/team-a/assets?limit=501",
        "/api/v1/namespaces/team-a/assets?limit=x",
        "/api/v1/namespaces/team-a/assets?labelSelector=a+in+(x",
        "/api/v1/namespaces/team-a/assets?labelSelector=%3D%3D",
        "/api/v1/namespaces/team-a/assets?sort=sideways",
        "/api/v1/namespaces/team-a/assets?approved=maybe",
        "/api/v1/namespaces/team-a/assets?kind=Dataset",
        "/api/v1/namespaces/team-a/assets?bogus=1",
        "/api/v1/assets?namespaces=",
        "/api/v1/assets/facets?namespaces=",
        "/api/v1/namespaces/team-a/assets/facets?field=kind&field=nope",
        "/api/v1/namespaces/team-a/assets/facets?top=101",
        "/api/v1/namespaces/team-a/assets/facets?sort=name",
        "/api/v1/namespaces/team-a/access?limit=1",
    ] {
        let (code, body) = client.get(Some("alice-token"), path, &[]).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["reason"], "BadRequest");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    let (code, body) = client
        .get(Some("wrong-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    client
        .expect_all(&[Expect::new(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/models/nope",
            404,
        )])
        .await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = client
            .http
            .request(
                method.clone(),
                format!("{}/api/v1/namespaces/team-a/models", client.base),
            )
            .bearer_auth("alice-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["reason"], "MethodNotAllowed");
    }
}

#[tokio::test]
async fn lists_filter_sort_page_and_revalidate() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/assets?sort=-name",
            &[],
        )
        .await;
    assert_eq!(
        names(&body),
        [
            "triage-team-a",
            "llama-team-a",
            "granite-team-a",
            "github-team-a"
        ]
    );
    let (_, body) = client.get(Some("alice-token"), "/api/v1/namespaces/team-a/assets?labelSelector=task%3Dtext-generation,!missing&kind=Model", &[]).await;
    assert_eq!(names(&body).len(), 2);
    let (_, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/models/llama-team-a?version=3.1",
            &[],
        )
        .await;
    assert_eq!(body["version"], "3.1");
    // Paging through everything with limit=1 sees each asset once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/assets?namespaces=team-a&limit=1&sort=name".to_string();
    loop {
        let (code, body) = client.get(Some("alice-token"), &path, &[]).await;
        assert_eq!(code, 200);
        seen.extend(names(&body));
        match body["metadata"]["continue"].as_str() {
            Some(token) => {
                path =
                    format!("/api/v1/assets?namespaces=team-a&limit=1&sort=name&continue={token}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "github-team-a",
            "granite-team-a",
            "llama-team-a",
            "triage-team-a"
        ]
    );
    // ETag and If-None-Match.
    let response = client
        .http
        .get(format!("{}/api/v1/discovery?namespace=team-a", client.base))
        .bearer_auth("vera-token")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("x-request-id").is_some());
    let etag = response
        .headers()
        .get("etag")
        .expect("etag")
        .to_str()
        .unwrap()
        .to_owned();
    let again = client
        .http
        .get(format!("{}/api/v1/discovery?namespace=team-a", client.base))
        .bearer_auth("vera-token")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
}

#[tokio::test]
async fn filters_take_any_of_a_list_and_a_404_names_the_version() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let count = |query: &'static str| {
        let client = &client;
        async move {
            let path = format!("/api/v1/namespaces/team-a/assets{query}");
            let (_, body) = client.get(Some("alice-token"), &path, &[]).await;
            body["items"].as_array().map_or(0, Vec::len)
        }
    };
    let all = count("").await;
    assert!(all > 0);
    assert_eq!(
        count("?tag=llm").await,
        all,
        "every seeded asset is tagged llm"
    );
    assert_eq!(
        count("?tag=embedding,llm").await,
        all,
        "a list matches any of its tags"
    );
    assert_eq!(count("?tag=embedding,vision").await, 0);
    let (code, body) = client
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/models/granite-team-a?version=9.9",
            &[],
        )
        .await;
    assert_eq!(code, 404);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("version \"9.9\"")),
        "{body}"
    );
}

#[tokio::test]
async fn requests_are_read_one_way_whatever_their_spelling() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let get = |path: &str, authorization: &str| {
        client
            .http
            .get(format!("{}{path}", client.base))
            .header("Authorization", authorization.to_owned())
            .send()
    };
    // The bearer scheme is case-insensitive, as kube-apiserver reads it.
    let models = "/api/v1/namespaces/team-a/models";
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = get(models, &format!("{scheme} alice-token")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    // A single-valued parameter given twice is refused, not silently narrowed.
    client
        .expect_all(&[
            Expect::new(
                Some("alice-token"),
                format!("{models}?limit=1&limit=2"),
                400,
            )
            .why("limit twice"),
            Expect::new(
                Some("alice-token"),
                "/api/v1/assets?namespaces=team-a&namespaces=team-b",
                400,
            )
            .why("namespaces twice"),
            // One namespace parser for paths and lists: unicode space is not trimmed anywhere.
            Expect::new(
                Some("alice-token"),
                "/api/v1/namespaces/team-a%E2%80%83/models",
                400,
            ),
            Expect::new(
                Some("alice-token"),
                "/api/v1/assets?namespaces=team-a%E2%80%83",
                400,
            ),
            Expect::new(
                Some("alice-token"),
                "/api/v1/assets?namespaces=team-a,%20team-a",
                200,
            )
            .why("ASCII spaces around list commas are fine"),
        ])
        .await;
}

#[tokio::test]
async fn made_up_identity_headers_make_a_bounded_number_of_series() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let state = static_state(store);
    // The process's metrics, as its separate metrics listener serves them.
    let registry = state.registry.clone();
    let client = Client::new(spawn(state).await);
    // 25 requests × 40 names: under the server's limit of headers per request.
    for batch in 0..25 {
        let mut request = client
            .http
            .get(format!("{}/api/v1/namespaces/team-a/models", client.base))
            .bearer_auth("alice-token");
        for i in 0..20 {
            request = request
                .header(format!("x-remote-made-up-{batch}-{i}"), "x")
                .header(format!("impersonate-made-up-{batch}-{i}"), "x");
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
    }
    let metrics = curio::telemetry::render(&registry);
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("curio_identity_headers_ignored_total{"))
        .collect();
    assert!(
        !series.is_empty() && series.len() <= 8,
        "1,000 made-up header names, {} series: {series:#?}",
        series.len()
    );
}

#[tokio::test]
async fn the_api_port_serves_no_metrics() {
    let (store, _) = postgres_store().await;
    let client = Client::new(spawn(static_state(store)).await);
    client
        .expect_all(&[
            Expect::new(None, "/metrics", 404).why("anonymous"),
            Expect::new(Some("alice-token"), "/metrics", 404).why("a tenant admin"),
        ])
        .await;
}

/// The routes that find the caller's namespaces themselves (`/api/v1/namespaces`, the
/// cross-namespace list and facets without `namespaces=`) name, count and return only what the
/// caller may read; `/access` reports exactly the caller's own permissions.
#[tokio::test]
async fn what_i_can_see_is_only_what_i_may_read() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    // Per namespace, the seeded assets of each kind.
    let seeded = [("Model", 2), ("McpServer", 1), ("Agent", 1)];
    for (user, token) in USERS {
        let readable: Vec<&str> = ["team-a", "team-b"]
            .into_iter()
            .filter(|ns| may(user, ns, "*assets"))
            .collect();

        let (code, body) = client.get(token, "/api/v1/namespaces", &[]).await;
        assert_eq!(code, 200, "{user}: {body}");
        let names: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names, readable,
            "{user} sees exactly the readable namespaces"
        );
        for item in body["items"].as_array().unwrap() {
            let ns = item["name"].as_str().unwrap();
            for (kind, count) in seeded {
                let listable = may(user, ns, plural(kind));
                assert_eq!(
                    item["kinds"]
                        .as_array()
                        .unwrap()
                        .contains(&Value::from(kind)),
                    listable,
                    "{user} {ns} {kind}"
                );
                let expected = listable.then_some(count);
                assert_eq!(
                    item["counts"][kind].as_i64(),
                    expected,
                    "{user} {ns} {kind}"
                );
            }
        }

        let (code, body) = client.get(token, "/api/v1/assets?limit=500", &[]).await;
        assert_eq!(code, 200, "{user}: {body}");
        assert_only_readable(user, "/api/v1/assets", &body);
        let expected: usize = readable
            .iter()
            .flat_map(|ns| seeded.iter().filter(move |(k, _)| may(user, ns, plural(k))))
            .map(|(_, n)| *n as usize)
            .sum();
        assert_eq!(body["items"].as_array().unwrap().len(), expected, "{user}");

        let (code, body) = client
            .get(token, "/api/v1/assets/facets?field=kind&field=source", &[])
            .await;
        assert_eq!(code, 200, "{user}: {body}");
        let kind_total: i64 = body["facets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["field"] == "kind")
            .flat_map(|f| f["values"].as_array().unwrap())
            .map(|v| v["count"].as_i64().unwrap())
            .sum();
        assert_eq!(kind_total as usize, expected, "{user}: {body}");

        for ns in ["team-a", "team-b"] {
            let (code, body) = client
                .get(token, &format!("/api/v1/namespaces/{ns}/access"), &[])
                .await;
            assert_eq!(code, 200, "{user} {ns}: {body}");
            for resource in [
                "models",
                "mcpservers",
                "agents",
                "catalogsources",
                "refreshjobs",
                "auditevents",
            ] {
                let listed = body["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["resource"] == resource)
                    .is_some_and(|r| r["verbs"].as_array().unwrap().contains(&"list".into()));
                assert_eq!(
                    listed,
                    may(user, ns, resource),
                    "{user} {ns} {resource}: {body}"
                );
            }
            let approves = body["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["verbs"].as_array().unwrap().contains(&"approve".into()));
            assert_eq!(
                approves,
                user == "alice" && ns == "team-a" || user == "bob" && ns == "team-b",
                "{user} {ns}: only admins approve"
            );
        }
    }
}
