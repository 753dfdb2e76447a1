//! Reconciling one CatalogSource: fetch → parse and validate → curate → diff → apply with its
//! audit events in one transaction → status and an Event. A failure keeps the last good assets,
//! says why in the status, and tells the caller whether a retry may help.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use k8s_openapi::{
    api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::Resource;
use tokio::sync::watch;

use super::{
    cpu::CpuLane,
    fetch::{Content, fetch},
    locks::KeyedLocks,
    metrics::{ControllerMetrics, FetchLabels, KindLabels},
    registry_sync,
};
use crate::{
    catalog::{AssetRecord, Diff, Limits, diff, document_digest, parse_document, validate_assets},
    crd::{CHANGE_REASON_ANNOTATION, CatalogSource, CatalogSourceStatus, RegistrySync},
    source::http::UrlFetcher,
    store::{ApplyOutcome, Namespace, NewAuditEvent, ObjectRecord, ObjectTable, Store},
};
use crate::{
    cluster::{Cluster, ClusterError, EventNote, leader::Leadership, policies::Policies},
    decisions::{
        conditions::{Outcome, READY, conditions, is_paused},
        curation::Curation,
        duration::parse_go_duration,
        policy::{self, EffectivePolicy},
    },
};

pub struct Context {
    pub store: Store,
    pub cluster: Arc<dyn Cluster>,
    /// Recorded as the actor of controller-driven changes.
    pub identity: String,
    pub limits: Limits,
    pub urls: UrlFetcher,
    pub metrics: ControllerMetrics,
    /// Fencing: when set, store and status writes go ahead only while this replica leads.
    pub leadership: Option<watch::Receiver<Leadership>>,
    /// One reconcile at a time per source, whether a watch or a job asked for it.
    pub source_locks: KeyedLocks,
    /// The CatalogPolicies in force and the global kill switch.
    pub policies: Policies,
    /// Where parsing, curation and diffing run: off the async workers, a bounded few at once.
    pub cpu: CpuLane,
}

impl Context {
    pub fn new(
        store: Store,
        cluster: Arc<dyn Cluster>,
        identity: String,
        urls: UrlFetcher,
    ) -> Self {
        Self {
            store,
            cluster,
            identity,
            limits: Limits::default(),
            urls,
            metrics: ControllerMetrics::default(),
            leadership: None,
            source_locks: KeyedLocks::default(),
            policies: Policies::default(),
            cpu: CpuLane::for_host(),
        }
    }

    /// Enforces `policies` (limits, pauses) instead of none.
    pub fn with_policies(self, policies: Policies) -> Self {
        Self { policies, ..self }
    }

    /// Counts into `metrics` (registered by the caller) instead of unregistered ones.
    pub fn with_metrics(self, metrics: ControllerMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Fences every write on `leadership` (see [`Context::ensure_leader`]).
    pub fn with_leadership(self, leadership: watch::Receiver<Leadership>) -> Self {
        Self {
            leadership: Some(leadership),
            ..self
        }
    }

    /// Fails unless this replica may write now (always, without leader election).
    pub fn ensure_leader(&self) -> Result<(), ReconcileError> {
        match &self.leadership {
            Some(leadership) if !leadership.borrow().is_leader_now() => {
                Err(ReconcileError::NotLeader)
            }
            _ => Ok(()),
        }
    }
}

/// Why a reconcile runs: a change or a timer (a watch), or a RefreshJob's attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Watch,
    Job(JobTrigger),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTrigger {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub attempt: i32,
    pub reason: Option<String>,
}

impl JobTrigger {
    /// `namespace/name`, as `status.lastHandledRefresh` records it.
    pub fn handle(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Keys every write of one attempt, so a re-run of the attempt writes nothing twice.
    fn key(&self, rest: &str) -> String {
        format!("refreshjob/{}/{}/{rest}", self.uid, self.attempt)
    }
}

/// How a reconcile ended, for the caller's requeue decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Applied(ApplyOutcome),
    /// Refreshed recently, spec already handled: nothing fetched.
    UpToDate,
    Suspended,
    /// A CatalogPolicy or the kill switch pauses refreshes; status says so.
    Paused,
    /// Status says why; `transient` failures are retried with backoff, others wait for a change.
    Failed {
        transient: bool,
        reason: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0} has no namespace or name")]
    Unidentified(String),
    #[error("invalid namespace: {0}")]
    Namespace(#[from] crate::store::ScopeError),
    #[error("writing status: {0}")]
    Status(#[from] ClusterError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("this replica is not the leader")]
    NotLeader,
}

struct Identity {
    namespace: Namespace,
    name: String,
    uid: String,
    generation: i64,
}

fn identity(source: &CatalogSource) -> Result<Identity, ReconcileError> {
    let meta = &source.metadata;
    let (Some(namespace), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
        return Err(ReconcileError::Unidentified("CatalogSource".into()));
    };
    Ok(Identity {
        namespace: Namespace::new(namespace)?,
        name,
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or(0),
    })
}

fn now() -> Time {
    Time(Timestamp::now())
}

pub(super) fn is_ready(status: &CatalogSourceStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True")
}

/// The source's refresh interval, if it has a valid one.
pub fn interval(source: &CatalogSource) -> Option<Duration> {
    source.spec.interval.as_deref().and_then(parse_go_duration)
}

/// Whether the periodic refresh is due at `now`.
pub fn interval_due(source: &CatalogSource, now: Timestamp) -> bool {
    let Some(every) = interval(source) else {
        return false;
    };
    let Some(last) = source
        .status
        .as_ref()
        .and_then(|s| s.last_refresh_time.as_ref())
    else {
        return true;
    };
    let elapsed = now.duration_since(last.0);
    elapsed.as_secs_f64() >= every.as_secs_f64()
}

/// Whether a watch-triggered reconcile has anything to do: the spec changed since the last
/// good refresh, the last one failed, the interval is due, or the content lives in a ConfigMap
/// (whose changes do not show in the source). Our own status writes come back through the
/// watch; this keeps them from costing a fetch.
pub fn needs_refresh(source: &CatalogSource, now: Timestamp) -> bool {
    let Some(status) = source.status.as_ref() else {
        return true;
    };
    source.spec.source.config_map.is_some()
        || status.observed_generation != source.metadata.generation
        || !is_ready(status)
        || is_paused(&status.conditions)
        || interval_due(source, now)
}

/// Whether the store holds as many of the source's assets as its status says it applied. A
/// store that cannot answer is trusted (the refresh that follows would fail on it anyway).
async fn store_holds_catalog(ctx: &Context, source: &CatalogSource, id: &Identity) -> bool {
    let Some(claimed) = source.status.as_ref().and_then(|s| s.asset_count) else {
        return true;
    };
    match ctx.store.source_asset_count(&id.namespace, &id.name).await {
        Ok(held) => held == claimed,
        Err(e) => {
            tracing::debug!(error = %e, "could not count the source's assets");
            true
        }
    }
}

/// The source as if never fetched: no ETag, no incremental registry state.
fn forget_fetch_state(source: &CatalogSource) -> CatalogSource {
    let mut source = source.clone();
    if let Some(status) = source.status.as_mut() {
        status.etag = None;
        status.registry_sync = None;
        status.content_digest = None;
    }
    source
}

/// A failure the reconcile turns into status: what to say and whether to retry.
struct Failure {
    transient: bool,
    reason: String,
    message: String,
}

impl From<crate::store::StoreError> for Failure {
    /// The database may come back: retry with backoff, keeping the last good assets.
    fn from(e: crate::store::StoreError) -> Self {
        Self {
            transient: true,
            reason: "StoreUnavailable".into(),
            message: e.to_string(),
        }
    }
}

impl From<super::cpu::CpuLaneError> for Failure {
    /// Cut short by shutdown: the next run (or the next leader) tries again.
    fn from(e: super::cpu::CpuLaneError) -> Self {
        Self {
            transient: true,
            reason: "ShuttingDown".into(),
            message: e.to_string(),
        }
    }
}

impl Failure {
    fn stalled(reason: &str, message: String) -> Self {
        Self {
            transient: false,
            reason: reason.into(),
            message,
        }
    }
}

/// Reconciles a source because something changed (or its interval came round).
pub async fn reconcile_source(
    ctx: &Context,
    source: &CatalogSource,
) -> Result<Report, ReconcileError> {
    reconcile_source_with(ctx, source, &Trigger::Watch).await
}

/// Reconciles a source for `trigger`. Holds the source's lock for the whole run.
pub async fn reconcile_source_with(
    ctx: &Context,
    source: &CatalogSource,
    trigger: &Trigger,
) -> Result<Report, ReconcileError> {
    reconcile(ctx, source, trigger, false).await
}

/// Fetches the source's content even if nothing in the source changed (something it reads
/// may have: standalone mode's folder). Unchanged content still writes nothing.
pub async fn refetch_source(
    ctx: &Context,
    source: &CatalogSource,
) -> Result<Report, ReconcileError> {
    reconcile(ctx, source, &Trigger::Watch, true).await
}

async fn reconcile(
    ctx: &Context,
    source: &CatalogSource,
    trigger: &Trigger,
    force: bool,
) -> Result<Report, ReconcileError> {
    let id = identity(source)?;
    let _guard = ctx
        .source_locks
        .lock(&format!("{}/{}", id.namespace, id.name))
        .await;
    if source.spec.suspend {
        return Ok(Report::Suspended);
    }
    let policy = ctx.policies.for_namespace(id.namespace.as_str());
    if let Some(by) = &policy.paused_by {
        return pause(ctx, source, &id, by).await;
    }
    // Limits the spec breaks by itself, checked before the up-to-date shortcut so a policy
    // that tightens shows on sources that were fine before.
    let violations = policy::check_spec(&policy, &source.spec);
    if !violations.is_empty() {
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        // Too many inline assets is a quota, as it is for fetched catalogs.
        let reason = if violations.iter().all(policy::Violation::is_quota) {
            "QuotaExceeded"
        } else {
            "PolicyViolation"
        };
        return fail(ctx, source, &id, Failure::stalled(reason, text.join("; "))).await;
    }
    if let Some(failure) = over_source_limit(ctx, source, &id, &policy).await {
        return fail(ctx, source, &id, failure).await;
    }
    let time = Timestamp::now();
    let mut source = std::borrow::Cow::Borrowed(source);
    if !store_holds_catalog(ctx, &source, &id).await {
        // The status claims assets the store does not hold (a new or restored database):
        // fetch everything again, without the ETag or incremental state that would make the
        // fetch a no-op.
        source = std::borrow::Cow::Owned(forget_fetch_state(&source));
    } else if *trigger == Trigger::Watch && !force && !needs_refresh(&source, time) {
        return Ok(Report::UpToDate);
    }
    let source = source.as_ref();
    let previous = source.status.clone().unwrap_or_default();
    let handled = match trigger {
        Trigger::Job(job) => Some(job.handle()),
        Trigger::Watch => previous.last_handled_refresh.clone(),
    };
    let (records, etag, registry_sync) = match desired_records(ctx, source, &policy).await {
        Ok(Desired::Records {
            records,
            etag,
            registry,
        }) => (records, etag, registry),
        Ok(Desired::Unchanged) => {
            // 304: the catalog is as last applied, and an unchanged remote writes nothing.
            // Only a job's request is acknowledged, so the source shows which job it handled.
            if matches!(trigger, Trigger::Job(_)) {
                let status = CatalogSourceStatus {
                    last_refresh_time: Some(now()),
                    last_handled_refresh: handled,
                    ..previous.clone()
                };
                publish(ctx, source, &id, &status).await?;
            }
            let unchanged = previous.asset_count.unwrap_or(0);
            return Ok(Report::Applied(ApplyOutcome {
                unchanged: usize::try_from(unchanged).unwrap_or(0),
                ..Default::default()
            }));
        }
        Err(failure) => return fail(ctx, source, &id, failure).await,
    };
    let stored = match ctx.store.source_digests(&id.namespace, &id.name).await {
        Ok(stored) => stored,
        Err(e) => return fail(ctx, source, &id, e.into()).await,
    };
    if policy.max_assets_per_namespace.is_some() || policy.max_assets_per_source.is_some() {
        let elsewhere = match ctx
            .store
            .assets_outside_source(&id.namespace, &id.name)
            .await
        {
            Ok(count) => count,
            Err(e) => return fail(ctx, source, &id, e.into()).await,
        };
        if let Some(violation) = policy::check_catalog_size(&policy, records.len(), elsewhere) {
            return fail(
                ctx,
                source,
                &id,
                Failure::stalled("QuotaExceeded", violation.to_string()),
            )
            .await;
        }
    }
    let count = records.len() as i64;
    let (content_digest, change) = match ctx
        .cpu
        .run(move || (document_digest(&records), diff(&stored, records)))
        .await
    {
        Ok(done) => done,
        Err(e) => return fail(ctx, source, &id, e.into()).await,
    };
    let already_current = change.is_empty()
        && *trigger == Trigger::Watch
        && is_ready(&previous)
        && !is_paused(&previous.conditions)
        && previous.observed_generation == Some(id.generation)
        && previous.content_digest.as_deref() == Some(content_digest.as_str())
        && !interval_due(source, time);
    if already_current {
        // A ConfigMap that did not change, seen again: nothing to write anywhere.
        return Ok(Report::Applied(ApplyOutcome {
            unchanged: change.unchanged,
            ..Default::default()
        }));
    }
    let events = audit_events(ctx, source, &id, &change, trigger);
    ctx.ensure_leader()?;
    let outcome = match ctx
        .store
        .apply_refresh(&id.namespace, &id.name, &change, &events)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return fail(ctx, source, &id, e.into()).await,
    };
    let message = if outcome.added + outcome.updated + outcome.removed == 0 {
        // Said plainly: "added 0" after an earlier refresh that added them reads as a loss.
        format!("{} (unchanged by the last refresh)", assets(count))
    } else {
        format!(
            "{} (added {}, updated {}, removed {}, unchanged {})",
            assets(count),
            outcome.added,
            outcome.updated,
            outcome.removed,
            outcome.unchanged
        )
    };
    let status = CatalogSourceStatus {
        observed_generation: Some(id.generation),
        conditions: conditions(
            &previous.conditions,
            &Outcome::Ready {
                message: message.clone(),
            },
            id.generation,
            now(),
        ),
        asset_count: Some(count),
        last_refresh_time: Some(now()),
        content_digest: Some(content_digest),
        etag,
        registry_sync,
        last_handled_refresh: handled,
        message: Some(message.clone()),
    };
    publish(ctx, source, &id, &status).await?;
    if !change.is_empty() {
        // Events are a courtesy; the audit trail is the record.
        let _ = ctx
            .cluster
            .record_event(&reference(source), EventNote::normal("Refreshed", message))
            .await;
    }
    Ok(Report::Applied(outcome))
}

fn reference(source: &CatalogSource) -> ObjectReference {
    source.object_ref(&())
}

enum Desired {
    Records {
        records: Vec<AssetRecord>,
        etag: Option<String>,
        /// Where an `mcpRegistry` source's next sync starts.
        registry: Option<RegistrySync>,
    },
    /// A URL source answered 304 to the last ETag.
    Unchanged,
}

fn source_kind(source: &CatalogSource) -> &'static str {
    let spec = &source.spec.source;
    if spec.inline.is_some() {
        "inline"
    } else if spec.config_map.is_some() {
        "configMap"
    } else if spec.mcp_registry.is_some() {
        "mcpRegistry"
    } else {
        "url"
    }
}

async fn desired_records(
    ctx: &Context,
    source: &CatalogSource,
    policy: &EffectivePolicy,
) -> Result<Desired, Failure> {
    // A policy's maxDocumentBytes caps every document, a URL's own maxSizeBytes included.
    let ceiling = policy
        .max_document_bytes
        .as_ref()
        .and_then(|limit| usize::try_from(limit.value).ok());
    let max_bytes = ceiling.map_or(ctx.limits.max_bytes, |c| c.min(ctx.limits.max_bytes));
    let fetched = match &source.spec.source.mcp_registry {
        Some(spec) => registry_sync::sync(ctx, source, spec, max_bytes).await,
        None => fetch(source, ctx.cluster.as_ref(), &ctx.urls, max_bytes, ceiling).await,
    };
    let kind = source_kind(source);
    let outcome = match &fetched {
        Ok(Content::NotModified) => "not_modified",
        Ok(_) => "fetched",
        Err(e) => e.reason(),
    };
    ctx.metrics
        .fetches
        .get_or_create(&FetchLabels {
            source: kind.into(),
            outcome: outcome.into(),
        })
        .inc();
    let (content, etag, registry) = match fetched {
        Ok(Content::NotModified) => return Ok(Desired::Unchanged),
        Ok(Content::Registry { bytes, state }) => (Unparsed::Document(bytes), None, Some(state)),
        Ok(Content::Inline(assets)) => (Unparsed::Inline(assets), None, None),
        Ok(Content::Document { bytes, etag }) => (Unparsed::Document(bytes), etag, None),
        Err(e) => {
            return Err(Failure {
                transient: e.is_transient(),
                reason: e.reason().into(),
                message: e.to_string(),
            });
        }
    };
    if let Unparsed::Document(bytes) = &content {
        ctx.metrics
            .fetch_bytes
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc_by(bytes.len() as u64);
    }
    let curation = Curation::compile(&source.spec)
        .map_err(|e| Failure::stalled("InvalidSpec", e.to_string()))?;
    let limits = Limits {
        max_bytes,
        ..ctx.limits
    };
    let records = ctx
        .cpu
        .run(move || content.assets(limits).map(|assets| curation.apply(assets)))
        .await??;
    Ok(Desired::Records {
        records,
        etag,
        registry,
    })
}

/// Fetched content before it is checked and turned into assets.
enum Unparsed {
    Document(Vec<u8>),
    Inline(Vec<crate::catalog::Asset>),
}

impl Unparsed {
    /// The assets, checked; a bad document or inline asset stalls the source.
    fn assets(self, limits: Limits) -> Result<Vec<crate::catalog::Asset>, Failure> {
        match self {
            Self::Document(bytes) => parse_document(&bytes, limits)
                .map_err(|e| Failure::stalled("InvalidCatalog", e.to_string())),
            Self::Inline(assets) => {
                validate_assets(&assets, "spec.source.inline.assets").map_err(|problems| {
                    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    Failure::stalled("InvalidCatalog", text.join("; "))
                })?;
                Ok(assets)
            }
        }
    }
}

/// A source created after its namespace reached `maxSources` (sources that were there when
/// the policy came keep their place: the oldest ones, by creation time, fill the quota).
async fn over_source_limit(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    policy: &EffectivePolicy,
) -> Option<Failure> {
    policy.max_sources.as_ref()?;
    let everything = kube::core::Selector::default();
    let siblings = match ctx
        .cluster
        .sources(id.namespace.as_str(), &everything)
        .await
    {
        Ok(siblings) => siblings,
        Err(e) => {
            return Some(Failure {
                transient: true,
                reason: "ClusterUnavailable".into(),
                message: e.to_string(),
            });
        }
    };
    let key = |s: &CatalogSource| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            s.metadata.name.clone().unwrap_or_default(),
        )
    };
    let mine = key(source);
    let older = siblings
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none() && key(s) < mine)
        .count();
    policy::check_new_source(policy, older)
        .map(|violation| Failure::stalled("QuotaExceeded", violation.to_string()))
}

/// Status (and an Event, once) for a paused source; nothing is fetched and the last good
/// catalog stays.
async fn pause(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    by: &str,
) -> Result<Report, ReconcileError> {
    ctx.metrics.paused_reconciles.inc();
    let previous = source.status.clone().unwrap_or_default();
    let message = if by == policy::GLOBAL_PAUSE {
        "refreshes are paused for every namespace (the controller's kill switch)".to_owned()
    } else {
        format!("refreshes are paused by CatalogPolicy {by:?}")
    };
    let status = CatalogSourceStatus {
        conditions: conditions(
            &previous.conditions,
            &Outcome::Paused {
                message: message.clone(),
            },
            id.generation,
            now(),
        ),
        message: Some(format!("{message}; serving the last good catalog")),
        ..previous.clone()
    };
    let first = !is_paused(&previous.conditions);
    publish(ctx, source, id, &status).await?;
    if first {
        let _ = ctx
            .cluster
            .record_event(&reference(source), EventNote::normal("Paused", message))
            .await;
    }
    Ok(Report::Paused)
}

/// Status and Event for a failure; the assets already in the store stay as they are.
async fn fail(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    failure: Failure,
) -> Result<Report, ReconcileError> {
    let previous = source.status.clone().unwrap_or_default();
    let outcome = if failure.transient {
        Outcome::Retrying {
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        }
    } else {
        Outcome::Stalled {
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        }
    };
    let status = CatalogSourceStatus {
        observed_generation: Some(id.generation),
        conditions: conditions(&previous.conditions, &outcome, id.generation, now()),
        message: Some(if previous.content_digest.is_some() {
            format!("{}; keeping the last good catalog", failure.message)
        } else {
            format!("{}; no catalog has been applied yet", failure.message)
        }),
        ..previous.clone()
    };
    let repeated = Some(&status) == source.status.as_ref();
    publish(ctx, source, id, &status).await?;
    if !repeated {
        let _ = ctx
            .cluster
            .record_event(
                &reference(source),
                EventNote::warning(&failure.reason, failure.message.clone()),
            )
            .await;
    }
    Ok(Report::Failed {
        transient: failure.transient,
        reason: failure.reason,
        message: failure.message,
    })
}

/// Writes a status to the cluster and the API's copy of the source to the store, whether or
/// not it changed (standalone mode's own conditions go through here).
pub async fn write_source_status(
    ctx: &Context,
    source: &CatalogSource,
    status: &CatalogSourceStatus,
) -> Result<(), ReconcileError> {
    write_status(ctx, source, &identity(source)?, status).await
}

/// Writes the status to the cluster and the API's copy of the source to the store. A status
/// equal to the one the source carries is not written again.
async fn publish(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    status: &CatalogSourceStatus,
) -> Result<(), ReconcileError> {
    if source.status.as_ref() == Some(status) {
        return Ok(());
    }
    write_status(ctx, source, id, status).await
}

async fn write_status(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    status: &CatalogSourceStatus,
) -> Result<(), ReconcileError> {
    ctx.ensure_leader()?;
    ctx.cluster.write_source_status(source, status).await?;
    ctx.store
        .upsert_source(&ObjectRecord {
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            uid: id.uid.clone(),
            generation: id.generation,
            spec: serde_json::to_value(&source.spec).unwrap_or_default(),
            status: serde_json::to_value(status).ok(),
            created_at: source
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
                .unwrap_or_else(Utc::now),
        })
        .await?;
    Ok(())
}

fn change_reason(source: &CatalogSource, generation: i64, trigger: &Trigger) -> String {
    if let Trigger::Job(job) = trigger
        && let Some(reason) = job.reason.as_ref().filter(|r| !r.trim().is_empty())
    {
        return reason.clone();
    }
    source
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_REASON_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| match trigger {
            Trigger::Job(job) => format!("RefreshJob {}", job.handle()),
            Trigger::Watch => format!("CatalogSource reconciled at generation {generation}"),
        })
}

fn audit_events(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    change: &Diff,
    trigger: &Trigger,
) -> Vec<NewAuditEvent> {
    let reason = change_reason(source, id.generation, trigger);
    let correlation = match trigger {
        Trigger::Job(job) => format!("refreshjob/{}/{}", job.uid, job.attempt),
        Trigger::Watch => uuid::Uuid::new_v4().to_string(),
    };
    let event = |verb: &str,
                 kind: crate::catalog::AssetKind,
                 name: &str,
                 version: &str,
                 before: Option<&str>,
                 after: Option<&str>| {
        let mut details = serde_json::json!({"source": id.name, "version": version});
        if let Trigger::Job(job) = trigger {
            details["refreshJob"] = job.name.clone().into();
        }
        NewAuditEvent {
            namespace: id.namespace.clone(),
            occurred_at: Utc::now(),
            actor: ctx.identity.clone(),
            actor_groups: Vec::new(),
            verb: verb.into(),
            resource: kind.plural().into(),
            object_name: name.into(),
            object_uid: Some(id.uid.clone()).filter(|u| !u.is_empty()),
            before_digest: before.map(str::to_owned),
            after_digest: after.map(str::to_owned),
            reason: Some(reason.clone()),
            request_id: Some(correlation.clone()),
            client: None,
            details: Some(details),
            idempotency_key: match trigger {
                Trigger::Job(job) => Some(job.key(&format!(
                    "{}/{verb}/{}/{name}/{version}",
                    id.name,
                    kind.as_str()
                ))),
                Trigger::Watch => None,
            },
        }
    };
    change
        .added
        .iter()
        .map(|r| {
            event(
                "create",
                r.kind(),
                r.name(),
                r.version(),
                None,
                Some(r.digest()),
            )
        })
        .chain(change.updated.iter().map(|u| {
            let r = &u.record;
            event(
                "update",
                r.kind(),
                r.name(),
                r.version(),
                Some(&u.previous_digest),
                Some(r.digest()),
            )
        }))
        .chain(change.removed.iter().map(|r| {
            event(
                "delete",
                r.key.kind,
                &r.key.name,
                &r.key.version,
                Some(&r.previous_digest),
                None,
            )
        }))
        .collect()
}

/// Removes a deleted source's assets (audited) and the API's copy of it.
pub async fn cleanup_source(
    ctx: &Context,
    source: &CatalogSource,
) -> Result<ApplyOutcome, ReconcileError> {
    let id = identity(source)?;
    let _guard = ctx
        .source_locks
        .lock(&format!("{}/{}", id.namespace, id.name))
        .await;
    let stored = ctx.store.source_digests(&id.namespace, &id.name).await?;
    let change = diff(&stored, Vec::new());
    let mut events = audit_events(ctx, source, &id, &change, &Trigger::Watch);
    let reason = format!("CatalogSource {} deleted", id.name);
    for event in &mut events {
        event.reason = Some(reason.clone());
    }
    ctx.ensure_leader()?;
    let outcome = ctx
        .store
        .apply_refresh(&id.namespace, &id.name, &change, &events)
        .await?;
    ctx.store
        .delete_object(ObjectTable::CatalogSources, &id.namespace, &id.name)
        .await?;
    if !change.is_empty() {
        let _ = ctx
            .cluster
            .record_event(
                &reference(source),
                EventNote::normal(
                    "AssetsRemoved",
                    format!("removed {} of the deleted source", assets(outcome.removed)),
                ),
            )
            .await;
    }
    Ok(outcome)
}
/// "1 asset", "3 assets".
fn assets<N: std::fmt::Display + PartialEq + From<u8>>(count: N) -> String {
    if count == N::from(1) {
        "1 asset".to_owned()
    } else {
        format!("{count} assets")
    }
}
