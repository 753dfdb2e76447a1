//! Audit retention on real PostgreSQL: events older than the cutoff go in batches, newer ones
//! stay, each run records how many it removed, and a run stops when leadership ends.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use crate::common::{audit, count, ns, postgres_store};
use chrono::Utc;
use curio::{
    controller::retention::{RetentionSettings, run_once},
    store::NewAuditEvent,
};

const DAY: Duration = Duration::from_secs(86_400);

fn aged(namespace: &str, days: i64, name: &str) -> NewAuditEvent {
    NewAuditEvent {
        occurred_at: Utc::now() - chrono::Duration::days(days),
        ..audit(&ns(namespace), "create", name)
    }
}

fn settings(batch: u64) -> RetentionSettings {
    RetentionSettings {
        retention: DAY * 90,
        interval: Duration::from_secs(3600),
        batch,
        namespace: ns("curio-system"),
        actor: "system:serviceaccount:curio-system:curio".into(),
    }
}

#[tokio::test]
async fn events_past_the_retention_go_and_the_run_is_recorded() {
    let (store, _) = postgres_store().await;
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(aged("team-a", 200 + i, &format!("old-a-{i}")));
    }
    events.push(aged("team-b", 91, "old-b"));
    events.push(aged("team-a", 89, "recent-a"));
    events.push(aged("team-b", 1, "recent-b"));
    store.record_audit_events(&events).await.unwrap();

    let run = run_once(&store, &settings(2), Utc::now(), || true)
        .await
        .unwrap();
    assert_eq!(run.removed, 6);
    assert!(!run.interrupted);
    let left: Vec<String> = {
        let rows = count(
            &store,
            "SELECT count(*) FROM audit_events WHERE object_name LIKE 'old-%'",
        )
        .await;
        assert_eq!(rows, 0);
        let scope = curio::store::NamespaceScope::new([ns("team-a"), ns("team-b")]).unwrap();
        store
            .list_audit_events(&scope, &Default::default(), None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.object_name)
            .collect()
    };
    assert_eq!(left, ["recent-a", "recent-b"]);

    // The run's own event, in the controller's namespace.
    let scope = curio::store::NamespaceScope::single(ns("curio-system"));
    let recorded = store
        .list_audit_events(&scope, &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    let event = &recorded[0];
    assert_eq!(
        (
            event.verb.as_str(),
            event.resource.as_str(),
            event.actor.as_str()
        ),
        (
            "purge",
            "auditevents",
            "system:serviceaccount:curio-system:curio"
        )
    );
    assert_eq!(event.details.as_ref().unwrap()["removed"], 6);
    assert!(
        event
            .reason
            .as_deref()
            .unwrap()
            .contains("removed 6 events older than 90d"),
        "{:?}",
        event.reason
    );

    // A second run finds nothing, and says so.
    let again = run_once(&store, &settings(2), Utc::now(), || true)
        .await
        .unwrap();
    assert_eq!(again.removed, 0);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE verb = 'purge'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_run_stops_between_batches_when_leadership_ends() {
    let (store, _) = postgres_store().await;
    let events: Vec<NewAuditEvent> = (0..10)
        .map(|i| aged("team-a", 100, &format!("old-{i}")))
        .collect();
    store.record_audit_events(&events).await.unwrap();
    let checks = AtomicUsize::new(0);
    // Leading for the first two batches only.
    let run = run_once(&store, &settings(3), Utc::now(), || {
        checks.fetch_add(1, Ordering::SeqCst) < 2
    })
    .await
    .unwrap();
    assert!(run.interrupted);
    assert_eq!(run.removed, 6);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE object_name LIKE 'old-%'"
        )
        .await,
        4
    );
}
