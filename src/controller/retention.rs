//! Audit retention: while this replica leads, delete audit events older than the retention
//! period, in batches, and record one audit event per run saying how many went.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::ControllerMetrics;
use crate::cluster::leader::Leadership;
use crate::store::{Namespace, NewAuditEvent, Store, StoreError};

#[derive(Clone, Debug)]
pub struct RetentionSettings {
    /// Events older than this go.
    pub retention: Duration,
    /// Time between runs.
    pub interval: Duration,
    /// Rows per delete statement (short transactions, no long lock on the table).
    pub batch: u64,
    /// Where the run's own audit event is recorded (the controller's namespace).
    pub namespace: Namespace,
    pub actor: String,
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRun {
    pub cutoff: DateTime<Utc>,
    pub removed: u64,
    /// The run stopped early because leadership ended.
    pub interrupted: bool,
}

/// The oldest time kept.
pub fn cutoff(now: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    now.checked_sub_signed(retention)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `90d` rather than humantime's calendar-ish `2months 29days 2h…` for whole days.
fn whole_days(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds > 0 && seconds.is_multiple_of(86_400) && duration.subsec_nanos() == 0 {
        format!("{}d", seconds / 86_400)
    } else {
        humantime::format_duration(duration).to_string()
    }
}

/// One run: delete in batches while `still_leading`, then record the run.
pub async fn run_once(
    store: &Store,
    settings: &RetentionSettings,
    now: DateTime<Utc>,
    still_leading: impl Fn() -> bool,
) -> Result<RetentionRun, StoreError> {
    let cutoff = cutoff(now, settings.retention);
    let mut run = RetentionRun {
        cutoff,
        removed: 0,
        interrupted: false,
    };
    loop {
        if !still_leading() {
            run.interrupted = true;
            break;
        }
        let deleted = store
            .purge_audit_events_before(cutoff, settings.batch)
            .await?;
        run.removed += deleted;
        if deleted < settings.batch {
            break;
        }
    }
    let event = NewAuditEvent {
        namespace: settings.namespace.clone(),
        occurred_at: Utc::now(),
        actor: settings.actor.clone(),
        actor_groups: Vec::new(),
        verb: "purge".into(),
        resource: "auditevents".into(),
        object_name: "retention".into(),
        object_uid: None,
        before_digest: None,
        after_digest: None,
        reason: Some(format!(
            "audit retention: removed {} events older than {}",
            run.removed,
            whole_days(settings.retention)
        )),
        request_id: None,
        client: None,
        details: Some(json!({
            "removed": run.removed,
            "cutoff": cutoff.to_rfc3339(),
            "interrupted": run.interrupted,
        })),
        idempotency_key: None,
    };
    store.record_audit_events(&[event]).await?;
    Ok(run)
}

/// Runs retention every `interval` while this replica leads, until `stop`.
pub async fn run(
    store: Store,
    settings: RetentionSettings,
    leadership: watch::Receiver<Leadership>,
    metrics: ControllerMetrics,
    stop: CancellationToken,
) {
    loop {
        if leadership.borrow().is_leader_now() {
            let leading = || leadership.borrow().is_leader_now();
            match run_once(&store, &settings, Utc::now(), leading).await {
                Ok(run) => {
                    metrics.audit_events_purged.inc_by(run.removed);
                    tracing::info!(
                    removed = run.removed,
                    cutoff = %run.cutoff,
                    interrupted = run.interrupted,
                    "audit retention run"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "audit retention run failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(settings.interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_now_minus_the_retention() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            cutoff(now, day * 90).to_rfc3339(),
            "2026-08-24T12:00:00+00:00"
        );
        assert_eq!(cutoff(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(whole_days(day * 90), "90d");
        assert_eq!(whole_days(Duration::from_secs(90)), "1m 30s");
    }
}
