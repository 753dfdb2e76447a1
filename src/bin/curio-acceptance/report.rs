//! What a run measured, judged against the SLOs, and written as evidence: `report.json` (every
//! figure), `report.md` (the SLO table, the fault timeline, the worst tenants) and SVG charts.

use std::{collections::BTreeMap, path::Path, time::Duration};

use plotters::prelude::*;
use serde::Serialize;

use crate::load::Sample;

/// The SLOs (docs/slo.md); flags override them.
#[derive(Clone, Debug, Serialize)]
pub struct Slos {
    pub read_p99_ms: f64,
    pub read_mean_ms: f64,
    pub refresh_lag_p99_s: f64,
    pub recovery_s: f64,
}

/// A fault: when it began, when the harness ended it, when every tenant read correctly again.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub name: String,
    pub started_s: f64,
    pub ended_s: f64,
    /// `None`: not recovered before the run ended.
    pub recovered_s: Option<f64>,
}

impl Fault {
    /// The window in which errors are the fault's: from its start to recovery (or the end).
    fn contains(&self, at: f64, run_end: f64) -> bool {
        at >= self.started_s && at <= self.recovered_s.unwrap_or(run_end)
    }

    /// Whether `[from, to]` meets the window.
    fn overlaps(&self, from: f64, to: f64, run_end: f64) -> bool {
        from <= self.recovered_s.unwrap_or(run_end) && to >= self.started_s
    }

    pub fn recovery_s(&self) -> Option<f64> {
        self.recovered_s.map(|r| r - self.ended_s)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LagSample {
    pub tenant: usize,
    pub at_s: f64,
    /// `None`: the change never showed within the probe's timeout.
    pub lag_s: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TenantFigures {
    pub namespace: String,
    pub requests: usize,
    pub rate_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub errors_by_status: BTreeMap<String, usize>,
    pub refresh_lag_p50_s: f64,
    pub refresh_lag_p99_s: f64,
    pub refresh_lag_missed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct SloResult {
    pub slo: String,
    pub target: String,
    pub measured: String,
    pub pass: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub slo_pass: bool,
    pub cross_tenant_leaks: usize,
    pub rbac_violations: usize,
    pub wrong_answers_outside_faults: usize,
    pub lost_assets: usize,
    pub stale_assets: usize,
    /// RefreshJobs run more than once (the jobs this run filed).
    pub duplicate_jobs: usize,
    pub jobs_filed: usize,
    pub lost_jobs: usize,
    pub server_errors_outside_faults: usize,
    pub requests: usize,
    pub duration_s: f64,
    pub tenants: usize,
    pub rate_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every change, faults included.
    pub refresh_lag_p50_s: f64,
    pub refresh_lag_p99_s: f64,
    /// A model change written → its event on the tenant's open watch.
    pub watch_lag_p50_s: f64,
    pub watch_lag_p99_s: f64,
    /// Model changes no watch delivered (by the end of the run's settling).
    pub watch_changes_unseen: usize,
    /// The highest peak of any one Curio process.
    pub peak_rss_mib: f64,
    /// Peak per kind of process (`curio api`, `curio controller`: the highest replica).
    pub peak_rss_mib_by_process: std::collections::BTreeMap<String, f64>,
    pub max_db_connections: i64,
    /// Where the machine's CPU went over the run.
    pub cpu: crate::cpu::CpuFigures,
    pub slos: Vec<SloResult>,
    pub faults: Vec<Fault>,
    pub per_tenant: Vec<TenantFigures>,
    /// Latency by kind of request, every tenant, outside fault windows.
    pub per_operation: Vec<OperationFigures>,
    /// The slowest requests outside fault windows, slowest first: when the tail happened.
    pub slowest: Vec<SlowRequest>,
    pub command: String,
    pub notes: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What `compute` needs besides the samples.
pub struct Inputs<'a> {
    pub namespaces: &'a [String],
    pub samples: &'a [Sample],
    pub lags: &'a [LagSample],
    pub watch_lags: &'a [LagSample],
    pub faults: &'a [Fault],
    pub duration: Duration,
    pub slos: &'a Slos,
    pub lost_assets: usize,
    pub stale_assets: usize,
    pub jobs: (usize, usize, usize),
    pub peak_rss_mib_by_process: std::collections::BTreeMap<String, f64>,
    pub max_db_connections: i64,
    pub cpu: crate::cpu::CpuFigures,
    pub command: String,
    pub notes: Vec<String>,
}

/// The figures and the verdicts. Latency SLOs count reads outside fault windows.
/// One kind of request's latency over the run.
#[derive(Clone, Debug, Serialize)]
pub struct OperationFigures {
    pub operation: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// One request of the tail.
#[derive(Clone, Debug, Serialize)]
pub struct SlowRequest {
    /// When it was sent, since the run started.
    pub at_s: f64,
    pub namespace: String,
    pub operation: crate::load::Op,
    pub status: u16,
    pub latency_ms: f64,
}

/// How many of the slowest requests the report lists.
const SLOWEST: usize = 10;

/// The `n` slowest of `samples`, slowest first (ties: earliest first).
fn slowest<'a>(
    samples: impl Iterator<Item = &'a Sample>,
    namespaces: &[String],
    n: usize,
) -> Vec<SlowRequest> {
    let mut all: Vec<&Sample> = samples.collect();
    all.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms).then(a.at.cmp(&b.at)));
    all.into_iter()
        .take(n)
        .map(|s| SlowRequest {
            at_s: s.at.as_secs_f64(),
            namespace: namespaces
                .get(usize::from(s.tenant))
                .cloned()
                .unwrap_or_default(),
            operation: s.op,
            status: s.status,
            latency_ms: f64::from(s.latency_ms),
        })
        .collect()
}

/// Latency by kind of request (the samples given: those outside fault windows), slowest p50
/// first: which requests make the tail.
fn per_operation<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<OperationFigures> {
    let mut by_op: std::collections::HashMap<crate::load::Op, Vec<f64>> = Default::default();
    for s in samples {
        by_op.entry(s.op).or_default().push(f64::from(s.latency_ms));
    }
    let mut figures: Vec<OperationFigures> = by_op
        .into_iter()
        .map(|(op, mut latencies)| {
            latencies.sort_by(f64::total_cmp);
            OperationFigures {
                operation: op.name(),
                requests: latencies.len(),
                p50_ms: percentile(&latencies, 0.5),
                p99_ms: percentile(&latencies, 0.99),
                mean_ms: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
            }
        })
        .collect();
    figures.sort_by(|a, b| {
        b.p50_ms
            .total_cmp(&a.p50_ms)
            .then_with(|| a.operation.cmp(&b.operation))
    });
    figures
}

pub fn compute(inputs: &Inputs<'_>) -> Report {
    let end = inputs.duration.as_secs_f64();
    // A request belongs to a fault when it began or ended inside its window.
    let in_fault_at = |at: f64| inputs.faults.iter().any(|f| f.contains(at, end));
    let in_fault = |s: &Sample| {
        let at = s.at.as_secs_f64();
        in_fault_at(at) || in_fault_at(at + f64::from(s.latency_ms) / 1000.0)
    };
    let mut per_tenant = Vec::new();
    let mut all_latencies = Vec::new();
    let (mut leaks, mut violations, mut wrong, mut server_errors) = (0, 0, 0, 0);
    for (index, namespace) in inputs.namespaces.iter().enumerate() {
        let mine: Vec<&Sample> = inputs
            .samples
            .iter()
            .filter(|s| usize::from(s.tenant) == index)
            .collect();
        let mut latencies: Vec<f64> = mine
            .iter()
            .filter(|s| !in_fault(s) && !s.op.expects_refusal())
            .map(|s| f64::from(s.latency_ms))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let mut errors_by_status = BTreeMap::new();
        for s in &mine {
            leaks += usize::from(s.leaks);
            violations += usize::from(s.rbac_violation);
            let outside = !in_fault(s);
            if outside && s.wrong {
                wrong += 1;
            }
            let error = if s.op.expects_refusal() {
                s.status != 403
            } else {
                s.status != 200
            };
            if error {
                *errors_by_status
                    .entry(if s.status == 0 {
                        "no answer".to_owned()
                    } else {
                        s.status.to_string()
                    })
                    .or_insert(0) += 1;
                if outside && (s.status == 0 || s.status >= 500) {
                    server_errors += 1;
                }
            }
        }
        // A change on its way while a fault was (start to recovery) is the recovery SLO's.
        let mut lags: Vec<f64> = inputs
            .lags
            .iter()
            .filter(|l| l.tenant == index)
            .filter_map(|l| l.lag_s.map(|lag| (l.at_s, lag)))
            .filter(|(at, lag)| !inputs.faults.iter().any(|f| f.overlaps(*at, at + lag, end)))
            .map(|(_, lag)| lag)
            .collect();
        lags.sort_by(f64::total_cmp);
        let missed = inputs
            .lags
            .iter()
            .filter(|l| l.tenant == index && l.lag_s.is_none())
            .count();
        per_tenant.push(TenantFigures {
            namespace: namespace.clone(),
            requests: mine.len(),
            rate_per_s: mine.len() as f64 / end.max(1e-9),
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(0.0),
            mean_ms: if latencies.is_empty() {
                0.0
            } else {
                latencies.iter().sum::<f64>() / latencies.len() as f64
            },
            errors_by_status,
            refresh_lag_p50_s: percentile(&lags, 0.5),
            refresh_lag_p99_s: percentile(&lags, 0.99),
            refresh_lag_missed: missed,
        });
        all_latencies.extend(latencies);
    }
    all_latencies.sort_by(f64::total_cmp);
    let mut all_lags: Vec<f64> = inputs.lags.iter().filter_map(|l| l.lag_s).collect();
    let mut watch_lags: Vec<f64> = inputs.watch_lags.iter().filter_map(|l| l.lag_s).collect();
    watch_lags.sort_by(f64::total_cmp);
    all_lags.sort_by(f64::total_cmp);
    let slos = inputs.slos;
    let worst = |f: fn(&TenantFigures) -> f64| per_tenant.iter().map(f).fold(0.0_f64, f64::max);
    let worst_recovery = inputs
        .faults
        .iter()
        .map(|f| f.recovery_s().unwrap_or(f64::INFINITY))
        .fold(0.0_f64, f64::max);
    let missed: usize = per_tenant.iter().map(|t| t.refresh_lag_missed).sum();
    let (jobs_filed, duplicate_jobs, lost_jobs) = inputs.jobs;
    let checks = vec![
        SloResult {
            slo: "read p99, every tenant, outside faults".into(),
            target: format!("< {} ms", slos.read_p99_ms),
            measured: format!("worst {:.1} ms", worst(|t| t.p99_ms)),
            pass: worst(|t| t.p99_ms) < slos.read_p99_ms,
        },
        SloResult {
            slo: "read mean, every tenant, outside faults".into(),
            target: format!("< {} ms", slos.read_mean_ms),
            measured: format!("worst {:.1} ms", worst(|t| t.mean_ms)),
            pass: worst(|t| t.mean_ms) < slos.read_mean_ms,
        },
        SloResult {
            slo: "cross-tenant bytes".into(),
            target: "0".into(),
            measured: format!("{leaks} markers, {violations} RBAC refusals not made"),
            pass: leaks == 0 && violations == 0,
        },
        SloResult {
            slo: "5xx (or no answer) outside fault windows".into(),
            target: "0".into(),
            measured: server_errors.to_string(),
            pass: server_errors == 0,
        },
        SloResult {
            slo: "wrong or empty 200s outside fault windows".into(),
            target: "0".into(),
            measured: wrong.to_string(),
            pass: wrong == 0,
        },
        SloResult {
            slo: "refresh lag p99, every tenant, outside faults".into(),
            target: format!("< {} s", slos.refresh_lag_p99_s),
            measured: format!(
                "worst {:.2} s, {missed} changes never seen",
                worst(|t| t.refresh_lag_p99_s)
            ),
            pass: worst(|t| t.refresh_lag_p99_s) < slos.refresh_lag_p99_s && missed == 0,
        },
        SloResult {
            slo: "full recovery after each fault".into(),
            target: format!("< {} s", slos.recovery_s),
            measured: if inputs.faults.is_empty() {
                "no faults".into()
            } else {
                format!("worst {worst_recovery:.1} s")
            },
            pass: worst_recovery < slos.recovery_s,
        },
        SloResult {
            slo: "nothing lost".into(),
            target: "0 assets, 0 jobs, 0 duplicate jobs".into(),
            measured: format!(
                "{} assets lost, {} stale, {lost_jobs} of {jobs_filed} jobs lost, {duplicate_jobs} duplicated",
                inputs.lost_assets, inputs.stale_assets
            ),
            pass: inputs.lost_assets == 0
                && inputs.stale_assets == 0
                && lost_jobs == 0
                && duplicate_jobs == 0,
        },
    ];
    Report {
        slo_pass: checks.iter().all(|c| c.pass),
        cross_tenant_leaks: leaks,
        rbac_violations: violations,
        wrong_answers_outside_faults: wrong,
        lost_assets: inputs.lost_assets,
        stale_assets: inputs.stale_assets,
        duplicate_jobs,
        jobs_filed,
        lost_jobs,
        server_errors_outside_faults: server_errors,
        requests: inputs.samples.len(),
        duration_s: end,
        tenants: inputs.namespaces.len(),
        rate_per_s: inputs.samples.len() as f64 / end.max(1e-9),
        p50_ms: percentile(&all_latencies, 0.5),
        p99_ms: percentile(&all_latencies, 0.99),
        max_ms: all_latencies.last().copied().unwrap_or(0.0),
        refresh_lag_p50_s: percentile(&all_lags, 0.5),
        refresh_lag_p99_s: percentile(&all_lags, 0.99),
        watch_lag_p50_s: percentile(&watch_lags, 0.5),
        watch_lag_p99_s: percentile(&watch_lags, 0.99),
        watch_changes_unseen: inputs
            .watch_lags
            .iter()
            .filter(|l| l.lag_s.is_none())
            .count(),
        peak_rss_mib: inputs
            .peak_rss_mib_by_process
            .values()
            .copied()
            .fold(0.0, f64::max),
        peak_rss_mib_by_process: inputs.peak_rss_mib_by_process.clone(),
        max_db_connections: inputs.max_db_connections,
        cpu: inputs.cpu.clone(),
        slos: checks,
        faults: inputs.faults.to_vec(),
        per_tenant,
        per_operation: per_operation(inputs.samples.iter().filter(|s| !in_fault(s))),
        slowest: slowest(
            inputs.samples.iter().filter(|s| !in_fault(s)),
            inputs.namespaces,
            SLOWEST,
        ),
        command: inputs.command.clone(),
        notes: inputs.notes.clone(),
    }
}

/// `report.md`: the SLO table, the fault timeline, the five worst tenants by p99.
pub fn markdown(report: &Report) -> String {
    let mut md = format!(
        "# Curio acceptance run\n\n`{}`\n\n**SLOs {}** — {} tenants, {:.0} s, {} requests ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms; refresh lag (faults included) p50 {:.2} s, p99 {:.2} s; watch event lag p50 {:.2} s, p99 {:.2} s ({} changes unseen); peak RSS {}; at most {} database connections.\n\n| SLO | target | measured | |\n|---|---|---|---|\n",
        report.command,
        if report.slo_pass { "PASS" } else { "FAIL" },
        report.tenants,
        report.duration_s,
        report.requests,
        report.rate_per_s,
        report.p50_ms,
        report.p99_ms,
        report.max_ms,
        report.refresh_lag_p50_s,
        report.refresh_lag_p99_s,
        report.watch_lag_p50_s,
        report.watch_lag_p99_s,
        report.watch_changes_unseen,
        report
            .peak_rss_mib_by_process
            .iter()
            .map(|(process, mib)| format!("{process} {mib:.1} MiB"))
            .collect::<Vec<_>>()
            .join(", "),
        report.max_db_connections,
    );
    for c in &report.slos {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.slo,
            c.target,
            c.measured,
            if c.pass { "pass" } else { "**FAIL**" }
        ));
    }
    md.push_str("\n## Faults\n\n| fault | started | ended | recovered | recovery |\n|---|---|---|---|---|\n");
    for f in &report.faults {
        md.push_str(&format!(
            "| {} | {:.1} s | {:.1} s | {} | {} |\n",
            f.name,
            f.started_s,
            f.ended_s,
            f.recovered_s
                .map_or("never".into(), |r| format!("{r:.1} s")),
            f.recovery_s().map_or("—".into(), |r| format!("{r:.1} s")),
        ));
    }
    md.push_str(&cpu_section(report));
    if !report.per_operation.is_empty() {
        md.push_str("\n## Latency by request, outside faults\n\n| request | count | p50 | p99 | mean |\n|---|---|---|---|---|\n");
        for o in &report.per_operation {
            md.push_str(&format!(
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
                o.operation, o.requests, o.p50_ms, o.p99_ms, o.mean_ms
            ));
        }
    }
    if !report.slowest.is_empty() {
        md.push_str("\n## Slowest requests, outside faults\n\n| sent at | namespace | request | status | latency |\n|---|---|---|---|---|\n");
        for r in &report.slowest {
            md.push_str(&format!(
                "| {:.3} s | {} | {} | {} | {:.1} ms |\n",
                r.at_s,
                r.namespace,
                r.operation.name(),
                r.status,
                r.latency_ms
            ));
        }
    }
    let mut worst: Vec<&TenantFigures> = report.per_tenant.iter().collect();
    worst.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
    md.push_str("\n## Worst tenants (by read p99)\n\n| namespace | requests | p50 | p99 | max | mean | refresh lag p99 | errors |\n|---|---|---|---|---|---|---|---|\n");
    for t in worst.iter().take(5) {
        md.push_str(&format!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.0} ms | {:.1} ms | {:.2} s | {:?} |\n",
            t.namespace,
            t.requests,
            t.p50_ms,
            t.p99_ms,
            t.max_ms,
            t.mean_ms,
            t.refresh_lag_p99_s,
            t.errors_by_status
        ));
    }
    if !report.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for n in &report.notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    md.push_str("\nCharts: `latency.svg` (p99 and p50 per second, fault windows shaded), `refresh-lag.svg`, `tenant-p99.svg`.\n");
    md
}

/// Where the CPU went: each process's seconds, its share of what the cores could give over
/// the run, and its cost per request served.
fn cpu_section(report: &Report) -> String {
    let cpu = &report.cpu;
    if cpu.seconds_by_process.is_empty() {
        return String::new();
    }
    let capacity = cpu.cores as f64 * report.duration_s;
    let busy: f64 = cpu.seconds_by_process.values().sum();
    let per_request = |seconds: f64| {
        if report.requests == 0 {
            0.0
        } else {
            seconds * 1000.0 / report.requests as f64
        }
    };
    let mut md = format!(
        "\n## CPU\n\n{} cores × {:.0} s = {:.0} core-seconds; {:.0} used ({:.0}%), {:.0} taken by the hypervisor (steal). Per request served: {:.2} ms of CPU in all.\n\n| process | CPU seconds | share of the cores | ms per request |\n|---|---|---|---|\n",
        cpu.cores,
        report.duration_s,
        capacity,
        busy,
        100.0 * busy / capacity.max(f64::MIN_POSITIVE),
        cpu.steal_s,
        per_request(busy),
    );
    for (process, seconds) in &cpu.seconds_by_process {
        md.push_str(&format!(
            "| {process} | {seconds:.1} | {:.0}% | {:.2} |\n",
            100.0 * seconds / capacity.max(f64::MIN_POSITIVE),
            per_request(*seconds),
        ));
    }
    md
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// The charts, as SVG files in `dir`.
pub fn charts(dir: &Path, report: &Report, samples: &[Sample], lags: &[LagSample]) -> ChartResult {
    let seconds = report.duration_s.ceil().max(1.0) as usize;
    let mut per_second: Vec<Vec<f64>> = vec![Vec::new(); seconds + 1];
    for s in samples.iter().filter(|s| !s.op.expects_refusal()) {
        let at = (s.at.as_secs_f64() as usize).min(seconds);
        per_second[at].push(f64::from(s.latency_ms));
    }
    let mut series = |p: f64| -> Vec<(f64, f64)> {
        per_second
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| {
                v.sort_by(f64::total_cmp);
                (i as f64, percentile(v, p))
            })
            .collect()
    };
    let p99 = series(0.99);
    let p50 = series(0.5);
    let top = p99.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max) * 1.1;
    {
        let path = dir.join("latency.svg");
        let root = SVGBackend::new(&path, (1000, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Read latency per second (ms); faults shaded",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..seconds as f64, 0.0..top)?;
        chart.configure_mesh().x_desc("s").y_desc("ms").draw()?;
        for f in &report.faults {
            let end = f.recovered_s.unwrap_or(report.duration_s);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(f.started_s, 0.0), (end, top)],
                RGBColor(255, 200, 200).mix(0.5).filled(),
            )))?;
        }
        chart
            .draw_series(LineSeries::new(p99, &RED))?
            .label("p99")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        chart
            .draw_series(LineSeries::new(p50, &BLUE))?
            .label("p50")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        chart.configure_series_labels().border_style(BLACK).draw()?;
        root.present()?;
    }
    {
        let points: Vec<(f64, f64)> = lags
            .iter()
            .filter_map(|l| l.lag_s.map(|lag| (l.at_s, lag)))
            .collect();
        let top = points.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max) * 1.1;
        let path = dir.join("refresh-lag.svg");
        let root = SVGBackend::new(&path, (1000, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Refresh lag: catalog changed → visible in the API (s)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..seconds as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("s")
            .y_desc("lag (s)")
            .draw()?;
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, BLUE.mix(0.6).filled())),
        )?;
        root.present()?;
    }
    {
        let values: Vec<f64> = report.per_tenant.iter().map(|t| t.p99_ms).collect();
        let top = values.iter().copied().fold(1.0_f64, f64::max) * 1.1;
        let path = dir.join("tenant-p99.svg");
        let root = SVGBackend::new(&path, (1000, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Read p99 per tenant, outside faults (ms)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..values.len().max(1) as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("tenant")
            .y_desc("ms")
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Rectangle::new(
                [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *v)],
                GREEN.filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Op;

    fn sample(at_s: f64, status: u16, leaks: u16) -> Sample {
        Sample {
            at: Duration::from_secs_f64(at_s),
            tenant: 0,
            op: Op::List,
            status,
            latency_ms: 5.0,
            leaks,
            rbac_violation: false,
            wrong: false,
        }
    }

    fn run(samples: &[Sample], faults: &[Fault]) -> Report {
        let lags = [LagSample {
            tenant: 0,
            at_s: 1.0,
            lag_s: Some(1.0),
        }];
        run_with_lags(samples, faults, &lags)
    }

    fn run_with_lags(samples: &[Sample], faults: &[Fault], lags: &[LagSample]) -> Report {
        compute(&Inputs {
            namespaces: &["acc-000".to_owned()],
            samples,
            lags,
            watch_lags: &[
                LagSample {
                    tenant: 0,
                    at_s: 2.0,
                    lag_s: Some(0.5),
                },
                LagSample {
                    tenant: 0,
                    at_s: 3.0,
                    lag_s: None,
                },
            ],
            faults,
            duration: Duration::from_secs(10),
            slos: &Slos {
                read_p99_ms: 100.0,
                read_mean_ms: 20.0,
                refresh_lag_p99_s: 5.0,
                recovery_s: 30.0,
            },
            lost_assets: 0,
            stale_assets: 0,
            jobs: (0, 0, 0),
            peak_rss_mib_by_process: Default::default(),
            cpu: Default::default(),
            max_db_connections: 0,
            command: String::new(),
            notes: vec![],
        })
    }

    #[test]
    fn a_5xx_in_a_fault_window_is_the_faults_and_outside_it_fails_the_run() {
        let fault = Fault {
            name: "f".into(),
            started_s: 2.0,
            ended_s: 3.0,
            recovered_s: Some(4.0),
        };
        let inside = run(
            &[sample(1.0, 200, 0), sample(3.5, 503, 0)],
            std::slice::from_ref(&fault),
        );
        assert!(inside.slo_pass, "{:?}", inside.slos);
        let outside = run(&[sample(1.0, 200, 0), sample(6.0, 503, 0)], &[fault]);
        assert_eq!(outside.server_errors_outside_faults, 1);
        assert!(!outside.slo_pass);
    }

    #[test]
    fn the_json_names_the_figures_the_issue_asks_for() {
        let json = serde_json::to_value(run(&[sample(1.0, 200, 0)], &[])).unwrap();
        for key in [
            "slo_pass",
            "cross_tenant_leaks",
            "lost_assets",
            "duplicate_jobs",
            "server_errors_outside_faults",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn a_change_on_its_way_during_a_fault_is_left_to_the_recovery_slo() {
        let fault = Fault {
            name: "f".into(),
            started_s: 4.0,
            ended_s: 5.0,
            recovered_s: Some(6.0),
        };
        let lag = |at_s: f64, lag_s: f64| LagSample {
            tenant: 0,
            at_s,
            lag_s: Some(lag_s),
        };
        // Written before the fault, seen after it: the fault's.
        let spanning = run_with_lags(&[], std::slice::from_ref(&fault), &[lag(3.0, 4.0)]);
        assert!(spanning.slo_pass, "{:?}", spanning.slos);
        assert_eq!(spanning.refresh_lag_p99_s, 4.0);
        // The same lag with no fault near it fails the 5 s SLO... at 6 s.
        let outside = run_with_lags(&[], std::slice::from_ref(&fault), &[lag(7.0, 6.0)]);
        assert!(!outside.slo_pass);
    }

    #[test]
    fn the_cpu_section_shares_the_cores_out_per_process_and_per_request() {
        let mut report = run(&[sample(1.0, 200, 0), sample(2.0, 200, 0)], &[]);
        report.cpu = crate::cpu::CpuFigures {
            cores: 2,
            seconds_by_process: [
                ("curio standalone".to_owned(), 5.0),
                ("rest".to_owned(), 1.0),
            ]
            .into(),
            steal_s: 0.5,
        };
        let md = markdown(&report);
        // 10 s on 2 cores: 20 core-seconds, 6 used; 2 requests.
        assert!(md.contains("20 core-seconds; 6 used (30%)"), "{md}");
        assert!(
            md.contains("| curio standalone | 5.0 | 25% | 2500.00 |"),
            "{md}"
        );
        // Without figures (no /proc), no section.
        report.cpu = Default::default();
        assert!(!markdown(&report).contains("## CPU"));
    }

    #[test]
    fn latency_is_broken_down_by_request_outside_faults() {
        let mut slow = sample(1.0, 200, 0);
        slow.op = Op::Search;
        slow.latency_ms = 90.0;
        let mut in_fault = sample(2.5, 503, 0);
        in_fault.op = Op::Search;
        in_fault.latency_ms = 5000.0;
        let fault = Fault {
            name: "f".into(),
            started_s: 2.0,
            ended_s: 3.0,
            recovered_s: Some(3.5),
        };
        let report = run(&[sample(1.0, 200, 0), slow, in_fault], &[fault]);
        let names: Vec<&str> = report
            .per_operation
            .iter()
            .map(|o| o.operation.as_str())
            .collect();
        // Slowest first; the sample inside the fault is left out.
        assert_eq!(names[0], "search");
        assert_eq!(report.per_operation[0].requests, 1);
        assert_eq!(report.per_operation[0].p99_ms, 90.0);
        assert!(markdown(&report).contains("| search | 1 | 90.0 ms | 90.0 ms | 90.0 ms |"));
    }

    #[test]
    fn the_slowest_requests_outside_faults_are_listed_with_when_and_whose() {
        let mut samples: Vec<Sample> = (0..20)
            .map(|i| {
                let mut s = sample(f64::from(i), 200, 0);
                s.latency_ms = i as f32;
                s
            })
            .collect();
        samples[3].latency_ms = 500.0;
        samples[3].op = Op::Get;
        let mut in_fault = sample(30.5, 503, 0);
        in_fault.latency_ms = 9000.0;
        samples.push(in_fault);
        let fault = Fault {
            name: "f".into(),
            started_s: 30.0,
            ended_s: 31.0,
            recovered_s: Some(31.0),
        };
        let report = run(&samples, &[fault]);
        assert_eq!(report.slowest.len(), SLOWEST);
        let first = &report.slowest[0];
        assert_eq!((first.at_s, first.latency_ms), (3.0, 500.0));
        assert_eq!(first.operation, Op::Get);
        assert_eq!(first.namespace, report.per_tenant[0].namespace);
        assert_eq!(report.slowest[1].latency_ms, 19.0);
        assert!(
            report
                .slowest
                .windows(2)
                .all(|w| w[0].latency_ms >= w[1].latency_ms)
        );
        assert!(
            markdown(&report).contains("| 3.000 s | "),
            "{}",
            markdown(&report)
        );
    }

    #[test]
    fn one_foreign_marker_fails_the_run() {
        let report = run(&[sample(1.0, 200, 1)], &[]);
        assert_eq!(report.cross_tenant_leaks, 1);
        assert!(!report.slo_pass);
    }
}
