//! SubjectAccessReview and TokenReview against a local HTTP server that speaks both APIs:
//! the exact bodies sent, cache lifetimes, coalescing, and failing closed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::{api::*, postgres_store};
use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use curio::access::{
    authn::{Authenticator, TokenReviewAuthenticator, TokenReviewOptions},
    authz::{Attributes, Authorizer, CacheOptions, CachedAuthorizer, SubjectAccessReviewer},
    identity::UserInfo,
    metrics::AccessMetrics,
};
use serde_json::{Value, json};

/// What the fake apiserver does with a review.
#[derive(Default)]
struct FakeApiserver {
    sar_bodies: Mutex<Vec<Value>>,
    token_bodies: Mutex<Vec<Value>>,
    sar_calls: AtomicUsize,
    token_calls: AtomicUsize,
    /// 0: answer; 1: HTTP 500; 2: hang for the delay.
    mode: AtomicUsize,
    delay_ms: AtomicU64,
}

async fn sar(
    State(fake): State<Arc<FakeApiserver>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.sar_calls.fetch_add(1, Ordering::SeqCst);
    fake.sar_bodies.lock().unwrap().push(body.clone());
    tokio::time::sleep(Duration::from_millis(fake.delay_ms.load(Ordering::SeqCst))).await;
    if fake.mode.load(Ordering::SeqCst) == 1 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"kind": "Status", "code": 500})),
        );
    }
    let spec = &body["spec"];
    let groups: Vec<&str> = spec["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let ra = &spec["resourceAttributes"];
    let allowed = (spec["user"] == "alice" || groups.contains(&"team-a-admins"))
        && ra["namespace"] == "team-a"
        && ra["group"] == "curio.dev";
    let mut response = body.clone();
    response["status"] =
        json!({"allowed": allowed, "reason": if allowed { "RBAC: allowed" } else { "" }});
    (StatusCode::CREATED, Json(response))
}

async fn token_review(
    State(fake): State<Arc<FakeApiserver>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.token_calls.fetch_add(1, Ordering::SeqCst);
    fake.token_bodies.lock().unwrap().push(body.clone());
    tokio::time::sleep(Duration::from_millis(fake.delay_ms.load(Ordering::SeqCst))).await;
    if fake.mode.load(Ordering::SeqCst) == 1 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"kind": "Status", "code": 500})),
        );
    }
    let mut response = body.clone();
    response["status"] = if body["spec"]["token"] == "good" {
        json!({"authenticated": true, "user": {"username": "alice", "uid": "u-1", "groups": ["team-a-admins", "system:authenticated"]}})
    } else {
        json!({"authenticated": false})
    };
    (StatusCode::CREATED, Json(response))
}

async fn fake_apiserver() -> (Arc<FakeApiserver>, kube::Client) {
    let fake = Arc::new(FakeApiserver::default());
    let router = Router::new()
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(sar),
        )
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let config = kube::Config::new(url.parse().unwrap());
    (fake, kube::Client::try_from(config).unwrap())
}

fn alice() -> UserInfo {
    UserInfo::authenticated(
        "alice".into(),
        Some("u-1".into()),
        vec!["team-a-admins".into()],
    )
}

fn question(user: UserInfo, namespace: &str) -> Attributes {
    Attributes {
        user,
        group: curio::access::authz::API_GROUP,
        verb: "list",
        resource: "models".into(),
        namespace: namespace.into(),
        name: None,
    }
}

fn cached(
    client: kube::Client,
    allowed: Duration,
    denied: Duration,
    timeout: Duration,
) -> CachedAuthorizer<SubjectAccessReviewer> {
    CachedAuthorizer::new(
        SubjectAccessReviewer::new(client, timeout),
        CacheOptions {
            allowed_ttl: allowed,
            denied_ttl: denied,
            capacity: 1000,
        },
        AccessMetrics::default(),
    )
}

#[tokio::test]
async fn sends_exactly_the_review_the_apiserver_needs() {
    let (fake, client) = fake_apiserver().await;
    let authz = SubjectAccessReviewer::new(client, Duration::from_secs(5));
    let mut q = question(alice(), "team-a");
    q.verb = "get";
    q.name = Some("granite".into());
    assert!(authz.authorize(&q).await.unwrap().allowed());
    let body = fake.sar_bodies.lock().unwrap()[0].clone();
    assert_eq!(body["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(body["kind"], "SubjectAccessReview");
    assert_eq!(
        body["spec"],
        json!({
            "user": "alice",
            "uid": "u-1",
            "groups": ["team-a-admins", "system:authenticated"],
            "resourceAttributes": {
                "group": "curio.dev", "version": "v1alpha1", "resource": "models",
                "verb": "get", "namespace": "team-a", "name": "granite"
            }
        })
    );
    assert!(
        !authz
            .authorize(&question(alice(), "team-b"))
            .await
            .unwrap()
            .allowed()
    );
}

#[tokio::test]
async fn allowed_and_denied_answers_live_for_their_own_ttls() {
    let (fake, client) = fake_apiserver().await;
    let authz = cached(
        client,
        Duration::from_millis(600),
        Duration::from_millis(150),
        Duration::from_secs(5),
    );
    let calls = || fake.sar_calls.load(Ordering::SeqCst);
    let allowed = question(alice(), "team-a");
    let denied = question(alice(), "team-b");
    assert!(authz.authorize(&allowed).await.unwrap().allowed());
    assert!(!authz.authorize(&denied).await.unwrap().allowed());
    assert_eq!(calls(), 2);
    assert!(authz.authorize(&allowed).await.unwrap().allowed());
    assert!(!authz.authorize(&denied).await.unwrap().allowed());
    assert_eq!(calls(), 2, "both answered from the cache");
    tokio::time::sleep(Duration::from_millis(300)).await;
    authz.authorize(&allowed).await.unwrap();
    assert_eq!(calls(), 2, "allowed still cached");
    authz.authorize(&denied).await.unwrap();
    assert_eq!(calls(), 3, "denied expired");
    tokio::time::sleep(Duration::from_millis(400)).await;
    authz.authorize(&allowed).await.unwrap();
    assert_eq!(calls(), 4, "allowed expired");
}

#[tokio::test]
async fn a_hundred_concurrent_identical_checks_make_one_review() {
    let (fake, client) = fake_apiserver().await;
    fake.delay_ms.store(200, Ordering::SeqCst);
    let authz = Arc::new(cached(
        client,
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_secs(5),
    ));
    let checks: Vec<_> = (0..100)
        .map(|_| {
            let authz = authz.clone();
            tokio::spawn(async move { authz.authorize(&question(alice(), "team-a")).await })
        })
        .collect();
    for check in checks {
        assert!(check.await.unwrap().unwrap().allowed());
    }
    assert_eq!(fake.sar_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_or_slow_review_answers_503_and_no_data_and_is_not_cached() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let (fake, client) = fake_apiserver().await;
    let authz: Arc<dyn Authorizer> = Arc::new(cached(
        client,
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_millis(300),
    ));
    let api = Client::new(spawn(state_with(store, authz)).await);
    let path = "/api/v1/namespaces/team-a/models";

    fake.mode.store(1, Ordering::SeqCst);
    let (code, body) = api.get(Some("alice-token"), path, &[]).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["kind"], "Status");
    assert!(body.get("items").is_none());
    let (code, _) = api
        .get(Some("alice-token"), "/api/v1/namespaces/team-a/assets", &[])
        .await;
    assert_eq!(code, 503, "one failed kind check fails the whole list");

    fake.mode.store(0, Ordering::SeqCst);
    fake.delay_ms.store(2_000, Ordering::SeqCst);
    let (code, body) = api.get(Some("alice-token"), path, &[]).await;
    assert_eq!(code, 503, "a timed-out review: {body}");
    assert!(body.get("items").is_none());

    fake.delay_ms.store(0, Ordering::SeqCst);
    let (code, body) = api.get(Some("alice-token"), path, &[]).await;
    assert_eq!(code, 200, "errors were not cached: {body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn token_reviews_are_exact_cached_and_fail_closed() {
    let (fake, client) = fake_apiserver().await;
    let authn = TokenReviewAuthenticator::new(
        client,
        TokenReviewOptions {
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
        AccessMetrics::default(),
    );
    let user = authn
        .authenticate("good")
        .await
        .unwrap()
        .expect("authenticated");
    assert_eq!(user.username, "alice");
    assert_eq!(user.groups, ["team-a-admins", "system:authenticated"]);
    assert_eq!(
        fake.token_bodies.lock().unwrap()[0]["spec"],
        json!({"token": "good"})
    );
    authn.authenticate("good").await.unwrap();
    assert_eq!(
        fake.token_calls.load(Ordering::SeqCst),
        1,
        "cached by token digest"
    );
    assert!(authn.authenticate("bad").await.unwrap().is_none());
    fake.mode.store(1, Ordering::SeqCst);
    assert!(
        authn.authenticate("other").await.is_err(),
        "a failed review is an error, not a user"
    );
}
