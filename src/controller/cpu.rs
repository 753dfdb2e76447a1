//! The refresh path's CPU lane: parsing a fetched catalog, curating it and diffing it against
//! the store are synchronous and, for a catalog of 10,000 assets, take a core for a large
//! fraction of a second. Run on an async worker, that stalls every request and reconcile
//! queued on the worker (two such refreshes stall both workers of a 2-core host); run on
//! unbounded blocking threads, a burst of refreshes takes every core from the readers. The
//! lane runs them on blocking threads, at most `limit` at once, in the order they asked
//! (tokio's semaphore is fair), so refreshes keep the rest of the cores free for reads.

use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum CpuLaneError {
    /// Only while the runtime shuts down: the work was dropped before it ran.
    #[error("the refresh was cancelled: the process is shutting down")]
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct CpuLane {
    permits: Arc<Semaphore>,
}

impl CpuLane {
    /// At most `limit` (at least one) pieces of work at once.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Half the host's cores (at least one): the other half stays with the async workers.
    pub fn for_host() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores / 2)
    }

    /// Runs `work` on a blocking thread once a place in the lane is free. A panic in `work`
    /// goes on unwinding in the caller, as it would have had `work` run inline.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CpuLaneError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The semaphore is never closed, so acquiring fails only if that changes; the work
        // then runs unbounded rather than not at all.
        let _permit = self.permits.clone().acquire_owned().await.ok();
        match tokio::task::spawn_blocking(work).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(CpuLaneError::Cancelled),
        }
    }
}

impl Default for CpuLane {
    fn default() -> Self {
        Self::for_host()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use super::*;

    #[tokio::test]
    async fn returns_what_the_work_returns() {
        let lane = CpuLane::new(1);
        assert_eq!(lane.run(|| 6 * 7).await.unwrap(), 42);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_limit_at_once() {
        let lane = CpuLane::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (lane, running, most) = (lane.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    lane.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// The point of the lane: async tasks keep being polled while the lane's work holds a
    /// thread, even on a runtime with a single worker. The work waits for a message that only
    /// an async task can send; run inline, it would time out instead.
    #[tokio::test(flavor = "current_thread")]
    async fn the_async_worker_stays_free_while_work_runs() {
        let lane = CpuLane::new(1);
        let (sender, receiver) = std::sync::mpsc::channel::<()>();
        let work = tokio::spawn({
            let lane = lane.clone();
            async move {
                lane.run(move || receiver.recv_timeout(Duration::from_secs(5)).is_ok())
                    .await
            }
        });
        tokio::task::yield_now().await;
        let _ = sender.send(());
        assert!(
            work.await.unwrap().unwrap(),
            "the work never heard from the worker"
        );
    }

    #[test]
    fn a_limit_of_zero_is_one() {
        assert_eq!(CpuLane::new(0).permits.available_permits(), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "bad catalog code")]
    async fn a_panic_in_the_work_unwinds_in_the_caller() {
        let lane = CpuLane::new(1);
        let _ = lane.run(|| panic!("bad catalog code")).await;
    }
}
