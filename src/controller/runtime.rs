//! The kube-runtime edge: watches CatalogSources (and the ConfigMaps they read) and
//! RefreshJobs, and drives the reconcile and job logic while this replica leads.
//!
//! One *term* per leadership: the controllers and the job pool start when the Lease is won
//! and are dropped at once when it is lost (fail-stop; writes also check the Lease deadline).
//! On shutdown the controllers stop taking work, running jobs get `drain_timeout` to finish,
//! and whatever is left stays in its RefreshJob's status for the next leader.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, future::join_all};
use k8s_openapi::{api::core::v1::ConfigMap, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        finalizer::{Event as Finalized, finalizer},
        reflector::{self, ObjectRef},
        watcher,
    },
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    job::{JobResult, JobSettings, expire, run_job},
    metrics::{KindLabels, NamespaceLabels, ReconcileLabels},
    policy_status,
    pool::{GateFn, JobPool},
    reconcile::{Context, ReconcileError, Report, cleanup_source, interval, reconcile_source},
};
use crate::{
    cluster::leader::Leadership,
    crd::{CatalogSource, FINALIZER, RefreshJob},
    decisions::{
        backoff::retry_delay,
        fairness::Gate,
        job_plan::{JobPlan, plan},
        policy::refresh_interval,
    },
};

/// How often policy statuses are brought up to date (and on every policy change).
const POLICY_STATUS_PERIOD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// CatalogSources reconciled at once.
    pub source_concurrency: u16,
    pub jobs_global: usize,
    pub jobs_per_namespace: usize,
    pub job: JobSettings,
    /// Backoff for failed source reconciles.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long running jobs may take to finish on shutdown.
    pub drain_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            source_concurrency: 8,
            jobs_global: 4,
            jobs_per_namespace: 2,
            job: JobSettings::default(),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Reconcile(#[from] ReconcileError),
    #[error("{reason}: {message}")]
    Retry { reason: String, message: String },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<RuntimeError>>),
    #[error("job: {0}")]
    Job(#[from] super::job::JobError),
}

/// A job's place in the pool: (namespace, name).
type JobKey = (String, String);

/// What the controllers of one term share.
struct Term {
    client: Client,
    ctx: Arc<Context>,
    settings: Settings,
    /// Failures in a row per source, for the retry delay.
    failures: Mutex<HashMap<ObjectRef<CatalogSource>, u32>>,
    pool: JobPool<JobKey>,
    /// Jobs queued, running or waiting to retry in this term: submitted once.
    in_flight: Mutex<HashSet<JobKey>>,
    /// Cancelled when the term ends; retry timers stop with it.
    cancel: CancellationToken,
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain values; a panic elsewhere leaves them usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the controllers whenever `leadership` says this replica leads, until `shutdown`.
pub async fn run(
    client: Client,
    ctx: Arc<Context>,
    mut leadership: watch::Receiver<Leadership>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = until_leader(&mut leadership) => {}
            () = &mut shutdown => return,
        }
        tracing::info!("leading: starting the controllers");
        let stop = CancellationToken::new();
        let term = run_term(client.clone(), ctx.clone(), settings.clone(), stop.clone());
        tokio::pin!(term);
        tokio::select! {
            () = &mut term => {}
            () = until_lost(&mut leadership) => {
                // Fail-stop: drop every reconcile and job now.
                tracing::warn!("leadership lost: stopping all work");
                ctx.metrics.jobs_running.set(0);
                continue;
            }
            () = &mut shutdown => {
                stop.cancel();
                tokio::select! {
                    () = &mut term => {}
                    () = until_lost(&mut leadership) => {}
                }
                return;
            }
        }
    }
}

async fn until_leader(leadership: &mut watch::Receiver<Leadership>) {
    loop {
        if leadership.borrow_and_update().is_leader_now() {
            return;
        }
        if leadership.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves when the published leadership ends, or its deadline passes without a renewal.
async fn until_lost(leadership: &mut watch::Receiver<Leadership>) {
    loop {
        let now = *leadership.borrow_and_update();
        let Some(deadline) = now.deadline.filter(|_| now.is_leader_now()) else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            changed = leadership.changed() => if changed.is_err() { return },
        }
    }
}

/// One term: the source and job controllers and the job pool, until `stop`.
async fn run_term(client: Client, ctx: Arc<Context>, settings: Settings, stop: CancellationToken) {
    // Policies decide what may run: nothing starts before they have been read once.
    while !ctx.policies.is_ready() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = stop.cancelled() => return,
        }
    }
    let gate_policies = ctx.policies.clone();
    let gate: GateFn = Arc::new(move |namespace: &str| {
        let policy = gate_policies.for_namespace(namespace);
        Gate {
            paused: policy.paused_by.is_some(),
            limit: policy
                .max_concurrent_refresh_jobs
                .and_then(|limit| usize::try_from(limit.value).ok()),
        }
    });
    let term = Arc::new(Term {
        pool: JobPool::new(settings.jobs_global, settings.jobs_per_namespace).with_gate(gate),
        client: client.clone(),
        ctx,
        settings: settings.clone(),
        failures: Mutex::new(HashMap::new()),
        in_flight: Mutex::new(HashSet::new()),
        cancel: CancellationToken::new(),
    });
    // Ends the term's timers however the term ends, dropped included.
    let _timers = term.cancel.clone().drop_guard();
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    let mut controllers = Vec::new();
    {
        let ctx = term.ctx.clone();
        let stop = stop.clone();
        controllers.push(
            async move { policy_status::run(&ctx, POLICY_STATUS_PERIOD, stop).await }.boxed(),
        );
    }
    for scope in &scopes {
        controllers.push(source_controller(term.clone(), scope.clone(), stop.clone()).boxed());
        controllers.push(job_controller(term.clone(), scope.clone(), stop.clone()).boxed());
    }
    let pool = {
        let term = term.clone();
        let stop = stop.clone();
        async move {
            let runner_term = term.clone();
            let drain = term.settings.drain_timeout;
            let run = term.pool.run(
                move |namespace, key| run_pooled(runner_term.clone(), namespace, key),
                stop.clone().cancelled_owned(),
            );
            tokio::pin!(run);
            tokio::select! {
                () = &mut run => {}
                () = async { stop.cancelled().await; tokio::time::sleep(drain).await } => {
                    tracing::warn!(timeout = ?drain, "jobs still running at shutdown are left for the next leader");
                }
            }
        }
    };
    futures::join!(join_all(controllers), pool);
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn source_controller(term: Arc<Term>, namespace: Option<String>, stop: CancellationToken) {
    let sources: Api<CatalogSource> = api(&term.client, namespace.as_deref());
    let config_maps: Api<PartialObjectMeta<ConfigMap>> = api(&term.client, namespace.as_deref());
    // The controller's own reflector, so what it caches can be trimmed (`trim_source`).
    let (reader, writer) = reflector::store();
    // Small list pages: each page's objects are whole (assets and all) until trimmed, so the
    // page size bounds the controller's peak memory at start. (Not `any_semantic`: a list
    // from the watch cache comes in one piece whatever the page size.)
    let trigger = watcher(sources, watcher::Config::default().page_size(SOURCE_PAGE))
        .default_backoff()
        .modify(trim_source)
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream(trigger, reader)
        .with_config(controller::Config::default().concurrency(term.settings.source_concurrency));
    let reader = controller.store();
    controller
        // A ConfigMap's change re-reconciles the sources that read it; metadata is enough
        // to notice the change, and keeps ConfigMap contents out of memory.
        .watches(
            config_maps,
            watcher::Config::default(),
            move |config_map: PartialObjectMeta<ConfigMap>| {
                let namespace = config_map.namespace();
                let name = config_map.name_any();
                reader
                    .state()
                    .into_iter()
                    .filter(|s| s.namespace() == namespace)
                    .filter(|s| {
                        s.spec.source.config_map.as_ref().map(|c| c.name.as_str())
                            == Some(name.as_str())
                    })
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        // A policy or namespace label change may pause, resume or limit any source: look at
        // all of them again (the controller's concurrency paces the ones that refetch).
        .reconcile_all_on(changes(term.ctx.policies.changes()))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile_source_object, source_error_policy, term.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "CatalogSource reconcile did not complete");
            }
        })
        .await;
}

/// One item per change `receiver` is told of (not its current value).
fn changes(receiver: watch::Receiver<u64>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok().map(|()| ((), receiver))
    })
}

/// CatalogSources per list page when the controller (re)lists them.
const SOURCE_PAGE: u32 = 50;

/// The annotation `kubectl apply` keeps the whole last-applied object in: a second copy of
/// every inline catalog, which no reconcile reads.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the controller keeps of a CatalogSource between reconciles: no managed fields, no
/// last-applied copy, and no inline assets (a reconcile reads the whole object:
/// [`whole_source`]). With 1,000 sources of 50 inline assets, those are most of the memory.
fn trim_source(source: &mut CatalogSource) {
    trim_metadata(&mut source.metadata);
    if let Some(inline) = source.spec.source.inline.as_mut() {
        inline.assets = Vec::new();
    }
}

fn trim_metadata(metadata: &mut kube::core::ObjectMeta) {
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The object a reconcile works on: the cached one, or for an inline source (cached without
/// its assets) the whole object from the API server. `None`: it is gone (its deletion is on
/// its way to the cache).
async fn whole_source(
    client: &Client,
    cached: Arc<CatalogSource>,
) -> Result<Option<Arc<CatalogSource>>, RuntimeError> {
    if cached.spec.source.inline.is_none() {
        return Ok(Some(cached));
    }
    let api: Api<CatalogSource> = api(client, cached.namespace().as_deref());
    match api.get_opt(&cached.name_any()).await {
        Ok(found) => Ok(found.map(Arc::new)),
        Err(e) => Err(RuntimeError::Retry {
            reason: "APIUnavailable".into(),
            message: format!("reading the source from the API server: {e}"),
        }),
    }
}

async fn job_controller(term: Arc<Term>, namespace: Option<String>, stop: CancellationToken) {
    let jobs: Api<RefreshJob> = api(&term.client, namespace.as_deref());
    let (reader, writer) = reflector::store();
    let trigger = watcher(jobs, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|job: &mut RefreshJob| trim_metadata(&mut job.metadata))
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(trigger, reader)
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile_job_object, job_error_policy, term.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "RefreshJob reconcile did not complete");
            }
        })
        .await;
}

fn record(term: &Term, kind: &str, result: &str, started: Instant) {
    let metrics = &term.ctx.metrics;
    metrics
        .reconciles
        .get_or_create(&ReconcileLabels {
            kind: kind.into(),
            result: result.into(),
        })
        .inc();
    metrics
        .reconcile_duration
        .get_or_create(&KindLabels { kind: kind.into() })
        .observe(started.elapsed().as_secs_f64());
}

#[tracing::instrument(skip_all, fields(kind = "CatalogSource", namespace = source.namespace().unwrap_or_default(), object = source.name_any()))]
async fn reconcile_source_object(
    source: Arc<CatalogSource>,
    term: Arc<Term>,
) -> Result<Action, RuntimeError> {
    if term.ctx.ensure_leader().is_err() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = match whole_source(&term.client, source.clone()).await {
        Ok(Some(whole)) => reconcile_with_finalizer(&term.client, &term.ctx, whole).await,
        Ok(None) => Ok(Action::await_change()),
        Err(e) => Err(e),
    };
    let label = match &result {
        Ok(_) => "success",
        Err(RuntimeError::Reconcile(ReconcileError::NotLeader)) => "not_leader",
        Err(_) => "error",
    };
    record(&term, "CatalogSource", label, started);
    if result.is_ok() {
        guard(&term.failures).remove(&ObjectRef::from_obj(&*source));
    }
    match result {
        Err(RuntimeError::Reconcile(ReconcileError::NotLeader)) => Ok(Action::await_change()),
        other => other,
    }
}

/// One CatalogSource reconcile under the [`FINALIZER`]: added first, so a deletion always
/// waits for the source's assets to be removed.
pub async fn reconcile_with_finalizer(
    client: &Client,
    ctx: &Context,
    source: Arc<CatalogSource>,
) -> Result<Action, RuntimeError> {
    let api: Api<CatalogSource> = api(client, source.namespace().as_deref());
    finalizer(&api, FINALIZER, source, |event| async move {
        match event {
            Finalized::Apply(source) => apply_source(ctx, &source).await,
            Finalized::Cleanup(source) => {
                let outcome = cleanup_source(ctx, &source).await?;
                tracing::info!(
                    removed = outcome.removed,
                    "removed the deleted source's assets"
                );
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(inner)
        | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner,
        other => RuntimeError::Finalizer(Box::new(other)),
    })
}

/// The next reconcile: at the interval when the source has one, else on the next change.
async fn apply_source(ctx: &Context, source: &CatalogSource) -> Result<Action, RuntimeError> {
    let report = reconcile_source(ctx, source).await?;
    let policy = ctx
        .policies
        .for_namespace(&source.namespace().unwrap_or_default());
    let every = refresh_interval(&policy, interval(source));
    Ok(match report {
        Report::Applied(_) => every.map_or_else(Action::await_change, Action::requeue),
        Report::UpToDate => every.map_or_else(Action::await_change, |every| {
            Action::requeue(time_until_due(source, every))
        }),
        // A policy change (resume) triggers the next look.
        Report::Suspended | Report::Paused => Action::await_change(),
        Report::Failed {
            transient: true,
            reason,
            message,
        } => return Err(RuntimeError::Retry { reason, message }),
        // Stalled: the spec or its ConfigMap must change first (or the interval come round).
        Report::Failed { .. } => every.map_or_else(Action::await_change, Action::requeue),
    })
}

fn time_until_due(source: &CatalogSource, every: Duration) -> Duration {
    let elapsed = source
        .status
        .as_ref()
        .and_then(|s| s.last_refresh_time.as_ref())
        .map(|t| Timestamp::now().duration_since(t.0))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(every);
    every.saturating_sub(elapsed).max(Duration::from_secs(1))
}

fn source_error_policy(
    source: Arc<CatalogSource>,
    error: &RuntimeError,
    term: Arc<Term>,
) -> Action {
    let failures = {
        let mut failures = guard(&term.failures);
        let count = failures.entry(ObjectRef::from_obj(&*source)).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = retry_delay(failures, term.settings.retry_base, term.settings.retry_cap);
    tracing::warn!(
        namespace = source.namespace().unwrap_or_default(),
        name = source.name_any(),
        error = %error,
        retry_in = ?delay,
        "CatalogSource reconcile failed"
    );
    Action::requeue(delay)
}

#[tracing::instrument(skip_all, fields(kind = "RefreshJob", namespace = job.namespace().unwrap_or_default(), object = job.name_any()))]
async fn reconcile_job_object(
    job: Arc<RefreshJob>,
    term: Arc<Term>,
) -> Result<Action, RuntimeError> {
    if term.ctx.ensure_leader().is_err() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let namespace = job.namespace().unwrap_or_default();
    let key = (namespace.clone(), job.name_any());
    let action = match plan(&job, Timestamp::now()) {
        JobPlan::Start { .. } | JobPlan::Resume { .. } => {
            submit(&term, key);
            Action::await_change()
        }
        JobPlan::Finished { expires_in } => {
            expires_in.map_or_else(Action::await_change, Action::requeue)
        }
        JobPlan::Expired => {
            expire(&term.ctx, &job).await?;
            tracing::info!("deleted the finished job after its TTL");
            Action::await_change()
        }
    };
    record(&term, "RefreshJob", "success", started);
    Ok(action)
}

fn job_error_policy(_job: Arc<RefreshJob>, error: &RuntimeError, term: Arc<Term>) -> Action {
    tracing::warn!(error = %error, "RefreshJob reconcile failed");
    Action::requeue(term.settings.retry_base)
}

/// Queues a job unless this term already has it.
fn submit(term: &Term, key: JobKey) {
    if !guard(&term.in_flight).insert(key.clone()) {
        return;
    }
    term.ctx
        .metrics
        .jobs_queued
        .get_or_create(&NamespaceLabels {
            namespace: key.0.clone(),
        })
        .inc();
    term.pool.submit(&key.0.clone(), key);
}

/// Puts a job back in the queue after `delay`, unless the term ends first.
fn resubmit_after(term: Arc<Term>, key: JobKey, delay: Duration) {
    let cancel = term.cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(delay) => {
                guard(&term.in_flight).remove(&key);
                submit(&term, key);
            }
            () = cancel.cancelled() => {}
        }
    });
}

/// One run of a pooled job.
#[tracing::instrument(skip_all, fields(kind = "RefreshJob", namespace = %key.0, object = %key.1))]
async fn run_pooled(term: Arc<Term>, namespace: String, key: JobKey) {
    let metrics = &term.ctx.metrics;
    metrics
        .jobs_queued
        .get_or_create(&NamespaceLabels {
            namespace: namespace.clone(),
        })
        .dec();
    metrics.jobs_running.inc();
    let result = run_job(&term.ctx, &term.settings.job, &key.0, &key.1).await;
    metrics.jobs_running.dec();
    match result {
        Ok(JobResult::RetryAfter(delay)) => {
            tracing::info!(namespace = %key.0, name = %key.1, retry_in = ?delay, "RefreshJob attempt failed; retrying");
            resubmit_after(term.clone(), key, delay);
        }
        Ok(JobResult::Succeeded(_) | JobResult::Failed(_) | JobResult::Idle) => {
            guard(&term.in_flight).remove(&key);
        }
        Err(super::job::JobError::Reconcile(ReconcileError::NotLeader)) => {}
        Err(e) => {
            // The Kubernetes API or the database failed mid-attempt; the attempt is re-run
            // (its writes are keyed, so nothing is written twice).
            tracing::warn!(namespace = %key.0, name = %key.1, error = %e, "RefreshJob attempt interrupted; re-running");
            let delay = term.settings.job.retry_base;
            resubmit_after(term.clone(), key, delay);
        }
    }
}
