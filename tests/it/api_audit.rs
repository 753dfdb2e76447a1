//! The audit API: filters, pagination bound to its filters, and tenant isolation, namespaced
//! and across namespaces.

use crate::common::{
    api::{Client, Expect, spawn, static_state},
    audit, ns, postgres_store,
};
use chrono::{Duration, Utc};
use curio::store::NewAuditEvent;
use serde_json::Value;

fn event(
    namespace: &str,
    minutes_ago: i64,
    actor: &str,
    verb: &str,
    resource: &str,
    name: &str,
) -> NewAuditEvent {
    NewAuditEvent {
        occurred_at: Utc::now() - Duration::minutes(minutes_ago),
        actor: actor.into(),
        resource: resource.into(),
        object_uid: Some(format!("uid-{name}")),
        ..audit(&ns(namespace), verb, name)
    }
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["actor"].as_str().unwrap(),
                e["verb"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn audit_lists_filter_page_and_stay_inside_the_tenant() {
    let (store, _) = postgres_store().await;
    store
        .record_audit_events(&[
            event("team-a", 60, "alice", "create", "catalogsources", "models"),
            event("team-a", 50, "bob", "approve", "catalogsources", "models"),
            event(
                "team-a",
                40,
                "system:curio-controller",
                "create",
                "models",
                "granite",
            ),
            event("team-a", 30, "alice", "create", "refreshjobs", "refresh-1"),
            event("team-a", 20, "bob", "delete", "catalogsources", "models"),
            event("team-b", 10, "bob", "create", "catalogsources", "tools"),
        ])
        .await
        .unwrap();
    let api = Client::new(spawn(static_state(store)).await);
    let get = |path: String| {
        let api = &api;
        async move { api.get(Some("alice-token"), &path, &[]).await }
    };

    let (code, body) = get("/api/v1/namespaces/team-a/auditevents?actor=alice,bob".into()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        names(&body),
        [
            "alice:create:models",
            "bob:approve:models",
            "alice:create:refresh-1",
            "bob:delete:models"
        ]
    );
    let (_, body) = get(
        "/api/v1/namespaces/team-a/auditevents?verb=approve,delete&resource=catalogsources".into(),
    )
    .await;
    assert_eq!(names(&body), ["bob:approve:models", "bob:delete:models"]);
    let (_, body) = get("/api/v1/namespaces/team-a/auditevents?name=granite".into()).await;
    assert_eq!(names(&body), ["system:curio-controller:create:granite"]);
    let (_, body) = get("/api/v1/namespaces/team-a/auditevents?uid=uid-refresh-1".into()).await;
    assert_eq!(names(&body), ["alice:create:refresh-1"]);
    let since =
        (Utc::now() - Duration::minutes(45)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let until =
        (Utc::now() - Duration::minutes(25)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, body) = get(format!(
        "/api/v1/namespaces/team-a/auditevents?since={since}&until={until}"
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        names(&body),
        [
            "system:curio-controller:create:granite",
            "alice:create:refresh-1"
        ]
    );

    // Pages of two; the token belongs to its filters.
    let (_, first) =
        get("/api/v1/namespaces/team-a/auditevents?limit=2&actor=alice,bob".into()).await;
    assert_eq!(names(&first), ["alice:create:models", "bob:approve:models"]);
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, second) = get(format!(
        "/api/v1/namespaces/team-a/auditevents?limit=2&actor=alice,bob&continue={token}"
    ))
    .await;
    assert_eq!(
        names(&second),
        ["alice:create:refresh-1", "bob:delete:models"]
    );
    let (code, _) = get(format!(
        "/api/v1/namespaces/team-a/auditevents?limit=2&actor=alice&continue={token}"
    ))
    .await;
    assert_eq!(code, 400, "a token replayed with other filters");

    // Bad filters are a 400 with a message.
    for query in [
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "colour=red",
        "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        let (code, body) = get(format!("/api/v1/namespaces/team-a/auditevents?{query}")).await;
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Across namespaces: only where the caller may list audit events.
    let (code, body) = get("/api/v1/auditevents?namespaces=team-a&verb=delete".into()).await;
    assert_eq!(code, 200);
    assert_eq!(names(&body), ["bob:delete:models"]);
    let (code, body) = api
        .get(
            Some("bob-token"),
            "/api/v1/auditevents?namespaces=team-b",
            &[],
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(names(&body), ["bob:create:tools"]);
    api.expect_all(&[
        Expect::new(
            Some("alice-token"),
            "/api/v1/auditevents?namespaces=team-a,team-b",
            403,
        )
        .why("alice may not read team-b's trail"),
        // The models-only viewer may not read the trail at all; nor may anonymous callers.
        Expect::new(
            Some("mo-token"),
            "/api/v1/namespaces/team-a/auditevents",
            403,
        ),
        Expect::new(None, "/api/v1/auditevents?namespaces=team-a", 403)
            .why("anonymous is system:anonymous, allowed nothing"),
        Expect::new(Some("alice-token"), "/api/v1/auditevents", 400).why("namespaces is required"),
    ])
    .await;
}
