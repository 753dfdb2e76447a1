//! The admission webhook over real HTTPS, with AdmissionReview bodies as the apiserver sends
//! them, a local server answering SubjectAccessReviews from RBAC manifests, and the audit
//! trail in real PostgreSQL.

use std::sync::{Arc, atomic::Ordering};

use crate::common::{
    cluster::TestCluster,
    ns, postgres_store,
    webhook::{
        admission_review, approval_rbac, job_object, post, sar_authorizer, sar_server, serve,
        source_object, user,
    },
};
use curio::store::{NamespaceScope, Store, entity::audit_event};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

async fn trail(store: &Store) -> Vec<audit_event::Model> {
    store
        .list_audit_events(
            &NamespaceScope::single(ns("team-a")),
            &Default::default(),
            None,
            500,
        )
        .await
        .unwrap()
}

fn approving() -> Value {
    json!([{"match": "granite-*", "tags": ["ibm"], "approved": true}])
}

fn promoting() -> Value {
    json!([{"match": "granite-*", "tags": ["ibm"], "stage": "production"}])
}

fn plain() -> Value {
    json!([{"match": "granite-*", "tags": ["ibm"]}])
}

#[tokio::test]
async fn each_operation_is_recorded_once_with_its_actor_and_why() {
    let (store, _) = postgres_store().await;
    let (sar, client) = sar_server(approval_rbac()).await;
    let served = serve(store.clone(), sar_authorizer(client), None).await;
    let alice = user("alice", &["team-a-editors"]);

    let create = admission_review(
        "req-create",
        "CREATE",
        "catalogsources",
        "models",
        alice.clone(),
        Some(source_object(
            "models",
            1,
            Some("onboarding IBM models"),
            plain(),
        )),
        None,
        false,
    );
    let (code, response) = post(&served, &create).await;
    assert_eq!(code, 200);
    assert_eq!(response["uid"], "req-create");
    assert_eq!(response["allowed"], true, "{response}");
    // The apiserver may send the same request again (a timeout, a retry): still one event.
    let (_, again) = post(&served, &create).await;
    assert_eq!(again["allowed"], true);
    // Nothing to approve: no SubjectAccessReview was needed.
    assert_eq!(sar.calls.load(Ordering::SeqCst), 0);

    let update = admission_review(
        "req-update",
        "UPDATE",
        "catalogsources",
        "models",
        alice.clone(),
        Some(source_object(
            "models",
            2,
            Some("tag llama too"),
            json!([{"match": "*", "tags": ["ibm"]}]),
        )),
        Some(source_object(
            "models",
            1,
            Some("onboarding IBM models"),
            plain(),
        )),
        false,
    );
    assert_eq!(post(&served, &update).await.1["allowed"], true);

    let job = admission_review(
        "req-job",
        "CREATE",
        "refreshjobs",
        "refresh-1",
        alice.clone(),
        Some(job_object("refresh-1", "models", "quarterly review")),
        None,
        false,
    );
    assert_eq!(post(&served, &job).await.1["allowed"], true);

    let delete = admission_review(
        "req-delete",
        "DELETE",
        "catalogsources",
        "models",
        alice.clone(),
        None,
        Some(source_object(
            "models",
            2,
            Some("tag llama too"),
            json!([{"match": "*", "tags": ["ibm"]}]),
        )),
        false,
    );
    assert_eq!(post(&served, &delete).await.1["allowed"], true);

    let events = trail(&store).await;
    let seen: Vec<(&str, &str, &str, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.request_id.as_deref().unwrap(),
                e.actor.as_str(),
                e.verb.as_str(),
                e.resource.as_str(),
                e.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "req-create",
                "alice",
                "create",
                "catalogsources",
                Some("onboarding IBM models")
            ),
            (
                "req-update",
                "alice",
                "update",
                "catalogsources",
                Some("tag llama too")
            ),
            (
                "req-job",
                "alice",
                "create",
                "refreshjobs",
                Some("quarterly review")
            ),
            (
                "req-delete",
                "alice",
                "delete",
                "catalogsources",
                Some("tag llama too")
            ),
        ]
    );
    let created = &events[0];
    assert_eq!(created.object_name, "models");
    assert_eq!(created.object_uid.as_deref(), Some("uid-source-models"));
    assert!(created.before_digest.is_none() && created.after_digest.is_some());
    assert_eq!(
        created.actor_groups,
        json!(["team-a-editors", "system:authenticated"])
    );
    let details = created.details.clone().unwrap();
    assert_eq!(details["user"]["uid"], "uid-alice");
    assert_eq!(
        details["user"]["extra"]["authentication.kubernetes.io/credential-id"],
        json!(["JTI=alice-1"])
    );
    assert_eq!(details["admission"]["allowed"], true);
    let updated = &events[1];
    assert_eq!(updated.before_digest, created.after_digest);
    assert_ne!(updated.after_digest, updated.before_digest);
    let deleted = &events[3];
    assert_eq!(deleted.before_digest, updated.after_digest);
    assert!(deleted.after_digest.is_none());
}

#[tokio::test]
async fn approve_and_promote_need_their_verbs() {
    let (store, _) = postgres_store().await;
    let (sar, client) = sar_server(approval_rbac()).await;
    let served = serve(store.clone(), sar_authorizer(client), None).await;
    let old = source_object("models", 1, None, plain());
    let change = |uid: &str, who: Value, curation: Value| {
        admission_review(
            uid,
            "UPDATE",
            "catalogsources",
            "models",
            who,
            Some(source_object(
                "models",
                2,
                Some("granite passed review"),
                curation,
            )),
            Some(old.clone()),
            false,
        )
    };

    // alice may edit sources but not approve: refused, with the missing permission named.
    let (code, denied) = post(
        &served,
        &change("req-a1", user("alice", &["team-a-editors"]), approving()),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["status"]["code"], 403);
    assert_eq!(denied["status"]["reason"], "Forbidden");
    let message = denied["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot approve catalogsources.curio.dev")
            && message.contains("\"approve\" verb"),
        "{message}"
    );
    // The review asked exactly the right question.
    let asked = sar.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        asked["spec"]["resourceAttributes"],
        json!({"group": "curio.dev", "version": "v1alpha1", "resource": "catalogsources",
               "verb": "approve", "namespace": "team-a", "name": "models"})
    );
    assert_eq!(asked["spec"]["user"], "alice");

    // bob has approve: the same change is admitted.
    let (_, admitted) = post(&served, &change("req-b1", user("bob", &[]), approving())).await;
    assert_eq!(admitted["allowed"], true, "{admitted}");

    // Promote: carol may, alice may not.
    let (_, denied_promote) = post(
        &served,
        &change("req-a2", user("alice", &["team-a-editors"]), promoting()),
    )
    .await;
    assert_eq!(denied_promote["allowed"], false);
    assert!(
        denied_promote["status"]["message"]
            .as_str()
            .unwrap()
            .contains("\"promote\" verb")
    );
    let (_, carol) = post(&served, &change("req-c1", user("carol", &[]), promoting())).await;
    assert_eq!(carol["allowed"], true, "{carol}");
    // carol cannot approve, so a change that does both is refused.
    let both = json!([{"match": "granite-*", "approved": true, "stage": "production"}]);
    let (_, carol_both) = post(&served, &change("req-c2", user("carol", &[]), both)).await;
    assert_eq!(carol_both["allowed"], false);

    // Creating a source that already approves needs approve too.
    let create = |uid: &str, who: Value| {
        admission_review(
            uid,
            "CREATE",
            "catalogsources",
            "approved-models",
            who,
            Some(source_object("approved-models", 1, None, approving())),
            None,
            false,
        )
    };
    let (_, alice_create) = post(
        &served,
        &create("req-a3", user("alice", &["team-a-editors"])),
    )
    .await;
    assert_eq!(alice_create["allowed"], false);
    let (_, bob_create) = post(&served, &create("req-b2", user("bob", &[]))).await;
    assert_eq!(bob_create["allowed"], true);

    // Every decision is in the trail, denied ones marked with their message.
    let events = trail(&store).await;
    let summary: Vec<(&str, &str, &str, bool)> = events
        .iter()
        .map(|e| {
            let details = e.details.as_ref().unwrap();
            (
                e.request_id.as_deref().unwrap(),
                e.actor.as_str(),
                e.verb.as_str(),
                details["admission"]["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("req-a1", "alice", "approve", false),
            ("req-b1", "bob", "approve", true),
            ("req-a2", "alice", "promote", false),
            ("req-c1", "carol", "promote", true),
            ("req-c2", "carol", "approve", false),
            ("req-a3", "alice", "create", false),
            ("req-b2", "bob", "create", true),
        ]
    );
    let metrics = curio::telemetry::render(&served.registry);
    assert!(
        metrics.contains(
            "curio_admission_reviews_total{resource=\"catalogsources\",operation=\"update\",outcome=\"forbidden\"} 3"
        ),
        "{metrics}"
    );
    let denial = events[0].details.as_ref().unwrap();
    assert_eq!(denial["admission"]["message"], message);
    assert_eq!(denial["admission"]["checkedVerbs"], json!(["approve"]));
    assert_eq!(events[0].reason.as_deref(), Some("granite passed review"));
}

#[tokio::test]
async fn no_decision_or_no_database_means_no_change() {
    let (store, url) = postgres_store().await;
    let (sar, client) = sar_server(approval_rbac()).await;
    let served = serve(store.clone(), sar_authorizer(client), None).await;
    let approve = |uid: &str| {
        admission_review(
            uid,
            "UPDATE",
            "catalogsources",
            "models",
            user("bob", &[]),
            Some(source_object("models", 2, None, approving())),
            Some(source_object("models", 1, None, plain())),
            false,
        )
    };

    // The authorizer is down: fail closed.
    sar.failing.store(true, Ordering::SeqCst);
    let (_, response) = post(&served, &approve("req-1")).await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot check whether user \"bob\" may approve"),
        "{response}"
    );
    sar.failing.store(false, Ordering::SeqCst);

    // A dry run is decided like the real request but records nothing (the configuration
    // declares sideEffects: NoneOnDryRun).
    let mut dry = approve("req-dry");
    dry["request"]["dryRun"] = true.into();
    assert_eq!(post(&served, &dry).await.1["allowed"], true);
    let mut dry_denied = admission_review(
        "req-dry-2",
        "UPDATE",
        "catalogsources",
        "models",
        user("alice", &["team-a-editors"]),
        Some(source_object("models", 2, None, approving())),
        Some(source_object("models", 1, None, plain())),
        true,
    );
    assert_eq!(post(&served, &dry_denied).await.1["allowed"], false);
    dry_denied["request"]["dryRun"] = false.into();

    // A metadata-only update (the controller adding its finalizer) is not a change to audit.
    let mut finalized = source_object("models", 1, None, plain());
    finalized["metadata"]["finalizers"] = json!(["curio.dev/cleanup"]);
    finalized["metadata"]["resourceVersion"] = "999".into();
    let housekeeping = admission_review(
        "req-finalizer",
        "UPDATE",
        "catalogsources",
        "models",
        user(
            "system:serviceaccount:curio:curio",
            &["system:serviceaccounts"],
        ),
        Some(finalized),
        Some(source_object("models", 1, None, plain())),
        false,
    );
    assert_eq!(post(&served, &housekeeping).await.1["allowed"], true);

    // An invalid spec is refused as Invalid, and recorded.
    let bad = admission_review(
        "req-bad",
        "CREATE",
        "catalogsources",
        "broken",
        user("alice", &["team-a-editors"]),
        Some(source_object(
            "broken",
            1,
            None,
            json!([{"match": "granite-[", "tags": ["x"]}]),
        )),
        None,
        false,
    );
    let (_, invalid) = post(&served, &bad).await;
    assert_eq!(invalid["allowed"], false);
    assert_eq!(invalid["status"]["code"], 422);
    assert!(
        invalid["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.curation[0]")
    );

    let events = trail(&store).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e.request_id.as_deref().unwrap())
        .collect();
    assert_eq!(ids, vec!["req-1", "req-bad"]);

    // The database goes away: a change that would be admitted is refused.
    let admin = Database::connect(crate::common::admin_url().as_str())
        .await
        .unwrap();
    let name = url.rsplit('/').next().unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let (_, down) = post(&served, &approve("req-2")).await;
    assert_eq!(down["allowed"], false, "{down}");
    assert_eq!(down["status"]["code"], 503);
    assert!(
        down["status"]["message"]
            .as_str()
            .unwrap()
            .contains("audit trail"),
        "{down}"
    );
}

#[tokio::test]
async fn missing_references_warn_unsafe_urls_are_refused_approvals_leave_events() {
    let (store, _) = postgres_store().await;
    let (_, client) = sar_server(approval_rbac()).await;
    let cluster = Arc::new(TestCluster::new());
    let served = serve(
        store.clone(),
        sar_authorizer(client),
        Some(cluster.clone() as Arc<dyn curio::cluster::Cluster>),
    )
    .await;
    let url_source = |url: &str| {
        let mut object = source_object("remote", 1, None, json!([]));
        object["spec"]["source"] =
            json!({"url": {"url": url, "secretRef": {"name": "catalog-token"}}});
        object
    };
    let (_, response) = post(
        &served,
        &admission_review(
            "req-1",
            "CREATE",
            "catalogsources",
            "remote",
            user("alice", &["team-a-editors"]),
            Some(url_source("https://catalog.example.com/models.yaml")),
            None,
            false,
        ),
    )
    .await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!(["Secret team-a/catalog-token does not exist (yet)"])
    );
    let (_, http) = post(
        &served,
        &admission_review(
            "req-2",
            "CREATE",
            "catalogsources",
            "remote",
            user("alice", &["team-a-editors"]),
            Some(url_source("http://catalog.example.com/models.yaml")),
            None,
            false,
        ),
    )
    .await;
    assert_eq!(http["allowed"], false);
    assert!(
        http["status"]["message"]
            .as_str()
            .unwrap()
            .contains("use https")
    );
    // A job for a source that does not exist yet: admitted with a warning.
    let (_, job) = post(
        &served,
        &admission_review(
            "req-3",
            "CREATE",
            "refreshjobs",
            "refresh",
            user("alice", &["team-a-editors"]),
            Some(job_object("refresh", "nope", "why not")),
            None,
            false,
        ),
    )
    .await;
    assert_eq!(job["allowed"], true);
    assert_eq!(
        job["warnings"],
        json!(["CatalogSource team-a/nope does not exist (yet)"])
    );
    // Approvals leave an Event on the source.
    let (_, approved) = post(
        &served,
        &admission_review(
            "req-4",
            "UPDATE",
            "catalogsources",
            "models",
            user("bob", &[]),
            Some(source_object(
                "models",
                2,
                Some("security review passed"),
                approving(),
            )),
            Some(source_object("models", 1, None, plain())),
            false,
        ),
    )
    .await;
    assert_eq!(approved["allowed"], true);
    // Events go out in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let events = cluster.events();
        if events.iter().any(|e| {
            e.reason == "Approved" && e.note == "bob changed approvals: security review passed"
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{events:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn malformed_reviews_are_a_400_not_a_crash() {
    let (store, _) = postgres_store().await;
    let (_, client) = sar_server(approval_rbac()).await;
    let served = serve(store, sar_authorizer(client), None).await;
    for body in [json!({"kind": "AdmissionReview"}), json!([1, 2, 3])] {
        let response = served
            .http
            .post(&served.url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["response"]["allowed"], false);
    }
}
