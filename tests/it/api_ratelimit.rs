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
