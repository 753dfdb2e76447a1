//! The refresh job pool: a dispatcher that starts queued jobs on the [`FairQueue`] as slots
//! free up. On shutdown it stops taking work and waits for the jobs already running; queued
//! jobs stay with their RefreshJob resources for the next leader.

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::Notify, task::JoinSet};

use crate::decisions::fairness::{FairQueue, Gate};

/// How often queued jobs held back by a gate (a paused namespace) are looked at again.
const GATE_RECHECK: Duration = Duration::from_secs(2);

/// A namespace's gate, from its policy.
pub type GateFn = Arc<dyn Fn(&str) -> Gate + Send + Sync>;

pub struct JobPool<J> {
    queue: Arc<Mutex<FairQueue<J>>>,
    wake: Arc<Notify>,
    gate: GateFn,
}

impl<J> Clone for JobPool<J> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            wake: self.wake.clone(),
            gate: self.gate.clone(),
        }
    }
}

fn lock<J>(queue: &Mutex<FairQueue<J>>) -> MutexGuard<'_, FairQueue<J>> {
    // A panic while holding the lock leaves plain counters behind: keep going.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<J: Send + 'static> JobPool<J> {
    pub fn new(global_limit: usize, per_namespace_limit: usize) -> Self {
        Self {
            queue: Arc::new(Mutex::new(FairQueue::new(
                global_limit,
                per_namespace_limit,
            ))),
            wake: Arc::new(Notify::new()),
            gate: Arc::new(|_| Gate::default()),
        }
    }

    /// Holds back the jobs of namespaces `gate` pauses, and keeps each to its own limit.
    /// Held-back jobs start, at the pool's normal pace, once their gate opens.
    pub fn with_gate(self, gate: GateFn) -> Self {
        Self { gate, ..self }
    }

    pub fn submit(&self, namespace: &str, job: J) {
        lock(&self.queue).push(namespace, job);
        self.wake.notify_one();
    }

    /// (running, queued), for metrics.
    pub fn depth(&self) -> (usize, usize) {
        let queue = lock(&self.queue);
        (queue.running(), queue.queued())
    }

    /// Dispatches until `shutdown`, then waits for running jobs to finish.
    pub async fn run<F, Fut>(&self, runner: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(String, J) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::pin!(shutdown);
        let mut running = JoinSet::new();
        loop {
            loop {
                let Some((namespace, job)) = lock(&self.queue).start_next_gated(&*self.gate) else {
                    break;
                };
                let work = runner(namespace.clone(), job);
                let queue = self.queue.clone();
                let wake = self.wake.clone();
                running.spawn(async move {
                    work.await;
                    lock(&queue).finish(&namespace);
                    wake.notify_one();
                });
            }
            let waiting = lock(&self.queue).queued() > 0;
            tokio::select! {
                () = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(GATE_RECHECK), if waiting => {}
                () = &mut shutdown => break,
            }
        }
        while running.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_namespaces_burst_does_not_starve_another() {
        let pool = JobPool::new(4, 4);
        for i in 0..500 {
            pool.submit("a", i);
        }
        let started = Arc::new(Mutex::new(Vec::<String>::new()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let log = started.clone();
        let dispatcher = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(
                    move |ns, _job: i32| {
                        log.lock().unwrap().push(ns);
                        async { tokio::time::sleep(Duration::from_millis(30)).await }
                    },
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
            })
        };
        // B's single job arrives while A's burst fills every slot.
        tokio::time::sleep(Duration::from_millis(10)).await;
        pool.submit("b", 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let order = started.lock().unwrap().clone();
        let b_at = order
            .iter()
            .position(|ns| ns == "b")
            .expect("B's job started");
        assert!(
            b_at <= 4,
            "B started as job #{b_at}, after {} of A's jobs: it waited more than one job's run time",
            b_at
        );
        stop_tx.send(()).unwrap();
        dispatcher.await.unwrap();
        let (running, queued) = pool.depth();
        assert_eq!(running, 0, "shutdown waits for running jobs");
        assert!(queued > 400, "queued jobs are left for the next leader");
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_namespace_waits_and_resumes_at_the_pools_pace() {
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let gate_paused = paused.clone();
        let pool = JobPool::new(2, 2).with_gate(Arc::new(move |ns: &str| Gate {
            paused: ns == "frozen" && gate_paused.load(std::sync::atomic::Ordering::SeqCst),
            limit: None,
        }));
        for i in 0..6 {
            pool.submit("frozen", i);
        }
        let starts = Arc::new(Mutex::new(Vec::<tokio::time::Instant>::new()));
        let log = starts.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let dispatcher = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(
                    move |_ns, _job: i32| {
                        log.lock().unwrap().push(tokio::time::Instant::now());
                        async { tokio::time::sleep(Duration::from_secs(1)).await }
                    },
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            starts.lock().unwrap().is_empty(),
            "nothing starts while paused"
        );
        assert_eq!(pool.depth(), (0, 6));
        paused.store(false, std::sync::atomic::Ordering::SeqCst);
        let resumed_at = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let starts = starts.lock().unwrap().clone();
        assert_eq!(starts.len(), 6, "every job ran after the resume");
        // Paced, not a burst: two at a time (the global limit), a job's run time apart.
        let offsets: Vec<u64> = starts
            .iter()
            .map(|s| s.duration_since(resumed_at).as_secs())
            .collect();
        let first = offsets[0];
        assert!(
            first <= GATE_RECHECK.as_secs(),
            "resumed within a recheck: {offsets:?}"
        );
        assert_eq!(
            offsets,
            [first, first, first + 1, first + 1, first + 2, first + 2],
            "two at a time, one second apart"
        );
        stop_tx.send(()).unwrap();
        dispatcher.await.unwrap();
    }

    #[tokio::test]
    async fn the_global_limit_holds() {
        let pool = JobPool::new(3, 3);
        for i in 0..12 {
            pool.submit(if i % 2 == 0 { "a" } else { "b" }, i);
        }
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, p, d) = (active.clone(), peak.clone(), done.clone());
        let finished = done.clone();
        pool.run(
            move |_, _job: i32| {
                let (a, p, d) = (a.clone(), p.clone(), d.clone());
                async move {
                    let now = a.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    a.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            },
            async move {
                while finished.load(std::sync::atomic::Ordering::SeqCst) < 12 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            },
        )
        .await;
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 12);
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
