//! CatalogPolicies at admission, over real HTTPS: a source a policy forbids is refused with a
//! message naming the policy and the limit, counted limits count the namespace's sources, and
//! a webhook that has not read the policies yet refuses rather than guesses.

use std::{collections::BTreeMap, sync::Arc};

use crate::common::{
    cluster::TestCluster,
    postgres_store,
    webhook::{
        admission_review, approval_rbac, post, sar_authorizer, sar_server, serve_with_policies,
        source_object, user,
    },
};
use curio::{
    cluster::{
        Cluster,
        policies::{Policies, PolicyView, StaticPolicies},
    },
    crd::CatalogPolicy,
};
use curio_core::fixtures::catalog_source;
use serde_json::{Value, json};
use tokio::sync::watch;

fn policy(name: &str, spec: Value) -> CatalogPolicy {
    serde_json::from_value(json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogPolicy",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn create(uid: &str, object: Value) -> Value {
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    admission_review(
        uid,
        "CREATE",
        "catalogsources",
        &name,
        user("alice", &["team-a-editors"]),
        Some(object),
        None,
        false,
    )
}

fn url_source(name: &str, url: &str) -> Value {
    catalog_source("team-a", name)
        .uid(&format!("uid-{name}"))
        .generation(1)
        .spec(json!({"source": {"url": {"url": url}}}))
        .json()
}

async fn webhook(
    policies: Vec<CatalogPolicy>,
) -> (crate::common::webhook::Served, Arc<TestCluster>) {
    let (store, _) = postgres_store().await;
    let (_, client) = sar_server(approval_rbac()).await;
    let cluster = Arc::new(TestCluster::new());
    let view = Arc::new(StaticPolicies::default());
    view.set_namespace_labels("team-a", BTreeMap::new());
    view.replace_policies(policies);
    let served = serve_with_policies(
        store,
        sar_authorizer(client),
        Some(cluster.clone() as Arc<dyn Cluster>),
        Some(Policies::new(view, false)),
    )
    .await;
    (served, cluster)
}

#[tokio::test]
async fn the_source_past_max_sources_is_refused_naming_the_policy() {
    let (served, cluster) = webhook(vec![policy(
        "two-per-team",
        json!({"limits": {"maxSources": 2}}),
    )])
    .await;
    for name in ["one", "two"] {
        let object = source_object(name, 1, None, json!([]));
        let (_, answer) = post(&served, &create(&format!("c-{name}"), object.clone())).await;
        assert_eq!(answer["allowed"], true, "{answer}");
        // The apiserver stores it once admitted.
        cluster
            .inner
            .apply_source(serde_json::from_value(object).unwrap());
    }
    let (_, answer) = post(
        &served,
        &create("c-three", source_object("three", 1, None, json!([]))),
    )
    .await;
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_eq!(answer["status"]["code"], 403);
    let message = answer["status"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "catalogsources team-a/three: CatalogPolicy \"two-per-team\": maxSources is 2: the namespace already has 2 CatalogSources"
    );
    // Updating one of the two is not a new source.
    let update = admission_review(
        "u-one",
        "UPDATE",
        "catalogsources",
        "one",
        user("alice", &["team-a-editors"]),
        Some(source_object(
            "one",
            2,
            Some("retag"),
            json!([{"match": "*", "tags": ["x"]}]),
        )),
        Some(source_object("one", 1, None, json!([]))),
        false,
    );
    assert_eq!(post(&served, &update).await.1["allowed"], true);
}

#[tokio::test]
async fn a_spec_a_policy_forbids_is_refused_with_every_reason() {
    let (served, _) = webhook(vec![
        policy(
            "hosts",
            json!({"limits": {"urlHosts": {"allow": ["*.example.com"]}}}),
        ),
        policy(
            "no-urls",
            json!({"limits": {"allowedSourceTypes": ["inline", "configMap"], "maxDocumentBytes": 1000}}),
        ),
    ])
    .await;
    let (_, answer) = post(
        &served,
        &create(
            "c-url",
            url_source("remote", "https://evil.test/catalog.yaml"),
        ),
    )
    .await;
    assert_eq!(answer["allowed"], false);
    let message = answer["status"]["message"].as_str().unwrap();
    assert!(
        message
            .contains("CatalogPolicy \"hosts\": URL host \"evil.test\" is not in urlHosts.allow")
            && message.contains("CatalogPolicy \"no-urls\": source type \"url\" is not allowed"),
        "{message}"
    );
    // Inline within the limits is admitted.
    let (_, answer) = post(
        &served,
        &create("c-inline", source_object("models", 1, None, json!([]))),
    )
    .await;
    assert_eq!(answer["allowed"], true, "{answer}");
}

#[tokio::test]
async fn other_namespaces_and_unselected_ones_are_not_limited() {
    let (served, _) = webhook(vec![policy(
        "elsewhere",
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-z"}},
               "limits": {"allowedSourceTypes": []}}),
    )])
    .await;
    let (_, answer) = post(
        &served,
        &create("c-a", source_object("models", 1, None, json!([]))),
    )
    .await;
    assert_eq!(answer["allowed"], true, "{answer}");
}

/// A view whose first list has not arrived.
struct NotYetRead(watch::Sender<u64>);

impl PolicyView for NotYetRead {
    fn policies(&self) -> Vec<CatalogPolicy> {
        Vec::new()
    }
    fn namespace_labels(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        BTreeMap::new()
    }
    fn is_ready(&self) -> bool {
        false
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[tokio::test]
async fn policies_not_read_yet_refuse_rather_than_admit() {
    let (store, _) = postgres_store().await;
    let (_, client) = sar_server(approval_rbac()).await;
    let served = serve_with_policies(
        store,
        sar_authorizer(client),
        None,
        Some(Policies::new(
            Arc::new(NotYetRead(watch::Sender::new(0))),
            false,
        )),
    )
    .await;
    let (_, answer) = post(
        &served,
        &create("c-early", source_object("models", 1, None, json!([]))),
    )
    .await;
    assert_eq!(answer["allowed"], false);
    assert!(
        answer["status"]["message"]
            .as_str()
            .unwrap()
            .contains("CatalogPolicies have not been read yet"),
        "{answer}"
    );
}
