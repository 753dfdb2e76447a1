//! Where the machine's CPU went during the run, from `/proc`: each kind of Curio process, this
//! harness, and everything else (PostgreSQL; in cluster mode also etcd and the apiserver).
//! On a machine the harness shares with Curio, this is what says why a latency SLO is missed:
//! a run that offers more work than the cores hold queues, whatever the code does.

use std::collections::{BTreeMap, HashMap};

/// `/proc` counts CPU time in USER_HZ ticks, 100 a second on every architecture Linux runs
/// Curio on (it is ABI, unlike the kernel's internal HZ).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The harness's own label in the figures.
pub const HARNESS: &str = "curio-acceptance (this harness)";
/// What no label claims: the machine's busy time less every process counted.
pub const EVERYTHING_ELSE: &str = "everything else (PostgreSQL, …)";

/// The machine's CPU counters, in ticks, summed over its cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq (guest time is already inside user).
    pub busy: u64,
    /// Time the hypervisor ran something else while this machine wanted a core.
    pub steal: u64,
}

/// The first line of `/proc/stat`: `cpu  user nice system idle iowait irq softirq steal …`.
pub fn parse_machine(proc_stat: &str) -> Option<MachineTicks> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: field(0) + field(1) + field(2) + field(5) + field(6),
        steal: field(7),
    })
}

/// utime + stime of one process, from its `/proc/<pid>/stat`. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses itself, so fields are counted from the
/// last `)`.
pub fn parse_process(pid_stat: &str) -> Option<u64> {
    let rest = &pid_stat[pid_stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn machine_now() -> Option<MachineTicks> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

pub fn process_now(pid: u32) -> Option<u64> {
    parse_process(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds used from `start` until the last `sample`, per label.
#[derive(Debug)]
pub struct CpuMeter {
    machine_start: Option<MachineTicks>,
    machine_last: Option<MachineTicks>,
    /// Per process: its label and its ticks when last read.
    seen: HashMap<u32, (String, u64)>,
    totals: BTreeMap<String, u64>,
}

/// The meter's answer.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuFigures {
    pub cores: usize,
    /// Seconds of CPU by label, the harness and everything else included.
    pub seconds_by_process: BTreeMap<String, f64>,
    /// Seconds the hypervisor kept from this machine's cores.
    pub steal_s: f64,
}

impl CpuMeter {
    /// Starts counting: the processes running now count from here; one that appears later
    /// counts from its start (it began during the run).
    pub fn start(processes: &[(String, u32)]) -> Self {
        let mut meter = Self {
            machine_start: machine_now(),
            machine_last: None,
            seen: HashMap::new(),
            totals: BTreeMap::new(),
        };
        for (label, pid) in with_harness(processes) {
            if let Some(ticks) = process_now(pid) {
                meter.seen.insert(pid, (label.clone(), ticks));
                meter.totals.entry(label).or_default();
            }
        }
        meter.machine_last = meter.machine_start;
        meter
    }

    /// Reads every process again. A process that exited since the last sample keeps what was
    /// counted for it (at most one sampling period is lost).
    pub fn sample(&mut self, processes: &[(String, u32)]) {
        for (label, pid) in with_harness(processes) {
            let Some(ticks) = process_now(pid) else {
                continue;
            };
            self.record(label, pid, ticks);
        }
        if let Some(now) = machine_now() {
            self.machine_last = Some(now);
        }
    }

    fn record(&mut self, label: String, pid: u32, ticks: u64) {
        let before = match self.seen.get(&pid) {
            // The same pid with fewer ticks is a new process that reused it.
            Some((_, before)) if *before <= ticks => *before,
            _ => 0,
        };
        *self.totals.entry(label.clone()).or_default() += ticks - before;
        self.seen.insert(pid, (label, ticks));
    }

    pub fn figures(&self) -> CpuFigures {
        let seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND;
        let mut by_process: BTreeMap<String, f64> = self
            .totals
            .iter()
            .map(|(label, ticks)| (label.clone(), seconds(*ticks)))
            .collect();
        let mut steal_s = 0.0;
        if let (Some(start), Some(last)) = (self.machine_start, self.machine_last) {
            let busy = last.busy.saturating_sub(start.busy);
            let counted: u64 = self.totals.values().sum();
            by_process.insert(
                EVERYTHING_ELSE.to_owned(),
                seconds(busy.saturating_sub(counted)),
            );
            steal_s = seconds(last.steal.saturating_sub(start.steal));
        }
        CpuFigures {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            seconds_by_process: by_process,
            steal_s,
        }
    }
}

fn with_harness(processes: &[(String, u32)]) -> Vec<(String, u32)> {
    processes
        .iter()
        .cloned()
        .chain([(HARNESS.to_owned(), std::process::id())])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ticks_add_busy_fields_and_keep_steal_apart() {
        let stat = "cpu  100 5 20 900 7 3 2 11 0 0\ncpu0 50 2 10 450 3 1 1 5 0 0\nintr 1\n";
        assert_eq!(
            parse_machine(stat),
            Some(MachineTicks {
                busy: 100 + 5 + 20 + 3 + 2,
                steal: 11
            })
        );
        assert_eq!(parse_machine("intr 1\n"), None);
    }

    #[test]
    fn process_ticks_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (curio (api) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 269 0 0 20 0 9 0";
        assert_eq!(parse_process(stat), Some(731 + 269));
        assert_eq!(parse_process("4242 (short) S 1"), None);
    }

    #[test]
    fn a_reused_pid_counts_from_zero_and_an_exited_process_keeps_its_count() {
        // Running at the start with 500 ticks: those were spent before the run.
        let mut meter = CpuMeter {
            machine_start: None,
            machine_last: None,
            seen: HashMap::from([(10, ("curio api".to_owned(), 500))]),
            totals: BTreeMap::from([("curio api".to_owned(), 0)]),
        };
        meter.record("curio api".into(), 10, 800);
        // The process died and another took its pid.
        meter.record("curio api".into(), 10, 40);
        assert_eq!(meter.totals["curio api"], 300 + 40);
        let figures = meter.figures();
        assert!((figures.seconds_by_process["curio api"] - 3.4).abs() < 1e-9);
        // No machine counters were read: nothing is claimed for the rest.
        assert!(!figures.seconds_by_process.contains_key(EVERYTHING_ELSE));
    }

    #[test]
    fn this_process_is_measured() {
        let mut meter = CpuMeter::start(&[]);
        // Some work of our own, so the harness's count can move.
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        meter.sample(&[]);
        let figures = meter.figures();
        assert!(figures.seconds_by_process.contains_key(HARNESS));
        assert!(figures.cores >= 1);
        assert!(figures.seconds_by_process[EVERYTHING_ELSE] >= 0.0);
    }
}
