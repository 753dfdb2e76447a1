//! `curio-acceptance`: runs Curio through the acceptance scenario — many tenants reading at a
//! steady rate while their catalogs change and faults strike — checks every answer, and
//! writes the evidence (`report.json`, `report.md`, SVG charts) into `--out`.
//!
//! It drives `curio standalone` (by default) or, with `--cluster`, two controller replicas and
//! `curio api` against the cluster in `KUBECONFIG`, on a PostgreSQL server it starts itself
//! (or the one in `--database-url`). See docs/slo.md for the SLOs.

mod cluster;
mod cpu;
mod load;
mod noisy;
mod postgres;
mod proxy;
mod report;
mod standalone;
mod target;
mod tenants;
mod watch;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use cpu::CpuMeter;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use load::{Reader, Sample};
use noisy::Noisy;
use postgres::Postgres;
use report::{Fault, LagSample, Slos};
use standalone::Standalone;
use target::Target;
use tenants::{Part, Tenant};

const DATABASE: &str = "curio_acceptance";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "curio-acceptance",
    about = "Runs Curio through the acceptance scenario (tenants, refresh load, readers, faults) and writes the evidence"
)]
struct Options {
    /// Tenants (namespaces), each with an inline, a ConfigMap and a URL source.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Assets per tenant, over its three sources.
    #[arg(long, default_value_t = 1000)]
    assets_per_tenant: usize,
    /// How long readers read.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Where the evidence goes (created; its contents are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Requests a second per tenant.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Each tenant changes `--change-share` of its catalog this often.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    change_every: Duration,
    #[arg(long, default_value_t = 0.01)]
    change_share: f64,
    /// A PostgreSQL server to use (its `postgres` database URL) instead of starting one; the
    /// PostgreSQL restart fault needs the harness's own server and is skipped with this.
    #[arg(long, env = "ACCEPTANCE_DATABASE_URL")]
    database_url: Option<String>,
    /// The `curio` binary (default: the one beside this binary).
    #[arg(long)]
    curio_bin: Option<PathBuf>,
    /// Faults to inject, comma-separated, or `none`: `postgres-restart`, `empty-database`, and
    /// in cluster mode `leader-kill` and `apiserver-outage` [default: every fault the mode can
    /// have].
    #[arg(long)]
    faults: Option<String>,
    /// Drive Curio as it runs on Kubernetes: two leader-electing `curio controller` replicas
    /// and one `curio api` (local processes) against the cluster in `KUBECONFIG`, which the
    /// harness fills with the tenants' namespaces, RBAC, ServiceAccounts and sources (admin
    /// rights needed; every run uses fresh namespaces).
    #[arg(long)]
    cluster: bool,
    /// In cluster mode, apply the CRDs without their CEL rules (for servers before 1.25).
    #[arg(long, env = "E2E_STRIP_CEL", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    strip_cel: bool,
    /// How long the apiserver outage lasts (cluster mode).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    outage: Duration,
    #[arg(long, default_value_t = 100.0)]
    slo_read_p99_ms: f64,
    #[arg(long, default_value_t = 20.0)]
    slo_read_mean_ms: f64,
    #[arg(long, default_value_t = 5.0)]
    slo_refresh_lag_p99_s: f64,
    #[arg(long, default_value_t = 30.0)]
    slo_recovery_s: f64,
    /// RefreshJobs the noisy tenant files at once, after the last fault (0: none).
    #[arg(long, default_value_t = 500)]
    noisy_jobs: usize,
    /// Assets in the noisy tenant's catalog (0: no noisy tenant), rewritten whole every
    /// `--noisy-every`.
    #[arg(long, default_value_t = 10_000)]
    noisy_assets: usize,
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    noisy_every: Duration,
    /// Exit non-zero when any SLO fails (by default only a cross-tenant byte, a lost asset or
    /// job, or a duplicate job fails the run, as the smoke test in scripts/test.sh wants).
    #[arg(long)]
    strict: bool,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Every asset of `tenant` as the API lists it: name → description.
async fn listed(
    reader: &Reader,
    tenant: &Tenant,
) -> Option<std::collections::HashMap<String, String>> {
    let mut found = std::collections::HashMap::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/namespaces/{}/assets?limit=500", tenant.namespace);
        if let Some(token) = &next {
            path.push_str("&continue=");
            path.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
        }
        let (status, body) = reader.get(&path, &tenant.viewer_token()).await;
        if status != 200 {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(&body).ok()?;
        for item in value["items"].as_array()? {
            found.insert(
                item["name"].as_str().unwrap_or_default().to_owned(),
                item["description"].as_str().unwrap_or_default().to_owned(),
            );
        }
        match value["metadata"]["continue"].as_str() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Some(found),
        }
    }
}

/// How `tenant`'s listed assets differ from what the harness last wrote.
#[derive(Debug, Default, PartialEq)]
struct Divergence {
    missing: usize,
    /// At another revision than the last written.
    stale: usize,
    /// Listed but never written.
    extra: usize,
}

async fn divergence(reader: &Reader, tenant: &Tenant) -> Divergence {
    let Some(found) = listed(reader, tenant).await else {
        return Divergence {
            missing: tenant.assets,
            ..Divergence::default()
        };
    };
    let mut out = Divergence::default();
    for asset in 0..tenant.assets {
        match found.get(&Tenant::name(asset)) {
            None => out.missing += 1,
            Some(description) => {
                if !description.ends_with(&tenant.revision_text(asset, tenant.revisions[asset])) {
                    out.stale += 1;
                }
            }
        }
    }
    out.extra = found.len() - (tenant.assets - out.missing);
    out
}

/// Polls `check` for every tenant until all pass in one sweep: when that was (seconds since
/// `started`), or `None` after `timeout`.
async fn all_tenants<F, Fut>(
    tenants: impl Fn() -> Vec<Tenant>,
    started: Instant,
    timeout: Duration,
    check: F,
) -> Option<f64>
where
    F: Fn(Tenant) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for tenant in tenants() {
            if !check(tenant).await {
                all = false;
                break;
            }
        }
        if all {
            return Some(started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every tenant lists all its assets and nothing else (`exact`: at their current revisions,
/// which only holds once changes stop; while they go on, some change is always on its way).
async fn converged(
    reader: &Reader,
    tenants: &Arc<Mutex<Vec<Tenant>>>,
    started: Instant,
    timeout: Duration,
    exact: bool,
) -> Option<f64> {
    let snapshot = || tenants.lock().map(|t| t.clone()).unwrap_or_default();
    all_tenants(snapshot, started, timeout, |tenant| async move {
        let d = divergence(reader, &tenant).await;
        d.missing == 0 && d.extra == 0 && (!exact || d.stale == 0)
    })
    .await
}

/// Every tenant reads one of its assets correctly.
async fn answering(
    reader: &Reader,
    tenants: &[Tenant],
    started: Instant,
    timeout: Duration,
) -> Option<f64> {
    all_tenants(
        || tenants.to_vec(),
        started,
        timeout,
        |tenant| async move {
            let path = format!(
                "/api/v1/namespaces/{}/models/{}",
                tenant.namespace,
                Tenant::name(0)
            );
            let (status, body) = reader.get(&path, &tenant.viewer_token()).await;
            status == 200 && body.contains(&tenant.marker())
        },
    )
    .await
}

/// Every asset of `tenant` is listed at `tenant`'s revision of it or a later one.
async fn caught_up(reader: &Reader, tenant: Tenant) -> bool {
    let Some(found) = listed(reader, &tenant).await else {
        return false;
    };
    (0..tenant.assets).all(|asset| {
        found
            .get(&Tenant::name(asset))
            .and_then(|description| description.rsplit_once("-rev-"))
            .and_then(|(_, revision)| revision.parse::<u32>().ok())
            .is_some_and(|revision| revision >= tenant.revisions[asset])
    })
}

fn resident_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    std::fs::create_dir_all(&options.out)?;
    let work = options.out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let binary = match &options.curio_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no folder")?
            .join("curio"),
    };
    let possible: &[&str] = if options.cluster {
        &[
            "leader-kill",
            "postgres-restart",
            "apiserver-outage",
            "empty-database",
        ]
    } else {
        &["postgres-restart", "empty-database"]
    };
    let faults: Vec<&str> = match &options.faults {
        None => possible.to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty() && *f != "none")
            .collect(),
    };
    for f in &faults {
        if !possible.contains(f) {
            bail!(
                "fault {f:?} is not one this mode can have: {} or none",
                possible.join(", ")
            );
        }
    }
    // Standalone keeps fixed namespaces (its folder is new each run); a cluster keeps what
    // earlier runs left, so each run there has namespaces of its own.
    let prefix = if options.cluster {
        format!("acc{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
    } else {
        "acc".to_owned()
    };

    // The database server, and a database of the run's own.
    // The server's folder is outside `--out`: the postgres user must reach it (initdb refuses
    // to run as root, and /root is closed to others).
    let pg_folder =
        std::env::temp_dir().join(format!("curio-acceptance-pg-{}", std::process::id()));
    let pg = match &options.database_url {
        Some(url) => Postgres::given(url),
        None => Postgres::start_own(&pg_folder, free_port()?)?,
    };
    pg.wait_ready(Duration::from_secs(30)).await?;
    let recreate = format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)");
    pg.execute(&recreate).await?;
    pg.execute(&format!("CREATE DATABASE {DATABASE}")).await?;

    // The tenants, and what drives Curio.
    let mut tenants: Vec<Tenant> = (0..options.tenants)
        .map(|i| Tenant::new(&prefix, i, options.assets_per_tenant))
        .collect();
    let noisy = (options.noisy_assets > 0).then(|| Noisy::new(&prefix, options.noisy_assets));
    let background = CancellationToken::new();
    let _background = background.clone().drop_guard();
    let target = if options.cluster {
        let mut watch_namespaces: Vec<String> =
            tenants.iter().map(|t| t.namespace.clone()).collect();
        watch_namespaces.extend(noisy.iter().map(|n| n.namespace.clone()));
        let cluster = cluster::Cluster::connect(cluster::Settings {
            binary,
            database_url: pg.url(DATABASE),
            system_namespace: format!("{prefix}-system"),
            watch_namespaces,
            out: options.out.clone(),
            strip_cel: options.strip_cel,
            stop: background.clone(),
        })
        .await?;
        let system = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": cluster.system_namespace}});
        cluster.put("system.json", &system.to_string()).await?;
        Target::Cluster(Box::new(cluster))
    } else {
        let tokens = work.join("tokens.csv");
        std::fs::write(&tokens, tenants::token_file(&tenants))?;
        let log = options.out.join("curio.log");
        let _ = std::fs::remove_file(&log);
        Target::Standalone(Standalone::new(
            binary,
            work.join("manifests"),
            tokens,
            pg.url(DATABASE),
            free_port()?,
            log,
        ))
    };
    let target = Arc::new(target);
    let writing_started = Instant::now();
    for (path, content) in tenants::shared_files() {
        target.put(&path, &content).await?;
    }
    futures::stream::iter(tenants.iter())
        .map(|tenant| {
            let target = target.clone();
            async move {
                for (path, content) in tenant.files() {
                    target.put(&path, &content).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    if let Some(noisy) = &noisy {
        for (path, content) in [noisy.source_file(), noisy.catalog_file()] {
            target.put(&path, &content).await?;
        }
        if let Some(cluster) = target.cluster() {
            cluster.serve_slowly(&noisy.slow_catalog_path());
            for (path, content) in noisy.slow_files() {
                cluster.put(&path, &content).await?;
            }
        }
    }
    if let Some(cluster) = target.cluster() {
        cluster.issue_tokens(&mut tenants).await?;
        println!(
            "applied {} tenants' objects and issued their tokens in {:.1} s",
            tenants.len(),
            writing_started.elapsed().as_secs_f64()
        );
    }
    target.start().await?;
    let base = Arc::new(Mutex::new(target.base()));
    let reader = Reader {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()?,
        base: base.clone(),
        started: Instant::now(),
        samples: Arc::new(Mutex::new(Vec::new())),
    };
    let shared = Arc::new(Mutex::new(tenants.clone()));
    let loading = Instant::now();
    if converged(&reader, &shared, loading, Duration::from_secs(600), true)
        .await
        .is_none()
    {
        bail!(
            "the catalogs did not load within 10 minutes (see the logs in {})",
            options.out.display()
        );
    }
    println!(
        "loaded {} tenants × {} assets in {:.1} s",
        options.tenants,
        options.assets_per_tenant,
        loading.elapsed().as_secs_f64()
    );

    // A watch of its models per tenant, kept open past the run until the end state is read.
    let watch_lags = Arc::new(watch::WatchLags::default());
    let watch_stop = CancellationToken::new();
    let watchers: Vec<_> = tenants
        .iter()
        .map(|tenant| {
            tokio::spawn(watch::follow(
                reader.clone(),
                tenant.clone(),
                watch_lags.clone(),
                watch_stop.clone(),
            ))
        })
        .collect();
    // Dashboards attach before the clock starts: opening a hundred watches is set-up, and the
    // readers measure the steady state with them open.
    let opening = Instant::now();
    while watch_lags.opened() < tenants.len() && opening.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{} of {} watches open in {:.1} s",
        watch_lags.opened(),
        tenants.len(),
        opening.elapsed().as_secs_f64()
    );

    // The run.
    let reader = Reader {
        started: Instant::now(),
        ..reader
    };
    let started = reader.started;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for tenant in &tenants {
        tasks.push(tokio::spawn(reader.clone().run(
            tenant.clone(),
            options.tenants,
            options.rate,
            64,
            stop.clone(),
        )));
    }
    // Resident memory and CPU time of Curio's processes, and the database's connections.
    let peak_rss = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let cpu_meter = Arc::new(Mutex::new(CpuMeter::start(&target.pids())));
    let max_connections = Arc::new(Mutex::new(0i64));
    {
        let (target, peak_rss, cpu_meter, stop) = (
            target.clone(),
            peak_rss.clone(),
            cpu_meter.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let processes = target.pids();
                for (process, pid) in &processes {
                    if let (Some(kib), Ok(mut peak)) = (resident_kib(*pid), peak_rss.lock()) {
                        let entry = peak.entry(process.clone()).or_default();
                        *entry = (*entry).max(kib);
                    }
                }
                if let Ok(mut meter) = cpu_meter.lock() {
                    meter.sample(&processes);
                }
                if stop.is_cancelled() {
                    break;
                }
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }));
    }
    {
        let (url, max_connections, stop) =
            (pg.url("postgres"), max_connections.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            use sea_orm::ConnectionTrait;
            while !stop.is_cancelled() {
                if let Ok(db) = sea_orm::Database::connect(url.as_str()).await {
                    let sql = format!("SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE datname = '{DATABASE}'");
                    let statement =
                        sea_orm::Statement::from_string(db.get_database_backend(), sql);
                    if let Ok(Some(row)) = db.query_one_raw(statement).await
                        && let (Ok(n), Ok(mut max)) =
                            (row.try_get::<i64>("", "n"), max_connections.lock())
                    {
                        *max = (*max).max(n);
                    }
                    let _ = db.close().await;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }));
    }
    // Refresh load: each tenant changes its catalog every `change_every`, staggered; a probe
    // per change measures when the change is visible.
    let lags = Arc::new(Mutex::new(Vec::<LagSample>::new()));
    let writing = Arc::new(tokio::sync::Mutex::new(()));
    {
        let (shared, lags, stop, reader, target, writing, watch_lags) = (
            shared.clone(),
            lags.clone(),
            stop.clone(),
            reader.clone(),
            target.clone(),
            writing.clone(),
            watch_lags.clone(),
        );
        let (every, share, count) = (options.change_every, options.change_share, options.tenants);
        tasks.push(tokio::spawn(async move {
            let slot = every.div_f64(count.max(1) as f64);
            let mut ticks = tokio::time::interval(slot);
            let mut n = 0usize;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = stop.cancelled() => return,
                }
                let index = n % count.max(1);
                let round = n / count.max(1);
                n += 1;
                let part = if round.is_multiple_of(2) {
                    Part::Url
                } else {
                    Part::ConfigMap
                };
                let guard = writing.lock().await;
                let (tenant, changed, file) = {
                    let Ok(mut all) = shared.lock() else { return };
                    let tenant = &mut all[index];
                    let changed = tenant.change(part, share, round);
                    let file = match part {
                        Part::Url => tenant.url_file(),
                        _ => tenant.config_map_file(),
                    };
                    (tenant.clone(), changed, file)
                };
                if let Err(e) = target.put(&file.0, &file.1).await {
                    eprintln!("writing {}: {e:#}", file.0);
                    continue;
                }
                // A cluster fetches a URL source on its interval: the change is published
                // with a RefreshJob, as a team would (standalone refetches served files).
                if part == Part::Url && target.cluster().is_some() {
                    let job = noisy::refresh_job(
                        &tenant.namespace,
                        "url",
                        &format!("change-{round}"),
                        "acceptance: catalog changed",
                    );
                    if let Err(e) = target.put(&job.0, &job.1).await {
                        eprintln!("filing {}: {e:#}", job.0);
                    }
                }
                drop(guard);
                let written = Instant::now();
                let at_s = reader.started.elapsed().as_secs_f64();
                // The first changed model, for the tenant's watch.
                if let Some(&model) = changed.iter().find(|a| Tenant::kind(**a) == "Model") {
                    let text = tenant.revision_text(model, tenant.revisions[model]);
                    watch_lags.expect(tenant.index, text, at_s);
                }
                let (reader, lags) = (reader.clone(), lags.clone());
                tokio::spawn(async move {
                    let asset = changed[0];
                    let want = tenant.revision_text(asset, tenant.revisions[asset]);
                    let path = format!(
                        "/api/v1/namespaces/{}/{}/{}",
                        tenant.namespace,
                        Tenant::plural(asset),
                        Tenant::name(asset)
                    );
                    let mut lag_s = None;
                    while written.elapsed() < Duration::from_secs(60) {
                        let (status, body) = reader.get(&path, &tenant.viewer_token()).await;
                        if status == 200 && body.contains(&want) {
                            lag_s = Some(written.elapsed().as_secs_f64());
                            break;
                        }
                        tokio::time::sleep(probe_pause(written.elapsed())).await;
                    }
                    if let Ok(mut lags) = lags.lock() {
                        lags.push(LagSample {
                            tenant: tenant.index,
                            at_s,
                            lag_s,
                        });
                    }
                });
            }
        }));
    }

    // The noisy tenant rewrites its whole catalog every `noisy_every`.
    if let Some(mut noisy) = noisy.clone() {
        let (stop, target, writing, every) = (
            stop.clone(),
            target.clone(),
            writing.clone(),
            options.noisy_every,
        );
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = stop.cancelled() => return,
                }
                noisy.revision += 1;
                let (path, content) = noisy.catalog_file();
                let _guard = writing.lock().await;
                if let Err(e) = target.put(&path, &content).await {
                    eprintln!("writing {path}: {e:#}");
                }
                if target.cluster().is_some() {
                    let (path, content) =
                        noisy.refresh_job_file(&format!("rewrite-{}", noisy.revision));
                    if let Err(e) = target.put(&path, &content).await {
                        eprintln!("filing {path}: {e:#}");
                    }
                }
            }
        }));
    }

    // Faults, each at a known time.
    let mut fault_log = Vec::new();
    // The leader kill's job: (filed, finished more than once, not finished).
    let mut kill_jobs = (0, 0, 0);
    let mut notes = vec![
        if options.cluster {
            "Mode: cluster — two leader-electing `curio controller` replicas and one `curio api` (local processes) against the cluster in KUBECONFIG, reaching it through the harness's relay; tenants' users are ServiceAccounts with TokenRequest tokens (TokenReview and SubjectAccessReview for real); PostgreSQL.".to_owned()
        } else {
            "Mode: standalone (one process: controller, API, folder of manifests) on PostgreSQL; the leader kill and the apiserver outage need cluster mode (--cluster).".to_owned()
        },
        "Watches: each tenant's viewer keeps one server-sent-event watch of its models open (resumed from its last event when dropped); the watch event lag is a model change written → its event received.".to_owned(),
    ];
    if let Some(noisy) = &noisy {
        notes.push(format!(
            "Noisy tenant ({}): {} assets rewritten whole every {}; nobody reads it, and its markers count as leaks anywhere else.",
            noisy.namespace,
            noisy.assets,
            humantime::format_duration(options.noisy_every)
        ));
    }
    let schedule: Vec<(f64, &str)> = faults
        .iter()
        .enumerate()
        .map(|(i, f)| ((i as f64 + 1.0) / (faults.len() as f64 + 1.0), *f))
        .collect();
    for (at, fault) in schedule {
        let when = options.duration.mul_f64(at);
        tokio::time::sleep(when.saturating_sub(started.elapsed())).await;
        let started_s = started.elapsed().as_secs_f64();
        match fault {
            "postgres-restart" if pg.can_restart() => {
                pg.stop()?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                pg.start()?;
                pg.wait_ready(Duration::from_secs(30)).await?;
                let ended_s = started.elapsed().as_secs_f64();
                let snapshot: Vec<Tenant> = shared.lock().map(|t| t.clone()).unwrap_or_default();
                let recovered_s =
                    answering(&reader, &snapshot, started, Duration::from_secs(120)).await;
                fault_log.push(Fault {
                    name: "PostgreSQL restart (3 s down)".into(),
                    started_s,
                    ended_s,
                    recovered_s,
                });
            }
            "postgres-restart" => notes.push(
                "PostgreSQL restart skipped: --database-url is not the harness's own server."
                    .into(),
            ),
            "leader-kill" => {
                let (Some(cluster), Some(noisy)) = (target.cluster(), &noisy) else {
                    notes.push("Leader kill skipped: it needs the noisy tenant's slow source (--noisy-assets > 0).".into());
                    continue;
                };
                let (fault, outcomes) = leader_kill(cluster, noisy, started).await?;
                kill_jobs = outcomes;
                fault_log.push(fault);
            }
            "apiserver-outage" => {
                let Some(cluster) = target.cluster() else {
                    continue;
                };
                cluster.relay.down();
                tokio::time::sleep(options.outage).await;
                cluster.relay.up();
                let ended_s = started.elapsed().as_secs_f64();
                // Caught up: every change written before the outage ended is in the API.
                let written: Vec<Tenant> = shared.lock().map(|t| t.clone()).unwrap_or_default();
                let recovered_s = all_tenants(
                    || written.clone(),
                    started,
                    Duration::from_secs(120),
                    |tenant| caught_up(&reader, tenant),
                )
                .await;
                fault_log.push(Fault {
                    name: format!(
                        "apiserver unreachable for Curio ({} s)",
                        options.outage.as_secs()
                    ),
                    started_s,
                    ended_s,
                    recovered_s,
                });
            }
            _ => {
                // Curio stops, the database comes back empty, Curio starts on it.
                let _guard = writing.lock().await;
                target.stop();
                pg.execute(&recreate).await?;
                pg.execute(&format!("CREATE DATABASE {DATABASE}")).await?;
                target.start().await?;
                drop(_guard);
                let ended_s = started.elapsed().as_secs_f64();
                let recovered_s =
                    converged(&reader, &shared, started, Duration::from_secs(300), false).await;
                fault_log.push(Fault {
                    name: if options.cluster {
                        "Curio (API and both replicas) restarted on an empty database".into()
                    } else {
                        "Curio restarted on an empty database".into()
                    },
                    started_s,
                    ended_s,
                    recovered_s,
                });
            }
        }
    }
    // The noisy tenant's job flood, at a fixed time after the last fault's start, and never
    // before the faults are over (their recovery can take longer than planned).
    let flood = noisy
        .clone()
        .filter(|_| options.noisy_jobs > 0)
        .map(|noisy| {
            let at = options
                .duration
                .mul_f64((faults.len() as f64 + 1.0) / (faults.len() as f64 + 2.0));
            let (target, writing, count) = (target.clone(), writing.clone(), options.noisy_jobs);
            tokio::spawn(async move {
                tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
                let (path, content) = noisy.jobs_file(count);
                let _guard = writing.lock().await;
                target.put(&path, &content).await?;
                anyhow::Ok(started.elapsed().as_secs_f64())
            })
        });

    let jobs_filed = match flood {
        Some(filing) => {
            let at_s = filing.await??;
            notes.push(format!(
                "The noisy tenant filed {} RefreshJobs at once at {at_s:.1} s.",
                options.noisy_jobs
            ));
            options.noisy_jobs
        }
        None => 0,
    };
    tokio::time::sleep(options.duration.saturating_sub(started.elapsed())).await;
    let duration = started.elapsed();
    let ended = Instant::now();
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    // In-flight probes and requests finish, then the end state is checked.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = converged(&reader, &shared, started, Duration::from_secs(60), true).await;
    let final_tenants: Vec<Tenant> = shared.lock().map(|t| t.clone()).unwrap_or_default();
    let (mut lost, mut stale) = (0, 0);
    for tenant in &final_tenants {
        let d = divergence(&reader, tenant).await;
        lost += d.missing;
        stale += d.stale;
    }
    if settled.is_none() {
        notes.push("The catalogs had not converged 60 s after the run.".into());
    }
    watch_stop.cancel();
    for watcher in watchers {
        let _ = watcher.await;
    }
    // Every filed job ends exactly once; they get ten minutes after the run to do so.
    let mut outcomes = noisy::JobOutcomes::default();
    if jobs_filed > 0 {
        let waiting = Instant::now();
        loop {
            let namespace = noisy
                .as_ref()
                .map(|n| n.namespace.as_str())
                .unwrap_or_default();
            match noisy::job_outcomes(target.database_url(), namespace, noisy::FLOOD_PREFIX).await {
                Ok(o) => outcomes = o,
                Err(e) => eprintln!("reading the jobs' audit trail: {e}"),
            }
            if outcomes.finished >= jobs_filed || waiting.elapsed() > Duration::from_secs(600) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        notes.push(format!(
            "{} of {jobs_filed} jobs finished {:.0} s after the run; {} finished more than once.",
            outcomes.finished,
            ended.elapsed().as_secs_f64(),
            outcomes.duplicated
        ));
    }
    target.stop();
    if let Some(cluster) = target.cluster() {
        let mut namespaces: Vec<String> = tenants.iter().map(|t| t.namespace.clone()).collect();
        namespaces.extend(noisy.iter().map(|n| n.namespace.clone()));
        namespaces.push(cluster.system_namespace.clone());
        cluster.clean_up(&namespaces).await;
    }

    let samples: Vec<Sample> = reader.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let lags: Vec<LagSample> = lags.lock().map(|l| l.clone()).unwrap_or_default();
    let slos = Slos {
        read_p99_ms: options.slo_read_p99_ms,
        read_mean_ms: options.slo_read_mean_ms,
        refresh_lag_p99_s: options.slo_refresh_lag_p99_s,
        recovery_s: options.slo_recovery_s,
    };
    let namespaces: Vec<String> = tenants.iter().map(|t| t.namespace.clone()).collect();
    let report = report::compute(&report::Inputs {
        namespaces: &namespaces,
        samples: &samples,
        lags: &lags,
        watch_lags: &watch_lags.samples(),
        faults: &fault_log,
        duration,
        slos: &slos,
        lost_assets: lost,
        stale_assets: stale,
        jobs: (
            jobs_filed + kill_jobs.0,
            outcomes.duplicated + kill_jobs.1,
            jobs_filed.saturating_sub(outcomes.finished) + kill_jobs.2,
        ),
        peak_rss_mib_by_process: peak_rss
            .lock()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), *v as f64 / 1024.0))
                    .collect()
            })
            .unwrap_or_default(),
        max_db_connections: max_connections.lock().map(|n| *n).unwrap_or(0),
        cpu: cpu_meter.lock().map(|m| m.figures()).unwrap_or_default(),
        command,
        notes,
    });
    std::fs::write(
        options.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let markdown = report::markdown(&report);
    std::fs::write(options.out.join("report.md"), &markdown)?;
    if let Err(e) = report::charts(&options.out, &report, &samples, &lags) {
        eprintln!("charts: {e}");
    }
    drop(target);
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&pg_folder);
    println!("{markdown}");
    println!("evidence: {}", options.out.display());
    let broken = report.cross_tenant_leaks > 0
        || report.rbac_violations > 0
        || report.lost_assets > 0
        || report.lost_jobs > 0
        || report.duplicate_jobs > 0;
    if broken || (options.strict && !report.slo_pass) {
        std::process::exit(1);
    }
    Ok(())
}

/// The leader-kill fault: a RefreshJob of the slow source is filed; once it runs, the replica
/// holding the Lease is SIGKILLed and a new replica started (two again). Recovered when the job
/// has succeeded; the audit trail then says whether it ended exactly once.
async fn leader_kill(
    cluster: &cluster::Cluster,
    noisy: &Noisy,
    started: Instant,
) -> anyhow::Result<(Fault, (usize, usize, usize))> {
    const JOB: &str = "leader-kill";
    let started_s = started.elapsed().as_secs_f64();
    let (path, content) = noisy.slow_job_file(JOB);
    cluster.put(&path, &content).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.job_phase(&noisy.namespace, JOB).await.as_deref() != Some("Running") {
        if Instant::now() > deadline {
            bail!("RefreshJob {JOB} did not start running within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = cluster.leader().await.unwrap_or_default();
    let killed = cluster.kill(&leader);
    let replacement = cluster.start_controller()?;
    let ended_s = started.elapsed().as_secs_f64();
    let mut recovered_s = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        match cluster.job_phase(&noisy.namespace, JOB).await.as_deref() {
            Some("Succeeded") => {
                recovered_s = Some(started.elapsed().as_secs_f64());
                break;
            }
            Some("Failed") => break,
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let outcomes = noisy::job_outcomes(&cluster.database_url, &noisy.namespace, JOB).await?;
    let name = if killed {
        format!("Leader {leader} SIGKILLed while RefreshJob {JOB} ran ({replacement} started)")
    } else {
        format!("No leader process found to kill ({leader:?}) while RefreshJob {JOB} ran")
    };
    Ok((
        Fault {
            name,
            started_s,
            ended_s,
            recovered_s,
        },
        (1, outcomes.duplicated, 1 - outcomes.finished.min(1)),
    ))
}

/// How long a refresh-lag probe waits before it reads again, `elapsed` after the change was
/// written: 100 ms at first, then a tenth of the time so far, at most a second. A lag is
/// measured to within 10% (and 100 ms), and a slow Curio is not asked ten times a second for
/// every change it has not shown yet — fixed 100 ms probes made a backlog feed itself (a 20 s
/// lag meant 2,000 probe reads a second on top of the readers).
fn probe_pause(elapsed: Duration) -> Duration {
    (elapsed / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::probe_pause;
    use std::time::Duration;

    #[test]
    fn refresh_probes_back_off_with_the_lag() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(probe_pause(ms(0)), ms(100));
        assert_eq!(probe_pause(ms(900)), ms(100));
        assert_eq!(probe_pause(ms(3_000)), ms(300));
        assert_eq!(probe_pause(ms(30_000)), ms(1_000));
    }
}
