//! Which queued refresh job runs next: a global limit, a per-namespace limit, and among the
//! namespaces that may run one, the one served least recently. So a namespace with 500 queued
//! jobs cannot make another namespace's single job wait for more than one free slot.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a namespace's policy lets it start now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// Paused: its jobs stay queued.
    pub paused: bool,
    /// A lower per-namespace limit than the queue's own.
    pub limit: Option<usize>,
}

#[derive(Debug)]
pub struct FairQueue<J> {
    queued: BTreeMap<String, VecDeque<J>>,
    running: HashMap<String, usize>,
    /// When each namespace last started a job (a counter, not a clock); never served = 0.
    last_served: HashMap<String, u64>,
    served: u64,
    global_limit: usize,
    per_namespace_limit: usize,
}

impl<J> FairQueue<J> {
    pub fn new(global_limit: usize, per_namespace_limit: usize) -> Self {
        Self {
            queued: BTreeMap::new(),
            running: HashMap::new(),
            last_served: HashMap::new(),
            served: 0,
            global_limit: global_limit.max(1),
            per_namespace_limit: per_namespace_limit.max(1),
        }
    }

    pub fn push(&mut self, namespace: &str, job: J) {
        self.queued
            .entry(namespace.to_owned())
            .or_default()
            .push_back(job);
    }

    pub fn running(&self) -> usize {
        self.running.values().sum()
    }

    pub fn queued(&self) -> usize {
        self.queued.values().map(VecDeque::len).sum()
    }

    /// Starts the next job if a slot is free: marks it running and returns it.
    pub fn start_next(&mut self) -> Option<(String, J)> {
        self.start_next_gated(|_| Gate::default())
    }

    /// [`FairQueue::start_next`], skipping paused namespaces and keeping to each namespace's
    /// own limit where its gate sets a lower one.
    pub fn start_next_gated(&mut self, gate: impl Fn(&str) -> Gate) -> Option<(String, J)> {
        if self.running() >= self.global_limit {
            return None;
        }
        let namespace = self
            .queued
            .iter()
            .filter(|(ns, jobs)| {
                if jobs.is_empty() {
                    return false;
                }
                let gate = gate(ns);
                let limit = gate.limit.map_or(self.per_namespace_limit, |l| {
                    l.clamp(1, self.per_namespace_limit)
                });
                !gate.paused && self.running.get(*ns).copied().unwrap_or(0) < limit
            })
            .min_by_key(|(ns, _)| {
                (
                    self.last_served.get(*ns).copied().unwrap_or(0),
                    (*ns).clone(),
                )
            })
            .map(|(ns, _)| ns.clone())?;
        let jobs = self.queued.get_mut(&namespace)?;
        let job = jobs.pop_front()?;
        if jobs.is_empty() {
            self.queued.remove(&namespace);
        }
        self.served += 1;
        self.last_served.insert(namespace.clone(), self.served);
        *self.running.entry(namespace.clone()).or_default() += 1;
        Some((namespace, job))
    }

    /// Marks one of `namespace`'s running jobs finished, freeing its slot.
    pub fn finish(&mut self, namespace: &str) {
        if let Some(n) = self.running.get_mut(namespace) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running.remove(namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_namespace_starts_nothing_and_a_gate_lowers_its_limit() {
        let mut queue = FairQueue::new(10, 4);
        for i in 0..5 {
            queue.push("paused", i);
            queue.push("capped", i);
        }
        let gate = |ns: &str| match ns {
            "paused" => Gate {
                paused: true,
                limit: None,
            },
            _ => Gate {
                paused: false,
                limit: Some(2),
            },
        };
        let mut started = Vec::new();
        while let Some((ns, _)) = queue.start_next_gated(gate) {
            started.push(ns);
        }
        assert_eq!(started, ["capped", "capped"]);
        // Un-paused, the namespace's jobs start at the queue's own limits.
        let mut resumed = 0;
        while queue.start_next_gated(|_| Gate::default()).is_some() {
            resumed += 1;
        }
        assert_eq!(
            resumed,
            4 + 2,
            "4 for the resumed namespace, 2 more for the other"
        );
        assert_eq!(queue.queued(), 5 - 4 + 5 - 4);
    }

    #[test]
    fn a_lone_job_waits_for_at_most_one_free_slot() {
        let mut queue = FairQueue::new(4, 4);
        for i in 0..500 {
            queue.push("a", i);
        }
        // Four of A's jobs fill the global limit.
        for _ in 0..4 {
            assert_eq!(queue.start_next().unwrap().0, "a");
        }
        assert!(queue.start_next().is_none(), "global limit");
        queue.push("b", 0);
        // The next free slot goes to B, not to A's 497 others.
        queue.finish("a");
        assert_eq!(queue.start_next().unwrap().0, "b");
        queue.finish("a");
        assert_eq!(queue.start_next().unwrap().0, "a");
    }

    #[test]
    fn the_per_namespace_limit_leaves_room_for_others() {
        let mut queue = FairQueue::new(4, 2);
        for i in 0..10 {
            queue.push("a", i);
            queue.push("c", i);
        }
        let started: Vec<String> =
            std::iter::from_fn(|| queue.start_next().map(|(ns, _)| ns)).collect();
        assert_eq!(started, ["a", "c", "a", "c"]);
        assert_eq!((queue.running(), queue.queued()), (4, 16));
    }

    #[test]
    fn namespaces_take_turns() {
        let mut queue = FairQueue::new(1, 1);
        for ns in ["a", "a", "a", "b", "b", "c"] {
            queue.push(ns, ());
        }
        let mut order = Vec::new();
        while let Some((ns, ())) = queue.start_next() {
            queue.finish(&ns);
            order.push(ns);
        }
        assert_eq!(order, ["a", "b", "c", "a", "b", "a"]);
    }
}
