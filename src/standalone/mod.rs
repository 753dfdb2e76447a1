//! Standalone mode: the whole of Curio in one process, no cluster. A folder of manifests
//! stands in for the API server ([`MemoryCluster`]); the same reconcile and job code as
//! `curio controller` fills the store; the same API router serves it, with static tokens and
//! RBAC from the folder.

pub mod folder;
pub mod kubeconfig;
mod locate;
pub mod lock;
pub mod manifests;
pub mod serve;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::Path,
    sync::{Arc, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use tokio::time::Instant;

use crate::{
    access::authz::{
        Attributes, Authorizer, AuthzError, Decision, StaticRbac, manifests::add_document,
    },
    api::notices::{Notice, Notices},
    cluster::{
        memory::MemoryCluster,
        policies::{Policies, PolicyView, StaticPolicies},
    },
    controller::{
        Context, JobResult, JobSettings, Report, cleanup_source, interval, refetch_source, run_job,
        write_source_status,
    },
    crd::{CatalogPolicy, CatalogSource, RefreshJob},
    decisions::{
        backoff::retry_delay,
        conditions::ACCEPTED,
        job_plan::{JobPlan, plan},
    },
    store::{Namespace, ObjectTable},
};
use folder::{FileProblem, Folder, FolderError};
use manifests::{Identity, Object};

/// RBAC that can be replaced while requests are being served.
#[derive(Default)]
pub struct SharedRbac {
    current: RwLock<Arc<StaticRbac>>,
}

impl SharedRbac {
    pub fn replace(&self, rbac: StaticRbac) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rbac);
    }

    pub fn current(&self) -> Arc<StaticRbac> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait]
impl Authorizer for SharedRbac {
    async fn authorize(&self, attributes: &Attributes) -> Result<Decision, AuthzError> {
        Ok(self.current().decide(attributes))
    }
}

/// The latest sync's problems, for the API's discovery documents.
pub struct SharedProblems {
    root: std::path::PathBuf,
    current: RwLock<Vec<FileProblem>>,
}

impl SharedProblems {
    fn replace(&self, problems: Vec<FileProblem>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = problems;
    }
}

impl Notices for SharedProblems {
    fn in_namespace(&self, namespace: &str) -> Vec<Notice> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|p| p.object.as_ref().is_some_and(|o| o.namespace == namespace))
            .map(|p| Notice {
                file: p
                    .path
                    .strip_prefix(&self.root)
                    .unwrap_or(&p.path)
                    .display()
                    .to_string(),
                line: p.line,
                message: p.message.clone(),
            })
            .collect()
    }
}

/// What one pass over the folder found, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub problems: Vec<FileProblem>,
    /// (file, kind, name) of documents of kinds standalone mode does not handle.
    pub skipped: Vec<(String, String, String)>,
    pub sources: usize,
    pub jobs: usize,
    pub policies: usize,
    pub removed_sources: Vec<String>,
}

/// When each source or job is next due, as kube-runtime's requeue would schedule it.
#[derive(Default)]
struct Schedule {
    /// `None`: only a change wakes it.
    next: HashMap<String, Option<Instant>>,
    failures: HashMap<String, u32>,
}

impl Schedule {
    fn due(&self, key: &str, now: Instant) -> bool {
        match self.next.get(key) {
            None => true,
            Some(None) => false,
            Some(Some(at)) => *at <= now,
        }
    }
}

pub struct Standalone {
    pub ctx: Arc<Context>,
    pub cluster: Arc<MemoryCluster>,
    pub rbac: Arc<SharedRbac>,
    /// What the last sync refused, for the API.
    pub problems: Arc<SharedProblems>,
    /// The folder's CatalogPolicies and Namespace labels, which `ctx.policies` reads.
    pub policies: Arc<StaticPolicies>,
    folder: Folder,
    jobs: JobSettings,
    retry_base: Duration,
    retry_cap: Duration,
    schedule: Schedule,
    /// The folder's files and the policies as the last sync saw them: what the next sync
    /// compares with to know which sources to fetch again.
    last_sync: Option<(folder::Fingerprint, String)>,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Standalone {
    /// `ctx.cluster` must be `cluster`. The folder's policies replace `ctx`'s (its kill switch
    /// setting stays).
    pub fn new(ctx: Context, cluster: Arc<MemoryCluster>, folder: Folder) -> Self {
        let policies = Arc::new(StaticPolicies::default());
        let paused_globally = ctx.policies.paused_globally();
        let ctx = ctx.with_policies(Policies::new(policies.clone(), paused_globally));
        Self {
            ctx: Arc::new(ctx),
            policies,
            cluster,
            rbac: Arc::new(SharedRbac::default()),
            problems: Arc::new(SharedProblems {
                root: folder.root().to_owned(),
                current: RwLock::default(),
            }),
            folder,
            jobs: JobSettings::default(),
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(60),
            schedule: Schedule::default(),
            last_sync: None,
        }
    }

    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// Reads the folder and makes the in-memory cluster and the RBAC match it. Sources that
    /// are gone have their assets removed (audited), as the finalizer does on a cluster.
    pub async fn sync(&mut self) -> Result<SyncReport, FolderError> {
        let fingerprint = self.folder.fingerprint()?;
        self.folder.load()?;
        let mut report = SyncReport {
            problems: self.folder.problems.clone(),
            ..Default::default()
        };
        let mut sources: BTreeMap<String, CatalogSource> = BTreeMap::new();
        let mut jobs: BTreeMap<String, RefreshJob> = BTreeMap::new();
        let mut config_maps = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut policies: BTreeMap<String, CatalogPolicy> = BTreeMap::new();
        let mut namespace_labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut rbac = StaticRbac::default();
        let mut rbac_problems = Vec::new();
        // Where each object is defined, to refuse a second definition.
        let mut defined: BTreeMap<Identity, (&Path, usize)> = BTreeMap::new();
        let mut duplicated: BTreeSet<Identity> = BTreeSet::new();
        for (path, line, object) in self.folder.objects() {
            if let Some(identity) = object.identity() {
                if let Some((first, first_line)) = defined.get(&identity) {
                    report.problems.push(FileProblem {
                        path: path.to_owned(),
                        line: Some(line),
                        message: format!(
                            "line {line}: {identity} is also defined at {}:{first_line}; neither is applied, its last good version stays",
                            first.display()
                        ),
                        object: Some(identity.clone()),
                    });
                    duplicated.insert(identity);
                    continue;
                }
                defined.insert(identity, (path, line));
            }
        }
        for (path, line, object) in self.folder.objects() {
            if object.identity().is_some_and(|id| duplicated.contains(&id)) {
                // Neither definition applies; what is in effect now stays.
                self.keep_current(
                    object,
                    &mut sources,
                    &mut jobs,
                    &mut config_maps,
                    &mut secrets,
                    &mut policies,
                );
                if matches!(object, Object::Rbac(_)) {
                    rbac_problems.push(FileProblem {
                        path: path.to_owned(),
                        line: Some(line),
                        message: format!(
                            "line {line}: defined twice; the last good RBAC stays until it is fixed"
                        ),
                        object: None,
                    });
                }
                continue;
            }
            match object {
                Object::Namespace { name, labels } => {
                    namespace_labels.insert(name.clone(), labels.clone());
                }
                Object::Policy(policy) => {
                    policies.insert(policy.name_any(), (**policy).clone());
                }
                Object::Source(source) => {
                    sources.insert(
                        key(&source.namespace().unwrap_or_default(), &source.name_any()),
                        (**source).clone(),
                    );
                }
                Object::Job(job) => {
                    let namespace = job.namespace().unwrap_or_default();
                    let at = key(&namespace, &job.name_any());
                    let current = self.cluster.get_job(&namespace, &job.name_any());
                    let changed = current
                        .as_ref()
                        .map(|old| crate::crd::strict::job_rules(job, Some(old)));
                    match changed {
                        Some(problems) if !problems.is_empty() => {
                            let message = problems
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ");
                            report.problems.push(FileProblem {
                                path: path.to_owned(),
                                line: Some(line),
                                message: format!(
                                    "line {line}: RefreshJob {at}: {message}; its last good version stays"
                                ),
                                object: Some(Identity {
                                    kind: "RefreshJob".into(),
                                    namespace: namespace.clone(),
                                    name: job.name_any(),
                                }),
                            });
                            if let Some(old) = current {
                                jobs.insert(at, old);
                            }
                        }
                        _ => {
                            jobs.insert(at, (**job).clone());
                        }
                    }
                }
                Object::ConfigMap {
                    namespace,
                    name,
                    data,
                } => {
                    config_maps.insert((namespace.clone(), name.clone()), data.clone());
                }
                Object::Secret {
                    namespace,
                    name,
                    data,
                } => {
                    secrets.insert((namespace.clone(), name.clone()), data.clone());
                }
                Object::Rbac(doc) => {
                    if let Err(e) = add_document(&mut rbac, doc) {
                        rbac_problems.push(FileProblem {
                            path: path.to_owned(),
                            line: Some(line),
                            message: format!(
                                "line {line}: {e}; the last good RBAC stays until it is fixed"
                            ),
                            object: None,
                        });
                    }
                }
                Object::Skipped { kind, name } => {
                    report
                        .skipped
                        .push((path.display().to_string(), kind.clone(), name.clone()));
                }
            }
        }
        // What changed since the last sync decides which sources are fetched again (below).
        let config_maps_changed: BTreeSet<(String, String)> =
            changed_keys(&self.cluster.config_maps(), &config_maps);
        let secrets_changed = self.cluster.secrets() != secrets;
        let policy_state = format!("{policies:?} {namespace_labels:?}");
        let changed_files = match &self.last_sync {
            Some((files, policy)) if *policy == policy_state && !secrets_changed => {
                Some(folder::changed_files(files, &fingerprint))
            }
            // The first sync, a policy, label or Secret change: every source.
            _ => None,
        };
        self.last_sync = Some((fingerprint, policy_state));
        if rbac_problems.is_empty() {
            self.rbac.replace(rbac);
        } else {
            // Keep the last good RBAC rather than serve a half-built one.
            report.problems.extend(rbac_problems);
        }
        self.cluster.replace_config_maps(config_maps);
        self.cluster.replace_secrets(secrets);
        for (namespace, labels) in namespace_labels {
            self.policies.set_namespace_labels(&namespace, labels);
        }
        // A refused policy keeps its last good version (above); the policies are in force
        // before any source of this sync is reconciled.
        report.policies = policies.len();
        self.policies
            .replace_policies(policies.into_values().collect());

        for existing in self.cluster.all_sources() {
            let at = key(
                &existing.namespace().unwrap_or_default(),
                &existing.name_any(),
            );
            if !sources.contains_key(&at) {
                self.cluster.remove_source(
                    &existing.namespace().unwrap_or_default(),
                    &existing.name_any(),
                );
                match cleanup_source(&self.ctx, &existing).await {
                    Ok(_) => report.removed_sources.push(at),
                    Err(e) => {
                        tracing::warn!(source = %at, error = %e, "removing the assets of a deleted source failed")
                    }
                }
            }
        }
        for existing in self.cluster.all_jobs() {
            let namespace = existing.namespace().unwrap_or_default();
            if !jobs.contains_key(&key(&namespace, &existing.name_any())) {
                self.cluster.remove_job(&namespace, &existing.name_any());
                if let Ok(ns) = Namespace::new(namespace) {
                    let _ = self
                        .ctx
                        .store
                        .delete_object(ObjectTable::RefreshJobs, &ns, &existing.name_any())
                        .await;
                }
            }
        }
        report.sources = sources.len();
        report.jobs = jobs.len();
        let due: Option<Vec<String>> = changed_files.map(|files| {
            sources
                .iter()
                .filter(|(_, source)| {
                    let namespace = source.namespace().unwrap_or_default();
                    let spec = &source.spec.source;
                    let reads_changed_file = spec
                        .url
                        .as_ref()
                        .and_then(|u| self.folder.served_file(&u.url))
                        .is_some_and(|file| files.contains(&file));
                    let reads_changed_map = spec.config_map.as_ref().is_some_and(|c| {
                        config_maps_changed.contains(&(namespace.clone(), c.name.clone()))
                    });
                    let changed = self
                        .cluster
                        .get_source(&namespace, &source.name_any())
                        .is_none_or(|old| old.spec != source.spec);
                    changed || reads_changed_file || reads_changed_map
                })
                .map(|(at, _)| at.clone())
                .collect()
        });
        for source in sources.into_values() {
            self.restore(ObjectTable::CatalogSources, &source).await;
            self.cluster.apply_source(source);
        }
        for job in jobs.into_values() {
            self.restore(ObjectTable::RefreshJobs, &job).await;
            self.cluster.apply_job(job);
        }
        // Fetched again: the sources whose manifest, ConfigMap or served file changed (all of
        // them after a policy, label or Secret change); the rest keep their schedule, so one
        // tenant's edit does not refetch every tenant's sources. Jobs are all looked at.
        match due {
            None => self.schedule.next.clear(),
            Some(due) => {
                for at in due {
                    self.schedule.next.remove(&at);
                }
                self.schedule.next.retain(|at, _| !at.starts_with("job/"));
            }
        }
        self.mark_refused_sources(&report.problems).await;
        self.problems.replace(report.problems.clone());
        Ok(report)
    }

    /// A source whose manifest is refused keeps its last good version and says why in its
    /// status (`Accepted=False`); an accepted one has no such condition. The next reconcile
    /// writes the status, condition included, to the store the API reads.
    async fn mark_refused_sources(&self, problems: &[FileProblem]) {
        for source in self.cluster.all_sources() {
            let namespace = source.namespace().unwrap_or_default();
            let name = source.name_any();
            let refused: Vec<String> = problems
                .iter()
                .filter(|p| {
                    p.object.as_ref().is_some_and(|o| {
                        o.kind == "CatalogSource" && o.namespace == namespace && o.name == name
                    })
                })
                .map(|p| {
                    let file = p
                        .path
                        .strip_prefix(self.folder.root())
                        .unwrap_or(&p.path)
                        .display()
                        .to_string();
                    format!("{file}: {}", p.message)
                })
                .collect();
            let condition = (!refused.is_empty()).then(|| Condition {
                type_: ACCEPTED.into(),
                status: "False".into(),
                reason: "InvalidManifest".into(),
                message: refused.join("; "),
                observed_generation: source.metadata.generation,
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
            });
            let had = source
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == ACCEPTED))
                .cloned();
            // Keep the transition time while the same problem stands.
            let unchanged =
                matches!((&had, &condition), (Some(a), Some(b)) if a.message == b.message);
            if unchanged || (had.is_none() && condition.is_none()) {
                continue;
            }
            let mut status = source.status.clone().unwrap_or_default();
            status.conditions.retain(|c| c.type_ != ACCEPTED);
            status.conditions.extend(condition);
            if let Err(e) = write_source_status(&self.ctx, &source, &status).await {
                tracing::warn!(source = %format!("{namespace}/{name}"), error = %e, "recording the manifest's state in the status failed");
            }
        }
    }

    /// For an object whose new definition is refused: the version in effect now, if any,
    /// goes on as the one wanted.
    fn keep_current(
        &self,
        object: &Object,
        sources: &mut BTreeMap<String, CatalogSource>,
        jobs: &mut BTreeMap<String, RefreshJob>,
        config_maps: &mut BTreeMap<(String, String), BTreeMap<String, String>>,
        secrets: &mut BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
        policies: &mut BTreeMap<String, CatalogPolicy>,
    ) {
        let Some(id) = object.identity() else { return };
        let at = (id.namespace.clone(), id.name.clone());
        match object {
            Object::Source(_) => {
                if let Some(current) = self.cluster.get_source(&id.namespace, &id.name) {
                    sources.insert(key(&id.namespace, &id.name), current);
                }
            }
            Object::Job(_) => {
                if let Some(current) = self.cluster.get_job(&id.namespace, &id.name) {
                    jobs.insert(key(&id.namespace, &id.name), current);
                }
            }
            Object::ConfigMap { .. } => {
                if let Some(current) = self.cluster.get_config_map(&id.namespace, &id.name) {
                    config_maps.insert(at, current);
                }
            }
            Object::Secret { .. } => {
                if let Some(current) = self.cluster.get_secret(&id.namespace, &id.name) {
                    secrets.insert(at, current);
                }
            }
            Object::Policy(_) => {
                if let Some(current) = self
                    .policies
                    .policies()
                    .into_iter()
                    .find(|p| p.name_any() == id.name)
                {
                    policies.insert(id.name.clone(), current);
                }
            }
            Object::Namespace { .. } | Object::Rbac(_) | Object::Skipped { .. } => {}
        }
    }

    /// Before an object first enters the in-memory cluster (a start, or a file added back),
    /// brings back what the store kept of it: uid, generation and status. So a restart does
    /// not re-run a finished RefreshJob, nor give a source a new identity, nor write audit rows
    /// for things that did not happen.
    async fn restore(&self, table: ObjectTable, object: &impl ResourceExt) {
        let namespace = &object.namespace().unwrap_or_default();
        let name = &object.name_any();
        let (present, kind) = match table {
            ObjectTable::CatalogSources => (
                self.cluster.get_source(namespace, name).is_some(),
                "CatalogSource",
            ),
            ObjectTable::RefreshJobs => (
                self.cluster.get_job(namespace, name).is_some(),
                "RefreshJob",
            ),
        };
        let Ok(ns) = Namespace::new(namespace) else {
            return;
        };
        if present {
            return;
        }
        let stored = match self.ctx.store.get_object(table, &ns, name).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(object = %format!("{namespace}/{name}"), error = %e, "reading the stored copy failed; starting it afresh");
                return;
            }
        };
        let object = serde_json::json!({
            "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
            "kind": kind,
            "metadata": {
                "name": stored.name,
                "namespace": stored.namespace,
                "uid": stored.uid,
                "generation": stored.generation,
                "creationTimestamp": stored
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            "spec": stored.spec,
            "status": stored.status,
        });
        let restored = match table {
            ObjectTable::CatalogSources => {
                serde_json::from_value(object).map(|source| self.cluster.restore_source(source))
            }
            ObjectTable::RefreshJobs => {
                serde_json::from_value(object).map(|job| self.cluster.restore_job(job))
            }
        };
        if let Err(e) = restored {
            tracing::warn!(object = %format!("{namespace}/{name}"), error = %e, "the stored copy does not read back; starting it afresh");
        }
    }

    /// Reconciles every source and runs every job that is due. Right after a sync every
    /// source is fetched again (a file it reads may have changed); unchanged ones write nothing.
    pub async fn reconcile_due(&mut self) {
        self.reconcile_due_within(None).await;
    }

    /// [`Self::reconcile_due`], but starts no job once `job_budget` has gone by in this pass,
    /// taking due jobs in turn from each namespace. Whether due jobs were left for the next
    /// pass.
    async fn reconcile_due_within(&mut self, job_budget: Option<Duration>) -> bool {
        let now = Instant::now();
        for source in self.cluster.all_sources() {
            let at = key(&source.namespace().unwrap_or_default(), &source.name_any());
            if !self.schedule.due(&at, now) {
                continue;
            }
            let next = match refetch_source(&self.ctx, &source).await {
                Ok(Report::Failed { .. }) | Err(_) => {
                    let failures = self.schedule.failures.entry(at.clone()).or_insert(0);
                    *failures += 1;
                    Some(now + retry_delay(*failures, self.retry_base, self.retry_cap))
                }
                Ok(_) => {
                    self.schedule.failures.remove(&at);
                    interval(&source).map(|every| now + every)
                }
            };
            self.schedule.next.insert(at, next);
        }
        let jobs_started = Instant::now();
        for job in in_turn_by_namespace(self.cluster.all_jobs()) {
            let namespace = job.namespace().unwrap_or_default();
            let at = format!("job/{}", key(&namespace, &job.name_any()));
            if !self.schedule.due(&at, now) {
                continue;
            }
            if job_budget.is_some_and(|budget| jobs_started.elapsed() >= budget) {
                return true;
            }
            if self
                .ctx
                .policies
                .for_namespace(&namespace)
                .paused_by
                .is_some()
            {
                // Held, not failed: looked at again on the next pass.
                continue;
            }
            let next = match plan(&job, k8s_openapi::jiff::Timestamp::now()) {
                JobPlan::Finished { expires_in } => expires_in.map(|d| now + d),
                JobPlan::Start { .. } | JobPlan::Resume { .. } | JobPlan::Expired => {
                    match run_job(&self.ctx, &self.jobs, &namespace, &job.name_any()).await {
                        Ok(JobResult::RetryAfter(delay)) => Some(now + delay),
                        Ok(_) => None,
                        Err(e) => {
                            tracing::warn!(job = %at, error = %e, "RefreshJob attempt interrupted; re-running");
                            Some(now + self.retry_base)
                        }
                    }
                }
            };
            // A finished job is looked at again when its TTL runs out.
            self.schedule.next.insert(at, next);
        }
        false
    }

    /// Watches the folder (polling, once per `period`) and reconciles until `shutdown`.
    pub async fn run(mut self, period: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut seen = self.folder.fingerprint().ok();
        let mut jobs_left = false;
        loop {
            // Straight on while jobs wait, else after `period`.
            let pause = if jobs_left { Duration::ZERO } else { period };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = &mut shutdown => return,
            }
            let now = self.folder.fingerprint().ok();
            if now.is_some() && now != seen {
                seen = now;
                match self.sync().await {
                    Ok(report) => log_report(&report),
                    Err(e) => tracing::warn!(error = %e, "reading the manifests folder failed"),
                }
            }
            // A flood of jobs gets a slice of each pass, so the folder and every other
            // tenant's sources are looked at again between slices (found by curio-acceptance:
            // 50 jobs of a 2,000-asset source held every other tenant's change for 25 s).
            jobs_left = self.reconcile_due_within(Some(JOB_SLICE)).await;
        }
    }
}

/// How long a pass of [`Standalone::run`] may go on starting RefreshJobs.
const JOB_SLICE: Duration = Duration::from_millis(500);

/// Jobs in turn by namespace (the first of each namespace, then the second of each, …), so
/// one namespace's flood does not go before every other namespace's jobs.
fn in_turn_by_namespace(jobs: Vec<RefreshJob>) -> Vec<RefreshJob> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ranked: Vec<(usize, RefreshJob)> = jobs
        .into_iter()
        .map(|job| {
            let rank = seen.entry(job.namespace().unwrap_or_default()).or_default();
            *rank += 1;
            (*rank, job)
        })
        .collect();
    // Stable: within a rank, the namespaces keep their order.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, job)| job).collect()
}

/// Logs what a sync found: problems (with path and line) and skipped kinds.
pub fn log_report(report: &SyncReport) {
    for problem in &report.problems {
        tracing::warn!(file = %problem.path.display(), line = problem.line, problem = %problem.message, "manifest problem");
    }
    for (file, kind, name) in &report.skipped {
        tracing::info!(file = %file, kind = %kind, name = %name, "skipped: standalone mode does not handle this kind");
    }
    for source in &report.removed_sources {
        tracing::info!(source = %source, "source removed from the folder; its assets were removed");
    }
    tracing::info!(
        sources = report.sources,
        jobs = report.jobs,
        policies = report.policies,
        "manifests applied"
    );
}

/// Namespaces named anywhere in the folder, sorted.
pub fn namespaces(cluster: &MemoryCluster) -> Vec<String> {
    let set: HashSet<String> = cluster
        .all_sources()
        .iter()
        .filter_map(ResourceExt::namespace)
        .collect();
    let mut names: Vec<String> = set.into_iter().collect();
    names.sort();
    names
}

/// The keys whose values differ between `old` and `new` (added and removed ones included).
fn changed_keys<K: Ord + Clone, V: PartialEq>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
) -> BTreeSet<K> {
    old.keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(namespace: &str, name: &str) -> RefreshJob {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"sourceRef": {"name": "s"}},
        }))
        .expect("a RefreshJob")
    }

    #[test]
    fn a_namespaces_flood_takes_turns_with_the_others() {
        let jobs = vec![
            job("flood", "a"),
            job("flood", "b"),
            job("flood", "c"),
            job("quiet", "x"),
            job("team", "y"),
            job("team", "z"),
        ];
        let order: Vec<String> = in_turn_by_namespace(jobs)
            .iter()
            .map(|j| format!("{}/{}", j.namespace().unwrap_or_default(), j.name_any()))
            .collect();
        assert_eq!(
            order,
            [
                "flood/a", "quiet/x", "team/y", "flood/b", "team/z", "flood/c"
            ]
        );
    }
}
