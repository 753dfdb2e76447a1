//! The per-namespace MCP Registry API against its published contract (paging with cursors,
//! `search`, `version=latest`, `updated_since`, 404s, the `{"error"}` shape), its RBAC, and
//! each ecosystem format's round trip: ingest → API → the same document.

use std::sync::Arc;

use crate::common::{api::*, ns, postgres_store, refresh};
use curio::{
    access::authz::{StaticRbac, manifests},
    catalog::{AssetRecord, Limits, parse_document},
    store::Store,
};
use serde_json::{Value, json};

const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";

/// A server.json document as publishers write them.
fn server_json(name: &str, version: &str) -> Value {
    json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": name,
        "description": format!("The {name} server"),
        "title": format!("Title of {name}"),
        "version": version,
        "repository": {"url": "https://github.com/example/servers", "source": "github", "subfolder": "x"},
        "packages": [{"registryType": "npm", "identifier": format!("@example/{}", name.replace('/', "-")),
                      "version": version, "transport": {"type": "stdio"},
                      "environmentVariables": [{"name": "API_KEY", "isSecret": true, "isRequired": true}]}],
        "remotes": [{"type": "streamable-http", "url": "https://mcp.example.com/{tenant}/mcp",
                     "variables": {"tenant": {"isRequired": true}}}],
        "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {"tool": "ci", "build": 7}}
    })
}

fn records(document: &Value) -> Vec<AssetRecord> {
    parse_document(document.to_string().as_bytes(), Limits::default())
        .expect("a valid document")
        .into_iter()
        .map(AssetRecord::from_asset)
        .collect()
}

/// 1,000 servers in team-a (every tenth with a second, older version), plus team-b's own.
async fn seed_registry(store: &Store) {
    let mut servers = Vec::new();
    for i in 0..1000 {
        servers.push(server_json(&format!("io.example/server-{i:04}"), "1.2.0"));
        if i % 10 == 0 {
            servers.push(server_json(&format!("io.example/server-{i:04}"), "1.10.0"));
            servers.push(server_json(&format!("io.example/server-{i:04}"), "0.9.0"));
        }
    }
    let approved: Vec<AssetRecord> = records(&json!({ "servers": servers }))
        .into_iter()
        .map(|r| {
            let approve = r.name().ends_with('7');
            r.with_approved(approve)
        })
        .collect();
    refresh(store, &ns("team-a"), "registry", approved).await;
    refresh(
        store,
        &ns("team-b"),
        "registry",
        records(&json!({"servers": [server_json("io.secret/team-b-only", "1.0.0")]})),
    )
    .await;
}

async fn registry_client() -> (Client, Store) {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    seed_registry(&store).await;
    (Client::new(spawn(static_state(store.clone())).await), store)
}

fn names(body: &Value) -> Vec<String> {
    body["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("a server list: {body}"))
        .iter()
        .map(|s| {
            format!(
                "{}@{}",
                s["server"]["name"].as_str().unwrap(),
                s["server"]["version"].as_str().unwrap()
            )
        })
        .collect()
}

const BASE: &str = "/registry/namespaces/team-a/v0.1";

#[tokio::test]
async fn cursors_page_through_a_thousand_servers_once_each() {
    let (client, _) = registry_client().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("{BASE}/servers?limit=100&version=latest");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let (code, body) = client.get(Some("vera-token"), &path, &[]).await;
        assert_eq!(code, 200, "{path}: {body}");
        let page = names(&body);
        assert_eq!(body["metadata"]["count"], page.len());
        for entry in body["servers"].as_array().unwrap() {
            let meta = &entry["_meta"][OFFICIAL];
            assert_eq!(meta["isLatest"], true);
            assert_eq!(meta["status"], "active");
            for field in ["publishedAt", "updatedAt"] {
                chrono::DateTime::parse_from_rfc3339(meta[field].as_str().unwrap())
                    .expect("an RFC 3339 time");
            }
            assert_eq!(entry["_meta"]["dev.curio/catalog"]["namespace"], "team-a");
        }
        seen.extend(page);
        pages += 1;
        match body["metadata"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // The thousand, and the McpServer every seeded tenant has.
    assert_eq!(pages, 11);
    assert_eq!(seen.len(), 1001);
    assert!(seen.contains(&"github-team-a@1".to_owned()));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, seen, "in order, each once");
    assert!(
        seen.contains(&"io.example/server-0010@1.10.0".to_owned()),
        "semver, not text, decides the latest"
    );

    // Without version=latest every version is listed; the default page is 30.
    let (_, body) = client
        .get(Some("vera-token"), &format!("{BASE}/servers"), &[])
        .await;
    assert_eq!(names(&body).len(), 30);
    assert_eq!(
        names(&body)[..4],
        [
            "github-team-a@1",
            "io.example/server-0000@0.9.0",
            "io.example/server-0000@1.10.0",
            "io.example/server-0000@1.2.0"
        ]
    );
}

#[tokio::test]
async fn search_versions_updated_since_and_not_found_follow_the_contract() {
    let (client, store) = registry_client().await;
    let get = |path: String| {
        let client = &client;
        async move { client.get(Some("vera-token"), &path, &[]).await }
    };
    let (_, body) = get(format!("{BASE}/servers?search=SERVER-012&version=latest")).await;
    assert_eq!(names(&body).len(), 10, "server-0120 … server-0129: {body}");

    // One server's versions, newest first; the name URL-encoded or not.
    for name in ["io.example%2Fserver-0020", "io.example/server-0020"] {
        let (code, body) = get(format!("{BASE}/servers/{name}/versions")).await;
        assert_eq!(code, 200, "{name}: {body}");
        assert_eq!(
            names(&body),
            [
                "io.example/server-0020@1.10.0",
                "io.example/server-0020@1.2.0",
                "io.example/server-0020@0.9.0"
            ]
        );
    }
    let (code, body) = get(format!(
        "{BASE}/servers/io.example%2Fserver-0020/versions/latest"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["server"]["version"], "1.10.0");
    assert_eq!(body["_meta"][OFFICIAL]["isLatest"], true);
    let (code, body) = get(format!(
        "{BASE}/servers/io.example%2Fserver-0020/versions/0.9.0"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["_meta"][OFFICIAL]["isLatest"], false);
    // The exact document that was ingested comes back.
    assert_eq!(
        body["server"],
        server_json("io.example/server-0020", "0.9.0")
    );

    for (path, why) in [
        (
            format!("{BASE}/servers/io.example%2Fnope/versions"),
            "unknown server",
        ),
        (
            format!("{BASE}/servers/io.example%2Fnope/versions/latest"),
            "unknown server",
        ),
        (
            format!("{BASE}/servers/io.example%2Fserver-0020/versions/9.9.9"),
            "unknown version",
        ),
    ] {
        let (code, body) = get(path.clone()).await;
        assert_eq!(code, 404, "{why}: {path}");
        assert!(body["error"].is_string(), "{body}");
    }
    for (path, why) in [
        (format!("{BASE}/servers?limit=101"), "limit over 100"),
        (format!("{BASE}/servers?limit=0"), "limit under 1"),
        (
            format!("{BASE}/servers?updated_since=yesterday"),
            "not a time",
        ),
        (format!("{BASE}/servers?cursor=forged"), "a forged cursor"),
        (format!("{BASE}/servers?bogus=1"), "an unknown parameter"),
    ] {
        let (code, body) = get(path.clone()).await;
        assert_eq!(code, 400, "{why}: {path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    // A cursor from one query does not continue another.
    let (_, body) = get(format!("{BASE}/servers?limit=5")).await;
    let cursor = body["metadata"]["nextCursor"].as_str().unwrap().to_owned();
    let (code, _) = get(format!(
        "{BASE}/servers?limit=5&search=x&cursor={}",
        urlencode(&cursor)
    ))
    .await;
    assert_eq!(code, 400);

    // updated_since: only what changed after the mark. The mark goes out in whole seconds
    // (rounded down), so it is taken over a second after the earlier writes: rounded down, it
    // must still be after them (it was not, once, under CI load).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mark = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    refresh(
        &store,
        &ns("team-a"),
        "late",
        records(&json!({"servers": [server_json("io.example/late-arrival", "1.0.0")]})),
    )
    .await;
    let since = mark.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, body) = get(format!(
        "{BASE}/servers?updated_since={}",
        urlencode(&since)
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(names(&body), ["io.example/late-arrival@1.0.0"]);

    // The legacy v0 paths answer the same.
    let (code, body) = get("/registry/namespaces/team-a/v0/servers?limit=1".into()).await;
    assert_eq!(code, 200);
    assert_eq!(names(&body).len(), 1);
    let (code, _) = get("/registry/namespaces/team-a/v9/servers".into()).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn the_approved_registry_serves_only_approved_servers() {
    let (client, _) = registry_client().await;
    let (_, all) = client
        .get(
            Some("vera-token"),
            "/registry/namespaces/team-a/approved/v0.1/servers?limit=100&version=latest",
            &[],
        )
        .await;
    let approved = names(&all);
    assert_eq!(approved.len(), 100, "server-xxx7 of 1000: {approved:?}");
    assert!(
        approved
            .iter()
            .all(|n| n.split('@').next().unwrap().ends_with('7'))
    );
    let (_, flag) = client
        .get(
            Some("vera-token"),
            &format!("{BASE}/servers?limit=100&version=latest&approved=true"),
            &[],
        )
        .await;
    assert_eq!(names(&flag), approved);
    let (code, _) = client
        .get(Some("vera-token"), "/registry/namespaces/team-a/approved/v0.1/servers/io.example%2Fserver-0001/versions/latest", &[])
        .await;
    assert_eq!(code, 404, "not approved: not in the approved registry");
}

#[tokio::test]
async fn rbac_decides_who_reads_a_registry_and_refusals_name_nothing() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    seed_registry(&store).await;
    refresh(
        &store,
        &ns("team-public"),
        "registry",
        records(&json!({"servers": [server_json("io.example/public", "1.0.0")]})),
    )
    .await;
    // team-public binds system:unauthenticated (and system:authenticated) to a view role;
    // nothing else is public.
    let mut rbac: StaticRbac = static_rbac();
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "public-registry", "namespace": "team-public"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-view"},
        "subjects": [{"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]
    });
    assert!(manifests::add_document(&mut rbac, &binding).unwrap());
    let client = Client::new(spawn(state_with(store, Arc::new(rbac))).await);

    for (token, path, code, why) in [
        (
            Some("bob-token"),
            format!("{BASE}/servers"),
            403,
            "another team",
        ),
        (
            Some("bob-token"),
            format!("{BASE}/servers/io.example%2Fserver-0001/versions/latest"),
            403,
            "another team",
        ),
        (
            Some("mo-token"),
            format!("{BASE}/servers"),
            403,
            "a models-only user",
        ),
        (None, format!("{BASE}/servers"), 403, "anonymous, unbound"),
        (
            None,
            "/registry/namespaces/team-b/v0.1/servers".into(),
            403,
            "anonymous, unbound",
        ),
        (
            Some("nobody-token"),
            "/registry/namespaces/team-public/v0.1/servers".into(),
            200,
            "public to everyone",
        ),
        (
            None,
            "/registry/namespaces/team-public/v0.1/servers".into(),
            200,
            "bound to system:unauthenticated",
        ),
        (
            None,
            "/registry/namespaces/team-public/v0.1/servers/io.example%2Fpublic/versions/latest"
                .into(),
            200,
            "bound",
        ),
        (
            Some("bob-token"),
            "/registry/namespaces/team-b/v0.1/servers".into(),
            200,
            "own team",
        ),
        (
            Some("bad-token"),
            "/registry/namespaces/team-public/v0.1/servers".into(),
            401,
            "a bad token is not anonymous",
        ),
        (
            Some("vera-token"),
            "/registry/namespaces/Team-A/v0.1/servers".into(),
            400,
            "not a namespace",
        ),
    ] {
        let (got, body) = client.get(token, &path, &[]).await;
        assert_eq!(got, code, "{why}: {token:?} {path}: {body}");
        let text = body.to_string();
        if code >= 400 {
            assert!(body["error"].is_string(), "{body}");
            assert!(
                !text.contains("io.example/server") && !text.contains("io.secret"),
                "{why}: a refusal named a server: {text}"
            );
        }
        if path.contains("team-public") && code == 200 {
            assert!(
                text.contains("io.example/public")
                    && !text.contains("server-0")
                    && !text.contains("io.secret"),
                "{text}"
            );
        }
    }
    let (_, body) = client
        .get(
            Some("bob-token"),
            "/registry/namespaces/team-b/v0.1/servers",
            &[],
        )
        .await;
    assert_eq!(
        names(&body),
        ["github-team-b@1", "io.secret/team-b-only@1.0.0"]
    );
}

#[tokio::test]
async fn every_format_round_trips_through_ingest_and_the_apis() {
    let (store, _) = postgres_store().await;
    let team = ns("team-a");
    let single = server_json("io.example/single", "2.0.0");
    let export = json!({"servers": [
        {"server": server_json("io.example/exported", "1.0.0"),
         "_meta": {OFFICIAL: {"status": "active", "publishedAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-02-01T00:00:00Z", "isLatest": true}}}
    ], "metadata": {"count": 1}});
    let card = json!({
        "protocolVersion": "0.3.0", "name": "Recipe Agent", "description": "Finds recipes",
        "url": "https://agents.example.com/recipes", "version": "1.0.0",
        "capabilities": {"streaming": true}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "skills": [{"id": "find", "name": "Find", "description": "Find a recipe", "tags": ["cooking"]}]
    });
    let cards = json!([card, {"name": "Support Bot", "skills": [], "capabilities": {}, "url": "https://agents.example.com/support"}]);
    let curio = json!({"assets": [{"kind": "McpServer", "name": "internal-tools", "version": "0.3.0",
        "description": "Internal tools", "links": [{"type": "repository", "uri": "https://git.example.com/tools"}],
        "mcp": {"transports": ["streamable-http"], "remotes": [{"type": "streamable-http", "url": "https://tools.example.com/mcp"}]}}]});
    for (source, document) in [
        ("single", &single),
        ("export", &export),
        ("card", &card),
        ("cards", &cards),
        ("curio", &curio),
    ] {
        refresh(&store, &team, source, records(document)).await;
    }
    let client = Client::new(spawn(static_state(store)).await);
    let get = |path: String| {
        let client = &client;
        async move {
            let (code, body) = client.get(Some("vera-token"), &path, &[]).await;
            assert_eq!(code, 200, "{path}: {body}");
            body
        }
    };
    let body = get(format!("{BASE}/servers/io.example%2Fsingle/versions/2.0.0")).await;
    assert_eq!(body["server"], single, "a server.json comes back as it was");
    let body = get(format!(
        "{BASE}/servers/io.example%2Fexported/versions/latest"
    ))
    .await;
    assert_eq!(body["server"], export["servers"][0]["server"]);
    let body = get(format!("{BASE}/servers/internal-tools/versions/latest")).await;
    assert_eq!(
        body["server"]["remotes"][0]["url"],
        "https://tools.example.com/mcp"
    );
    assert_eq!(
        body["server"]["repository"]["url"],
        "https://git.example.com/tools"
    );
    assert_eq!(body["server"]["description"], "Internal tools");

    // The assets API shows the details a UI needs, and the original document.
    let server = get("/api/v1/namespaces/team-a/mcpservers/io.example%2Fsingle".into()).await;
    assert_eq!(
        server["mcp"]["transports"],
        json!(["stdio", "streamable-http"])
    );
    assert_eq!(
        server["mcp"]["packages"][0]["identifier"],
        "@example/io.example-single"
    );
    let agent = get("/api/v1/namespaces/team-a/agents/recipe-agent".into()).await;
    assert_eq!(agent["displayName"], "Recipe Agent");
    assert_eq!(agent["agent"]["skills"][0]["id"], "find");
    assert_eq!(agent["agent"]["capabilities"], json!(["streaming"]));
    assert_eq!(agent["agent"]["securitySchemes"][0]["type"], "http");
    assert_eq!(agent["metadata"]["agentCard"], card);
    let support = get("/api/v1/namespaces/team-a/agents/support-bot".into()).await;
    assert_eq!(support["metadata"]["agentCard"], cards[1]);
    // Skills, capabilities and transports are filterable as tags.
    let tagged = get("/api/v1/namespaces/team-a/agents?tag=skill.find".into()).await;
    assert_eq!(
        tagged["items"].as_array().unwrap().len(),
        2,
        "the card alone and in the list"
    );
    let tagged = get("/api/v1/namespaces/team-a/mcpservers?tag=transport.stdio".into()).await;
    assert_eq!(
        tagged["items"].as_array().unwrap().len(),
        2,
        "single and exported"
    );
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
