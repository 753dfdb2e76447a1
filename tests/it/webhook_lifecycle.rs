//! One source's life through the webhook and the controller on one database: created by
//! alice, approved by bob, refreshed by alice's RefreshJob with a reason, deleted by bob. The
//! audit API then shows each step, in order, with the right actor, verb and reason; the only
//! other entries are the controller's own, each after the step that caused it.

use std::{sync::Arc, time::Duration};

use crate::common::{
    api::{Client, spawn, static_state},
    cluster::TestCluster,
    postgres_store,
    webhook::{
        Served, admission_review, approval_rbac, job_object, post, sar_authorizer, sar_server,
        serve, source_object, user,
    },
};
use curio::{
    cluster::Cluster,
    controller::{
        job::{JobResult, JobSettings, run_job},
        reconcile::{Context, cleanup_source, reconcile_source},
    },
    crd::{CatalogSource, RefreshJob},
    source::{http::UrlFetcher, policy::AddressPolicy},
};
use serde_json::{Value, json};

const CONTROLLER: &str = "system:serviceaccount:curio-system:curio";

/// Sends the review as the apiserver would and insists it is admitted.
async fn admitted(served: &Served, review: Value) {
    let (code, response) = post(served, &review).await;
    assert_eq!(code, 200);
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn a_sources_life_is_one_audit_entry_per_step_in_order() {
    let (store, _) = postgres_store().await;
    let cluster = Arc::new(TestCluster::new());
    let ctx = Context::new(
        store.clone(),
        cluster.clone(),
        CONTROLLER.into(),
        UrlFetcher::new(AddressPolicy::default(), Duration::from_secs(2)).unwrap(),
    );
    let (_, sar_client) = sar_server(approval_rbac()).await;
    let served = serve(
        store.clone(),
        sar_authorizer(sar_client),
        Some(cluster.clone() as Arc<dyn Cluster>),
    )
    .await;
    let alice = user("alice", &["team-a-editors"]);
    let bob = user("bob", &[]);
    let unapproved = json!([{"match": "granite-*", "tags": ["ibm"]}]);
    let approved = json!([{"match": "granite-*", "tags": ["ibm"], "approved": true}]);

    // 1. alice creates the source.
    let created = source_object("models", 1, Some("onboard IBM and Meta models"), unapproved);
    admitted(
        &served,
        admission_review(
            "req-1",
            "CREATE",
            "catalogsources",
            "models",
            alice.clone(),
            Some(created.clone()),
            None,
            false,
        ),
    )
    .await;
    let source: CatalogSource = serde_json::from_value(created.clone()).unwrap();
    let source = cluster.inner.apply_source(source);
    reconcile_source(&ctx, &source).await.unwrap();

    // 2. bob approves the granite models.
    let mut changed = source_object(
        "models",
        2,
        Some("granite passed the security review"),
        approved,
    );
    changed["metadata"]["uid"] = json!(source.metadata.uid);
    let mut before = created.clone();
    before["metadata"]["uid"] = json!(source.metadata.uid);
    admitted(
        &served,
        admission_review(
            "req-2",
            "UPDATE",
            "catalogsources",
            "models",
            bob.clone(),
            Some(changed.clone()),
            Some(before),
            false,
        ),
    )
    .await;
    let source = cluster
        .inner
        .apply_source(serde_json::from_value(changed.clone()).unwrap());
    reconcile_source(&ctx, &source).await.unwrap();
    let (_, granite) = {
        let api = Client::new(spawn(static_state(store.clone())).await);
        api.get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/models/granite-3-8b",
            &[],
        )
        .await
    };
    assert_eq!(granite["approved"], true, "{granite}");

    // 3. alice asks for a refresh, with a reason.
    let job = job_object("refresh-1", "models", "quarterly model review");
    admitted(
        &served,
        admission_review(
            "req-3",
            "CREATE",
            "refreshjobs",
            "refresh-1",
            alice.clone(),
            Some(job.clone()),
            None,
            false,
        ),
    )
    .await;
    cluster
        .inner
        .apply_job(serde_json::from_value::<RefreshJob>(job).unwrap());
    let settings = JobSettings {
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(50),
    };
    assert!(matches!(
        run_job(&ctx, &settings, "team-a", "refresh-1")
            .await
            .unwrap(),
        JobResult::Succeeded(_)
    ));

    // 4. bob deletes the source; the finalizer's cleanup removes its assets.
    admitted(
        &served,
        admission_review(
            "req-4",
            "DELETE",
            "catalogsources",
            "models",
            bob.clone(),
            None,
            Some(changed),
            false,
        ),
    )
    .await;
    let gone = cluster.inner.remove_source("team-a", "models").unwrap();
    cleanup_source(&ctx, &gone).await.unwrap();

    // The audit API: the people's steps, exactly, in order.
    let api = Client::new(spawn(static_state(store)).await);
    let (code, people) = api
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/auditevents?actor=alice,bob",
            &[],
        )
        .await;
    assert_eq!(code, 200, "{people}");
    let steps: Vec<(String, String, String, String, Value)> = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["verb"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
                e["reason"].clone(),
            )
        })
        .collect();
    let step = |actor: &str, verb: &str, resource: &str, name: &str, reason: &str| {
        (
            actor.to_owned(),
            verb.to_owned(),
            resource.to_owned(),
            name.to_owned(),
            json!(reason),
        )
    };
    assert_eq!(
        steps,
        vec![
            step(
                "alice",
                "create",
                "catalogsources",
                "models",
                "onboard IBM and Meta models"
            ),
            step(
                "bob",
                "approve",
                "catalogsources",
                "models",
                "granite passed the security review"
            ),
            step(
                "alice",
                "create",
                "refreshjobs",
                "refresh-1",
                "quarterly model review"
            ),
            // A DELETE carries no reason of its own: the object's standing change-reason.
            step(
                "bob",
                "delete",
                "catalogsources",
                "models",
                "granite passed the security review"
            ),
        ]
    );

    // The whole trail: nothing but those four and the controller's own consequences, each
    // after the step that caused it.
    let (_, all) = api
        .get(
            Some("alice-token"),
            "/api/v1/namespaces/team-a/auditevents?limit=500",
            &[],
        )
        .await;
    let all = all["items"].as_array().unwrap();
    let position = |request: &str| {
        all.iter()
            .position(|e| e["requestId"] == request)
            .unwrap_or_else(|| panic!("{request} in the trail"))
    };
    let (p1, p2, p3, p4) = (
        position("req-1"),
        position("req-2"),
        position("req-3"),
        position("req-4"),
    );
    assert!(p1 < p2 && p2 < p3 && p3 < p4);
    for (index, event) in all.iter().enumerate() {
        if [p1, p2, p3, p4].contains(&index) {
            continue;
        }
        assert_eq!(
            event["actor"], CONTROLLER,
            "only the controller besides the four steps: {event}"
        );
        let (verb, resource, name) = (
            event["verb"].as_str().unwrap(),
            event["resource"].as_str().unwrap(),
            event["name"].as_str().unwrap(),
        );
        match (verb, resource) {
            ("create", "models") => assert!(p1 < index && index < p2, "{event}"),
            ("update", "models") => {
                assert_eq!(name, "granite-3-8b");
                assert!(p2 < index && index < p3, "{event}");
            }
            (_, "refreshjobs") => {
                assert_eq!(event["reason"], "quarterly model review");
                assert!(p3 < index && index < p4, "{event}");
            }
            ("delete", "models") => {
                assert_eq!(event["reason"], "CatalogSource models deleted");
                assert!(p4 < index, "{event}");
            }
            other => panic!("unexpected entry {other:?}: {event}"),
        }
    }
    let count = |verb: &str, resource: &str| {
        all.iter()
            .filter(|e| e["verb"] == verb && e["resource"] == resource)
            .count()
    };
    assert_eq!(count("create", "models"), 2);
    assert_eq!(
        count("update", "models"),
        1,
        "only granite's approval changed"
    );
    assert_eq!(count("delete", "models"), 2);
    let job_phases: Vec<&str> = all
        .iter()
        .filter(|e| e["resource"] == "refreshjobs" && e["actor"] == CONTROLLER)
        .map(|e| e["verb"].as_str().unwrap())
        .collect();
    assert!(
        !job_phases.is_empty(),
        "the job's own entries are in the trail"
    );
}
