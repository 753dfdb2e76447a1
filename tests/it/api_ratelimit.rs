//! Rate limits over real HTTP: a caller over its bucket gets a 429 `Status` with
//! `Retry-After`; buckets are per user and per namespace, so one tenant's or one user's flood
//! leaves the others served.

use std::{sync::Arc, time::Duration};

use crate::common::{api::*, postgres_store};
use curio::api::ratelimit::{RateLimit, RateLimits};
use serde_json::Value;

async fn served(per_user: Option<RateLimit>, per_namespace: Option<RateLimit>) -> Client {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let mut state = static_state(store);
    state.rate_limits = Arc::new(RateLimits::new(per_user, per_namespace));
    Client::new(spawn(state).await)
}

async fn get(client: &Client, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let response = client
        .http
        .get(format!("{}{path}", client.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (code, retry, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_user_over_the_limit_gets_429_with_retry_after_and_others_do_not() {
    // One a minute, a burst of two: the third is over however slow the machine.
    let client = served(RateLimit::every(Duration::from_secs(60), 2), None).await;
    let models = "/api/v1/namespaces/team-a/models";
    assert_eq!(get(&client, "alice-token", models).await.0, 200);
    assert_eq!(get(&client, "alice-token", models).await.0, 200);
    let (code, retry, body) = get(&client, "alice-token", models).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "TooManyRequests");
    let seconds: u64 = retry.expect("a Retry-After header").parse().unwrap();
    assert!(seconds >= 1);
    assert_eq!(
        get(&client, "vera-token", models).await.0,
        200,
        "another user of the same namespace has a bucket of her own"
    );
}

#[tokio::test]
async fn a_flooded_namespace_is_limited_for_everyone_and_others_are_not() {
    let client = served(None, RateLimit::every(Duration::from_secs(60), 3)).await;
    let team_a = "/api/v1/namespaces/team-a/models";
    for token in ["alice-token", "vera-token", "mo-token"] {
        assert_eq!(get(&client, token, team_a).await.0, 200, "{token}");
    }
    let (code, _, body) = get(&client, "alice-token", team_a).await;
    assert_eq!(code, 429, "{body}");
    // A cross-namespace list naming team-a counts against it too.
    let (code, _, _) = get(&client, "alice-token", "/api/v1/assets?namespaces=team-a").await;
    assert_eq!(code, 429);
    assert_eq!(
        get(&client, "bob-token", "/api/v1/namespaces/team-b/models")
            .await
            .0,
        200,
        "team-b is not team-a"
    );
}

#[tokio::test]
async fn a_catalog_policy_sets_a_namespaces_rate_and_metrics_name_only_real_namespaces() {
    use curio::cluster::policies::{Policies, StaticPolicies};
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let view = Arc::new(StaticPolicies::default());
    view.set_namespace_labels("team-a", [("tier".to_owned(), "free".to_owned())].into());
    view.set_namespace_labels("team-b", Default::default());
    view.replace_policies(vec![
        serde_json::from_value(serde_json::json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogPolicy",
            "metadata": {"name": "free-tier"},
            "spec": {"namespaceSelector": {"matchLabels": {"tier": "free"}},
                     "apiRateLimits": {"namespaceRequestsPerSecond": 1, "namespaceBurst": 2}}
        }))
        .unwrap(),
    ]);
    let policies = Policies::new(view, false);
    // nobody may read every namespace, including ones that do not exist.
    let mut rbac = static_rbac();
    curio::access::authz::manifests::add_document(
        &mut rbac,
        &serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "nobody-reads-all"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curio-view"},
            "subjects": [{"kind": "User", "name": "nobody"}]}),
    )
    .unwrap();
    let mut state = state_with(store, Arc::new(rbac));
    // The flags allow three a minute per namespace; the policy gives team-a two.
    state.rate_limits = Arc::new(
        RateLimits::new(None, RateLimit::every(Duration::from_secs(60), 3))
            .with_policies(policies.clone()),
    );
    state.policies = Some(policies);
    let registry = state.registry.clone();
    let client = Client::new(spawn(state).await);
    let team_a = "/api/v1/namespaces/team-a/models";
    assert_eq!(get(&client, "alice-token", team_a).await.0, 200);
    assert_eq!(get(&client, "alice-token", team_a).await.0, 200);
    let (code, retry, body) = get(&client, "alice-token", team_a).await;
    assert_eq!(code, 429, "{body}");
    assert!(retry.is_some());
    let team_b = "/api/v1/namespaces/team-b/models";
    for _ in 0..3 {
        assert_eq!(get(&client, "bob-token", team_b).await.0, 200);
    }
    assert_eq!(get(&client, "bob-token", team_b).await.0, 429);

    // 1,000 made-up namespaces, each flooded past the flags' bucket by a caller allowed to
    // read any namespace: refused, and counted under one `other` series, never under the names
    // the client chose.
    for i in 0..1000 {
        let path = format!("/api/v1/namespaces/made-up-{i}/models");
        let mut codes = Vec::new();
        for _ in 0..4 {
            codes.push(get(&client, "nobody-token", &path).await.0);
        }
        assert_eq!(codes, [200, 200, 200, 429], "{path}");
    }
    let text = curio::telemetry::render(&registry);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("curio_api_requests_rate_limited_total{"))
        .collect();
    assert!(series.len() <= 3, "a fixed number of series: {series:?}");
    assert!(
        series.iter().any(|l| l.contains("namespace=\"team-a\"")),
        "{series:?}"
    );
    assert!(
        series.iter().any(|l| l.contains("namespace=\"other\"")),
        "{series:?}"
    );
    assert!(!text.contains("made-up-"), "no client-chosen label");
}

#[tokio::test]
async fn refused_requests_do_not_spend_another_tenants_namespace_bucket() {
    let client = served(None, RateLimit::every(Duration::from_secs(60), 3)).await;
    let team_a = "/api/v1/namespaces/team-a/models";
    // Bob reads team-b; naming team-a is refused every time, and costs team-a nothing.
    for _ in 0..20 {
        assert_eq!(get(&client, "bob-token", team_a).await.0, 403);
        assert_eq!(
            get(&client, "bob-token", "/api/v1/assets?namespaces=team-a")
                .await
                .0,
            403
        );
    }
    for token in ["alice-token", "vera-token", "mo-token"] {
        assert_eq!(get(&client, token, team_a).await.0, 200, "{token}");
    }
    assert_eq!(get(&client, "alice-token", team_a).await.0, 429);
}
