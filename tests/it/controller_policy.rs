//! CatalogPolicy enforcement in the reconcile, on the real PostgreSQL with the cluster in
//! memory: each limit refuses what breaks it and keeps the last good catalog, a pause stops
//! fetching and says so, and the policy's status shows the usage.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering},
};

use crate::common::{
    cluster::{TestCluster, controller_context},
    count,
};
use curio::{
    cluster::policies::{Policies, StaticPolicies},
    controller::{
        policy_status,
        reconcile::{Context, Report, reconcile_source},
    },
    crd::{CatalogPolicy, CatalogSource, CatalogSourceStatus},
    decisions::conditions::{PAUSED_BY_POLICY, RECONCILING},
    source::policy::AddressPolicy,
};
use curio_core::fixtures::catalog_source;
use serde_json::json;

fn policy(name: &str, spec: serde_json::Value) -> CatalogPolicy {
    serde_json::from_value(json!({
        "apiVersion": "curio.dev/v1alpha1",
        "kind": "CatalogPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": spec,
    }))
    .unwrap()
}

/// A context enforcing `policies`, whose view the test can change.
async fn context(policies: Vec<CatalogPolicy>) -> (Context, Arc<TestCluster>, Arc<StaticPolicies>) {
    let (ctx, cluster) = controller_context(AddressPolicy::default()).await;
    let view = Arc::new(StaticPolicies::default());
    view.set_namespace_labels("team-a", BTreeMap::from([("tier".into(), "free".into())]));
    view.set_namespace_labels("team-b", BTreeMap::new());
    view.replace_policies(policies);
    let ctx = ctx.with_policies(Policies::new(view.clone(), false));
    (ctx, cluster, view)
}

fn catalog(names: &[&str]) -> String {
    let mut text = "assets:\n".to_owned();
    for name in names {
        text.push_str(&format!(" - {{kind: Model, name: {name}}}\n"));
    }
    text
}

/// A ConfigMap source, applied to the in-memory cluster (so it is counted and keeps status).
fn config_map_source(cluster: &TestCluster, namespace: &str, name: &str) -> CatalogSource {
    cluster.inner.apply_source(
        catalog_source(namespace, name)
            .spec(json!({"source": {"configMap": {"name": name}}}))
            .build(),
    )
}

fn current(cluster: &TestCluster, source: &CatalogSource) -> CatalogSource {
    cluster
        .inner
        .get_source(
            source.metadata.namespace.as_deref().unwrap(),
            source.metadata.name.as_deref().unwrap(),
        )
        .unwrap()
}

fn condition(status: &CatalogSourceStatus, type_: &str) -> Option<(String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn assets_of(ctx: &Context, namespace: &str, source: &str) -> i64 {
    count(
        &ctx.store,
        &format!(
            "SELECT count(*) FROM assets WHERE namespace = '{namespace}' AND source = '{source}'"
        ),
    )
    .await
}

#[tokio::test]
async fn a_catalog_over_the_per_source_limit_keeps_the_last_good_one() {
    let (ctx, cluster, view) = context(vec![]).await;
    cluster.put_config_map("team-a", "models", "catalog.yaml", &catalog(&["a", "b"]));
    let source = config_map_source(&cluster, "team-a", "models");
    reconcile_source(&ctx, &source).await.unwrap();
    assert_eq!(assets_of(&ctx, "team-a", "models").await, 2);

    view.replace_policies(vec![policy(
        "per-source",
        json!({"limits": {"maxAssetsPerSource": 2}}),
    )]);
    cluster.put_config_map(
        "team-a",
        "models",
        "catalog.yaml",
        &catalog(&["a", "b", "c"]),
    );
    let report = reconcile_source(&ctx, &current(&cluster, &source))
        .await
        .unwrap();
    assert!(
        matches!(&report, Report::Failed { transient: false, reason, .. } if reason == "QuotaExceeded"),
        "{report:?}"
    );
    let status = cluster.last_status();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("False".into(), "QuotaExceeded".into()))
    );
    let message = status.message.unwrap();
    assert!(
        message.contains("CatalogPolicy \"per-source\"")
            && message.contains("maxAssetsPerSource is 2")
            && message.contains("keeping the last good catalog"),
        "{message}"
    );
    assert_eq!(
        assets_of(&ctx, "team-a", "models").await,
        2,
        "last good kept"
    );
    assert_eq!(status.asset_count, Some(2));
}

#[tokio::test]
async fn the_namespace_limit_counts_every_source_of_the_namespace_only() {
    let (ctx, cluster, _) = context(vec![policy(
        "namespace",
        json!({"limits": {"maxAssetsPerNamespace": 3}}),
    )])
    .await;
    cluster.put_config_map("team-a", "first", "catalog.yaml", &catalog(&["a", "b"]));
    cluster.put_config_map("team-a", "second", "catalog.yaml", &catalog(&["c", "d"]));
    cluster.put_config_map("team-b", "other", "catalog.yaml", &catalog(&["x1", "x2"]));
    let first = config_map_source(&cluster, "team-a", "first");
    let second = config_map_source(&cluster, "team-a", "second");
    let other = config_map_source(&cluster, "team-b", "other");
    assert!(matches!(
        reconcile_source(&ctx, &first).await.unwrap(),
        Report::Applied(_)
    ));
    let report = reconcile_source(&ctx, &other).await.unwrap();
    assert!(matches!(report, Report::Applied(_)), "{report:?}");
    let report = reconcile_source(&ctx, &second).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { reason, message, .. }
            if reason == "QuotaExceeded" && message.contains("would hold 4 assets") && message.contains("maxAssetsPerNamespace is 3")),
        "{report:?}"
    );
    assert_eq!(assets_of(&ctx, "team-a", "second").await, 0);
    // Team B's own policy-free count is not team A's business, nor the reverse.
    assert_eq!(assets_of(&ctx, "team-b", "other").await, 2);
}

#[tokio::test]
async fn sources_beyond_max_sources_wait_newest_first() {
    let (ctx, cluster, _) =
        context(vec![policy("two", json!({"limits": {"maxSources": 2}}))]).await;
    let mut sources = Vec::new();
    for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
        cluster.put_config_map("team-a", name, "catalog.yaml", &catalog(&[name]));
        let built = catalog_source("team-a", name)
            .spec(json!({"source": {"configMap": {"name": name}}}))
            .build();
        let mut built = built;
        built.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
            ));
        sources.push(cluster.inner.apply_source(built));
    }
    // Reconciled newest first: the order of reconciles does not decide, creation does.
    let third = reconcile_source(&ctx, &sources[2]).await.unwrap();
    assert!(
        matches!(&third, Report::Failed { reason, message, .. } if reason == "QuotaExceeded" && message.contains("maxSources is 2")),
        "{third:?}"
    );
    for source in &sources[..2] {
        assert!(matches!(
            reconcile_source(&ctx, source).await.unwrap(),
            Report::Applied(_)
        ));
    }
    assert_eq!(assets_of(&ctx, "team-a", "three").await, 0);
}

#[tokio::test]
async fn a_spec_a_policy_forbids_is_stalled_naming_the_policy() {
    let (ctx, cluster, _) = context(vec![
        policy(
            "free-tier",
            json!({"namespaceSelector": {"matchLabels": {"tier": "free"}},
                   "limits": {"allowedSourceTypes": ["configMap"], "minInterval": "1h"}}),
        ),
        policy(
            "hosts",
            json!({"limits": {"urlHosts": {"deny": ["*.internal.example"]}}}),
        ),
    ])
    .await;
    let inline = cluster.inner.apply_source(
        catalog_source("team-a", "inline")
            .spec(json!({"source": {"inline": {"assets": [{"kind": "Model", "name": "a"}]}}}))
            .build(),
    );
    let report = reconcile_source(&ctx, &inline).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { transient: false, reason, message }
            if reason == "PolicyViolation" && message.contains("CatalogPolicy \"free-tier\": source type \"inline\" is not allowed")),
        "{report:?}"
    );
    assert_eq!(
        condition(&cluster.last_status(), "Stalled"),
        Some(("True".into(), "PolicyViolation".into()))
    );
    assert_eq!(assets_of(&ctx, "team-a", "inline").await, 0);

    let fast = cluster.inner.apply_source(
        catalog_source("team-a", "fast")
            .spec(json!({"source": {"configMap": {"name": "c"}}, "interval": "5m"}))
            .build(),
    );
    let report = reconcile_source(&ctx, &fast).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { message, .. } if message.contains("shorter than minInterval 1h")),
        "{report:?}"
    );
    let reads = cluster.reads.load(Ordering::SeqCst);
    // In team-b the free tier does not apply, but the host rule does, before any fetch.
    let denied = cluster.inner.apply_source(
        catalog_source("team-b", "remote")
            .spec(json!({"source": {"url": {"url": "https://models.internal.example/c.yaml"}}}))
            .build(),
    );
    let report = reconcile_source(&ctx, &denied).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { message, .. } if message.contains("CatalogPolicy \"hosts\"") && message.contains("denied")),
        "{report:?}"
    );
    assert_eq!(
        cluster.reads.load(Ordering::SeqCst),
        reads,
        "nothing fetched"
    );
}

#[tokio::test]
async fn a_document_over_max_document_bytes_is_refused() {
    let (ctx, cluster, _) = context(vec![policy(
        "small",
        json!({"limits": {"maxDocumentBytes": 64}}),
    )])
    .await;
    cluster.put_config_map(
        "team-a",
        "big",
        "catalog.yaml",
        &catalog(&["alpha", "beta", "gamma", "delta", "epsilon"]),
    );
    let source = config_map_source(&cluster, "team-a", "big");
    let report = reconcile_source(&ctx, &source).await.unwrap();
    assert!(
        matches!(&report, Report::Failed { transient: false, message, .. } if message.contains("64")),
        "{report:?}"
    );
    assert_eq!(assets_of(&ctx, "team-a", "big").await, 0);
}

#[tokio::test]
async fn a_pause_stops_fetching_keeps_serving_and_resumes() {
    let (ctx, cluster, view) = context(vec![]).await;
    cluster.put_config_map("team-a", "models", "catalog.yaml", &catalog(&["a", "b"]));
    let source = config_map_source(&cluster, "team-a", "models");
    reconcile_source(&ctx, &source).await.unwrap();
    let ready_before = condition(&cluster.last_status(), "Ready");

    view.replace_policies(vec![policy(
        "freeze",
        json!({"paused": true, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}),
    )]);
    cluster.put_config_map(
        "team-a",
        "models",
        "catalog.yaml",
        &catalog(&["a", "b", "c"]),
    );
    let reads = cluster.reads.load(Ordering::SeqCst);
    let report = reconcile_source(&ctx, &current(&cluster, &source))
        .await
        .unwrap();
    assert_eq!(report, Report::Paused);
    assert_eq!(
        cluster.reads.load(Ordering::SeqCst),
        reads,
        "nothing fetched"
    );
    let status = cluster.last_status();
    assert_eq!(
        condition(&status, RECONCILING),
        Some(("False".into(), PAUSED_BY_POLICY.into()))
    );
    assert_eq!(condition(&status, "Ready"), ready_before, "Ready untouched");
    assert!(
        status
            .message
            .unwrap()
            .contains("paused by CatalogPolicy \"freeze\"")
    );
    assert_eq!(
        assets_of(&ctx, "team-a", "models").await,
        2,
        "the last good catalog stays"
    );
    let paused_events = cluster
        .events()
        .iter()
        .filter(|e| e.reason == "Paused")
        .count();
    // Seen again while paused: no second status write, no second Event.
    let writes = cluster.statuses.lock().unwrap().len();
    reconcile_source(&ctx, &current(&cluster, &source))
        .await
        .unwrap();
    assert_eq!(cluster.statuses.lock().unwrap().len(), writes);
    assert_eq!(
        cluster
            .events()
            .iter()
            .filter(|e| e.reason == "Paused")
            .count(),
        paused_events
    );
    assert_eq!(ctx.metrics.paused_reconciles.get(), 2);

    // Resumed: the next look refreshes (the pause marker makes it due) and clears the marker.
    view.replace_policies(vec![]);
    let report = reconcile_source(&ctx, &current(&cluster, &source))
        .await
        .unwrap();
    assert!(
        matches!(report, Report::Applied(o) if o.added == 1),
        "{report:?}"
    );
    assert_eq!(condition(&cluster.last_status(), RECONCILING), None);
    assert_eq!(assets_of(&ctx, "team-a", "models").await, 3);
}

#[tokio::test]
async fn the_kill_switch_pauses_every_namespace() {
    let (ctx, cluster) = controller_context(AddressPolicy::default()).await;
    let ctx = ctx.with_policies(Policies::new(Arc::new(StaticPolicies::default()), true));
    let source = cluster.inner.apply_source(
        catalog_source("anyone", "s")
            .spec(json!({"source": {"inline": {"assets": [{"kind": "Model", "name": "a"}]}}}))
            .build(),
    );
    assert_eq!(
        reconcile_source(&ctx, &source).await.unwrap(),
        Report::Paused
    );
    let status = cluster.last_status();
    assert_eq!(
        condition(&status, RECONCILING),
        Some(("False".into(), PAUSED_BY_POLICY.into()))
    );
    assert!(status.message.unwrap().contains("kill switch"));
    assert_eq!(assets_of(&ctx, "anyone", "s").await, 0);
}

#[tokio::test]
async fn a_policy_status_shows_the_usage_of_the_namespaces_it_selects() {
    let (ctx, cluster, view) = context(vec![]).await;
    for (namespace, names) in [("team-a", vec!["a", "b"]), ("team-b", vec!["x"])] {
        cluster.put_config_map(namespace, "s", "catalog.yaml", &catalog(&names));
        let source = config_map_source(&cluster, namespace, "s");
        reconcile_source(&ctx, &source).await.unwrap();
    }
    view.replace_policies(vec![
        policy(
            "free-tier",
            json!({"namespaceSelector": {"matchLabels": {"tier": "free"}}, "paused": true}),
        ),
        policy("everyone", json!({"limits": {"maxSources": 10}})),
    ]);
    let written = policy_status::update(&ctx).await.unwrap();
    assert_eq!(written, 2);
    let free = cluster.inner.policy_status("free-tier").unwrap();
    assert_eq!(free.namespace_count, Some(1));
    assert_eq!(free.namespaces.len(), 1);
    let usage = &free.namespaces[0];
    assert_eq!(
        (
            usage.namespace.as_str(),
            usage.sources,
            usage.assets,
            usage.paused
        ),
        ("team-a", 1, 2, true)
    );
    assert_eq!(free.observed_generation, Some(1));
    let everyone = cluster.inner.policy_status("everyone").unwrap();
    assert_eq!(everyone.namespace_count, Some(2));
    assert_eq!(everyone.namespaces.len(), 2);
    assert_eq!(ctx.metrics.paused_namespaces.get(), 1);
}
