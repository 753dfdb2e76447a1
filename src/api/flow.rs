//! Concurrency per flow: at most `per_flow` requests of one flow (a namespace the caller is
//! authorized to read, see `charges`) in the handlers at once; the rest wait in that flow's
//! own line. The rate limits bound a tenant's average; this bounds its share of the database
//! pool at any moment, so a tenant's burst waits behind itself instead of putting every other
//! tenant's queries behind it (Kubernetes' API Priority and Fairness does the same with its
//! flows).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A request's place in a flow, held until it is answered.
#[derive(Debug)]
pub struct FlowPlace {
    _permit: OwnedSemaphorePermit,
}

/// Waited longer than allowed for a place in `flow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crowded {
    pub flow: String,
}

pub struct FlowLimits {
    per_flow: usize,
    wait: Duration,
    flows: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl FlowLimits {
    /// At most `per_flow` requests of one flow at once (0: no limit), each waiting at most
    /// `wait` for its place.
    pub fn new(per_flow: usize, wait: Duration) -> Self {
        Self {
            per_flow,
            wait,
            flows: Mutex::new(HashMap::new()),
        }
    }

    pub fn unlimited() -> Self {
        Self::new(0, Duration::ZERO)
    }

    fn flows(&self) -> MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place in `flow`, waiting at most `wait` for one; `None` when unlimited.
    pub async fn enter(&self, flow: &str) -> Result<Option<FlowPlace>, Crowded> {
        if self.per_flow == 0 {
            return Ok(None);
        }
        let semaphore = self
            .flows()
            .entry(flow.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_flow)))
            .clone();
        match tokio::time::timeout(self.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(FlowPlace { _permit: permit })),
            // Closed never happens (nothing closes them); timed out is crowded.
            Ok(Err(_)) | Err(_) => Err(Crowded {
                flow: flow.to_owned(),
            }),
        }
    }

    /// Forgets flows with nobody in them, so the table does not grow with every name seen.
    pub fn forget_idle(&self) {
        let per_flow = self.per_flow;
        self.flows().retain(|_, semaphore| {
            Arc::strong_count(semaphore) > 1 || semaphore.available_permits() < per_flow
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flows().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_crowded_flow_waits_in_its_own_line() {
        let limits = FlowLimits::new(2, Duration::from_secs(1));
        let b = "ns/team-b";
        let first = limits.enter(b).await.unwrap();
        let _second = limits.enter(b).await.unwrap();
        // Team B's third waits, and gives up after `wait`.
        let third = limits.enter(b).await.unwrap_err();
        assert_eq!(third.flow, "ns/team-b");
        // Team A is not in B's line.
        let a = "ns/team-a";
        assert!(limits.enter(a).await.is_ok());
        // A place freed is taken by the next in line.
        let waiting = {
            let limits = &limits;
            async move { limits.enter(b).await }
        };
        drop(first);
        assert!(waiting.await.is_ok());
    }

    #[tokio::test]
    async fn idle_flows_are_forgotten_and_busy_ones_kept() {
        let limits = FlowLimits::new(1, Duration::from_millis(10));
        let held = limits.enter("ns/busy").await.unwrap();
        drop(limits.enter("ns/idle").await.unwrap());
        limits.forget_idle();
        assert_eq!(limits.len(), 1);
        drop(held);
        limits.forget_idle();
        assert_eq!(limits.len(), 0);
        assert!(FlowLimits::unlimited().enter("x").await.is_ok());
    }
}
