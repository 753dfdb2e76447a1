//! Running one RefreshJob attempt: `Pending → Running → Succeeded | Failed`, retries up to
//! `backoffLimit`, TTL deletion. Every write of an attempt is keyed by the job's uid and the
//! attempt number, so an attempt that a dying leader left `Running` can be run again by the
//! next leader without writing anything twice.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{Resource, core::Selector};

use super::reconcile::{
    Context, JobTrigger, ReconcileError, Report, Trigger, reconcile_source_with,
};
use crate::{
    cluster::{ClusterError, EventNote},
    crd::{CatalogSource, JobPhase, RefreshJob, RefreshJobStatus},
    decisions::{
        backoff::retry_delay,
        job_plan::{JobPlan, backoff_limit, plan},
    },
    store::{ApplyOutcome, Namespace, NewAuditEvent, ObjectRecord, ObjectTable},
};

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The wait before the first retry; doubles per attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(300),
        }
    }
}

/// How an attempt ended, for the pool's retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Succeeded(ApplyOutcome),
    /// The attempt failed and retries remain: run again after the delay.
    RetryAfter(Duration),
    Failed(String),
    /// Nothing to run: the job is gone, finished, or expired and deleted.
    Idle,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Reconcile(#[from] ReconcileError),
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Runs the job `namespace/name` as it is now in the cluster.
pub async fn run_job(
    ctx: &Context,
    settings: &JobSettings,
    namespace: &str,
    name: &str,
) -> Result<JobResult, JobError> {
    let Some(job) = ctx.cluster.job(namespace, name).await? else {
        return Ok(JobResult::Idle);
    };
    let attempt = match plan(&job, Timestamp::now()) {
        JobPlan::Start { attempt } => attempt,
        JobPlan::Resume { attempt } => attempt,
        JobPlan::Expired => {
            expire(ctx, &job).await?;
            return Ok(JobResult::Idle);
        }
        JobPlan::Finished { .. } => return Ok(JobResult::Idle),
    };
    let trigger = JobTrigger {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        attempt,
        reason: job.spec.reason.clone(),
    };
    let job = adopt(ctx, job).await?;
    let previous = job.status.clone().unwrap_or_default();
    let running = RefreshJobStatus {
        phase: Some(JobPhase::Running),
        attempts: attempt,
        start_time: previous.start_time.clone().or_else(|| Some(now())),
        message: Some(format!(
            "attempt {attempt} of {} running",
            backoff_limit(&job) + 1
        )),
        ..previous.clone()
    };
    let job = if previous.phase == Some(JobPhase::Running) && previous.attempts == attempt {
        job
    } else {
        write_status(ctx, &job, &running).await?
    };
    record_phase(ctx, &job, &trigger, "start", &running, None).await?;

    let started = std::time::Instant::now();
    let outcome = refresh_targets(ctx, &job, &trigger).await;
    ctx.metrics
        .job_duration
        .get_or_create(&super::metrics::NamespaceLabels {
            namespace: namespace.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());

    let (status, verb, result) = match outcome {
        Ok(totals) => (
            RefreshJobStatus {
                phase: Some(JobPhase::Succeeded),
                completion_time: Some(now()),
                added: Some(totals.added as i64),
                updated: Some(totals.updated as i64),
                removed: Some(totals.removed as i64),
                unchanged: Some(totals.unchanged as i64),
                message: Some(format!(
                    "refreshed on attempt {attempt}: added {}, updated {}, removed {}, unchanged {}",
                    totals.added, totals.updated, totals.removed, totals.unchanged
                )),
                ..running.clone()
            },
            "succeed",
            JobResult::Succeeded(totals),
        ),
        Err(AttemptFailure::NotLeader) => return Err(ReconcileError::NotLeader.into()),
        Err(AttemptFailure::Failed(message)) if attempt > backoff_limit(&job) => (
            RefreshJobStatus {
                phase: Some(JobPhase::Failed),
                completion_time: Some(now()),
                message: Some(format!("failed after {attempt} attempts: {message}")),
                ..running.clone()
            },
            "fail",
            JobResult::Failed(message),
        ),
        Err(AttemptFailure::Failed(message)) => {
            let delay = retry_delay(
                u32::try_from(attempt).unwrap_or(1),
                settings.retry_base,
                settings.retry_cap,
            );
            (
                RefreshJobStatus {
                    phase: Some(JobPhase::Pending),
                    message: Some(format!(
                        "attempt {attempt} failed: {message}; retrying in {}s",
                        delay.as_secs()
                    )),
                    ..running.clone()
                },
                "retry",
                JobResult::RetryAfter(delay),
            )
        }
    };
    let outcome_label = match &result {
        JobResult::Succeeded(_) => "succeeded",
        JobResult::RetryAfter(_) => "retrying",
        _ => "failed",
    };
    ctx.metrics
        .job_outcomes
        .get_or_create(&super::metrics::JobOutcomeLabels {
            namespace: namespace.to_owned(),
            outcome: outcome_label.into(),
        })
        .inc();
    // The phase's audit row goes first: if the status write below is lost, the re-run finds
    // the row by its key and does not write it twice.
    record_phase(ctx, &job, &trigger, verb, &status, None).await?;
    let job = write_status(ctx, &job, &status).await?;
    let note = status.message.clone().unwrap_or_default();
    let event = match &result {
        JobResult::Succeeded(_) => EventNote::normal("Succeeded", note),
        JobResult::RetryAfter(_) => EventNote::warning("AttemptFailed", note),
        _ => EventNote::warning("Failed", note),
    };
    let _ = ctx.cluster.record_event(&job.object_ref(&()), event).await;
    Ok(result)
}

#[derive(Debug)]
enum AttemptFailure {
    NotLeader,
    Failed(String),
}

impl From<ReconcileError> for AttemptFailure {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::NotLeader => Self::NotLeader,
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<ClusterError> for AttemptFailure {
    fn from(e: ClusterError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Refreshes every source the job names, one at a time, and adds up what changed.
async fn refresh_targets(
    ctx: &Context,
    job: &RefreshJob,
    trigger: &JobTrigger,
) -> Result<ApplyOutcome, AttemptFailure> {
    let namespace = trigger.namespace.as_str();
    let sources: Vec<CatalogSource> = match (&job.spec.source_ref, &job.spec.selector) {
        (Some(reference), _) => {
            let source = ctx
                .cluster
                .source(namespace, &reference.name)
                .await?
                .ok_or_else(|| {
                    AttemptFailure::Failed(format!(
                        "CatalogSource {namespace}/{} not found",
                        reference.name
                    ))
                })?;
            vec![source]
        }
        (None, Some(selector)) => {
            let selector = Selector::try_from(selector.clone())
                .map_err(|e| AttemptFailure::Failed(format!("invalid selector: {e}")))?;
            ctx.cluster.sources(namespace, &selector).await?
        }
        (None, None) => {
            return Err(AttemptFailure::Failed(
                "the job names neither sourceRef nor selector".into(),
            ));
        }
    };
    let mut totals = ApplyOutcome::default();
    let mut failures = Vec::new();
    for source in sources {
        let name = source.metadata.name.clone().unwrap_or_default();
        match reconcile_source_with(ctx, &source, &Trigger::Job(trigger.clone())).await? {
            Report::Applied(outcome) => {
                totals.added += outcome.added;
                totals.updated += outcome.updated;
                totals.removed += outcome.removed;
                totals.unchanged += outcome.unchanged;
                totals.audit_events += outcome.audit_events;
            }
            Report::Suspended | Report::UpToDate => {}
            // Paused after the pool let the job start: retried like a failure, so the
            // request is not lost.
            Report::Paused => failures.push(format!("{name}: refreshes are paused by policy")),
            Report::Failed { message, .. } => failures.push(format!("{name}: {message}")),
        }
    }
    if failures.is_empty() {
        Ok(totals)
    } else {
        Err(AttemptFailure::Failed(failures.join("; ")))
    }
}

/// Makes the job's source its owner, so the job is garbage-collected with the source; done
/// before the attempt's status writes, which are guarded by the resourceVersion it changes.
async fn adopt(ctx: &Context, job: RefreshJob) -> Result<RefreshJob, JobError> {
    let (Some(reference), None) = (&job.spec.source_ref, &job.metadata.owner_references) else {
        return Ok(job);
    };
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let Some(source) = ctx.cluster.source(&namespace, &reference.name).await? else {
        return Ok(job);
    };
    ctx.ensure_leader()?;
    ctx.cluster.adopt_job(&job, &source).await?;
    let name = job.metadata.name.clone().unwrap_or_default();
    Ok(ctx.cluster.job(&namespace, &name).await?.unwrap_or(job))
}

async fn write_status(
    ctx: &Context,
    job: &RefreshJob,
    status: &RefreshJobStatus,
) -> Result<RefreshJob, JobError> {
    ctx.ensure_leader()?;
    let written = ctx.cluster.write_job_status(job, status).await?;
    ctx.store.upsert_job(&job_record(&written)?).await?;
    Ok(written)
}

fn job_record(job: &RefreshJob) -> Result<ObjectRecord, JobError> {
    let meta = &job.metadata;
    Ok(ObjectRecord {
        namespace: Namespace::new(meta.namespace.clone().unwrap_or_default())
            .map_err(ReconcileError::from)?,
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or(0),
        spec: serde_json::to_value(&job.spec).unwrap_or_default(),
        status: job
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok()),
        created_at: meta
            .creation_timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
            .unwrap_or_else(Utc::now),
    })
}

/// One audit row per phase change of an attempt, keyed so it is written once.
async fn record_phase(
    ctx: &Context,
    job: &RefreshJob,
    trigger: &JobTrigger,
    verb: &str,
    status: &RefreshJobStatus,
    reason: Option<String>,
) -> Result<(), JobError> {
    let namespace = Namespace::new(trigger.namespace.clone()).map_err(ReconcileError::from)?;
    let event = NewAuditEvent {
        namespace,
        occurred_at: Utc::now(),
        actor: ctx.identity.clone(),
        actor_groups: Vec::new(),
        verb: verb.into(),
        resource: "refreshjobs".into(),
        object_name: trigger.name.clone(),
        object_uid: job.metadata.uid.clone(),
        before_digest: None,
        after_digest: None,
        reason: reason.or_else(|| trigger.reason.clone()),
        request_id: Some(format!("refreshjob/{}/{}", trigger.uid, trigger.attempt)),
        client: None,
        details: Some(serde_json::json!({
            "attempt": trigger.attempt,
            "phase": status.phase,
            "message": status.message,
        })),
        idempotency_key: Some(format!(
            "refreshjob/{}/{}/{verb}",
            trigger.uid, trigger.attempt
        )),
    };
    ctx.ensure_leader()?;
    ctx.store.record_audit_events(&[event]).await?;
    Ok(())
}

/// Deletes a finished job whose TTL ran out, and the API's copy of it.
pub async fn expire(ctx: &Context, job: &RefreshJob) -> Result<(), JobError> {
    ctx.ensure_leader()?;
    ctx.cluster.delete_job(job).await?;
    let namespace = Namespace::new(job.metadata.namespace.clone().unwrap_or_default())
        .map_err(ReconcileError::from)?;
    ctx.store
        .delete_object(
            ObjectTable::RefreshJobs,
            &namespace,
            job.metadata.name.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok(())
}
