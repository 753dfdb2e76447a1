//! Leader election on a `coordination.k8s.io/v1` Lease, after client-go's rules:
//! - every acquire, renew and release carries the Lease's `resourceVersion`, so a conflict
//!   means another replica won and this one is not the leader;
//! - expiry is judged by when this process last saw the Lease change, never by timestamps
//!   another process wrote (clocks differ);
//! - leadership is published on a `watch` channel with a local deadline (the last successful
//!   renewal plus the renew deadline, which is shorter than the lease duration); reconciles and
//!   store writes check it first, and when renewal misses it the replica stops (fail-stop).

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams};
use tokio::{sync::watch, time::Instant};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

use crate::telemetry::{Registry, register};

/// Leadership metrics of this replica.
#[derive(Clone, Debug, Default)]
pub struct LeaderMetrics {
    /// 1 while this replica holds the controller Lease.
    leader: Gauge,
    transitions: Counter,
}

impl LeaderMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            leader: "leader", "1 while this replica holds the controller Lease";
            transitions: "leader_transitions", "Times this replica gained or lost leadership";
        })
    }
}

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (pod name, or host and pid).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What reconcilers see: leader only while `deadline` is in the future.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    pub leader: bool,
    pub deadline: Option<Instant>,
}

impl Leadership {
    pub fn is_leader_now(&self) -> bool {
        self.leader && self.deadline.is_some_and(|d| Instant::now() < d)
    }
}

/// The Lease as this process last saw it, and when it last saw it change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub resource_version: String,
    pub holder: Option<String>,
    pub changed_at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ours: renew it.
    Renew,
    /// Free, or its holder stopped renewing: take it.
    Acquire,
    /// Someone else holds it and renews it.
    Wait,
}

/// The pure decision for one round, from what has been observed.
pub fn decide(identity: &str, observed: &Observed, now: Instant, lease_duration: Duration) -> Step {
    match observed.holder.as_deref() {
        Some(holder) if holder == identity => Step::Renew,
        None | Some("") => Step::Acquire,
        Some(_) if now.duration_since(observed.changed_at) >= lease_duration => Step::Acquire,
        Some(_) => Step::Wait,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElectorError {
    #[error("Lease API error: {0}")]
    Api(#[from] kube::Error),
}

pub struct LeaseElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observed>,
    leadership: watch::Sender<Leadership>,
    metrics: LeaderMetrics,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaseElector {
    pub fn new(
        client: Client,
        config: LeaseConfig,
        metrics: LeaderMetrics,
    ) -> (Self, watch::Receiver<Leadership>) {
        let (leadership, receiver) = watch::channel(Leadership::default());
        let api = Api::namespaced(client, &config.namespace);
        (
            Self {
                api,
                config,
                observed: None,
                leadership,
                metrics,
            },
            receiver,
        )
    }

    fn publish(&self, next: Leadership) {
        let was = self.leadership.borrow().leader;
        if was != next.leader {
            self.metrics.transitions.inc();
            tracing::info!(leader = next.leader, lease = %self.config.name, "leadership changed");
        }
        self.metrics.leader.set(i64::from(next.leader));
        self.leadership.send_replace(next);
    }

    fn lead_until(&self, renewed_at: Instant) {
        self.publish(Leadership {
            leader: true,
            deadline: Some(renewed_at + self.config.renew_deadline),
        });
    }

    fn step_down(&self) {
        self.publish(Leadership::default());
    }

    /// Drops leadership whose deadline has passed: fail-stop when renewal is not succeeding.
    fn enforce_deadline(&self) {
        let current = *self.leadership.borrow();
        if current.leader && !current.is_leader_now() {
            tracing::warn!(lease = %self.config.name, "renewal missed its deadline; stopping");
            self.step_down();
        }
    }

    fn remember(&mut self, lease: &Lease, now: Instant) {
        let resource_version = lease.metadata.resource_version.clone().unwrap_or_default();
        let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != resource_version);
        let changed_at = match &self.observed {
            Some(o) if !changed => o.changed_at,
            _ => now,
        };
        self.observed = Some(Observed {
            resource_version,
            holder,
            changed_at,
        });
    }

    /// One round: read the Lease, then acquire, renew or wait.
    pub async fn step(&mut self) -> Result<(), ElectorError> {
        let result = self.try_step().await;
        self.enforce_deadline();
        result
    }

    async fn try_step(&mut self) -> Result<(), ElectorError> {
        let now = Instant::now();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return self.create(now).await;
        };
        self.remember(&lease, now);
        let Some(observed) = &self.observed else {
            return Ok(());
        };
        let step = decide(
            &self.config.identity,
            observed,
            now,
            self.config.lease_duration,
        );
        if step == Step::Wait {
            if self.leadership.borrow().leader {
                self.step_down();
            }
            return Ok(());
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.renew_time = Some(micro_now());
        spec.lease_duration_seconds = Some(self.config.lease_duration.as_secs() as i32);
        if step == Step::Acquire {
            spec.holder_identity = Some(self.config.identity.clone());
            spec.acquire_time = Some(micro_now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        // `lease` still carries the resourceVersion it was read with: the precondition.
        let written = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await;
        self.settle(written, now)
    }

    /// Leads after a successful write; a conflict means another replica wrote first (or won
    /// the race to create it), so this one is not the leader, whatever its deadline says.
    fn settle(
        &mut self,
        written: Result<Lease, kube::Error>,
        now: Instant,
    ) -> Result<(), ElectorError> {
        match written {
            Ok(lease) => {
                self.remember(&lease, now);
                self.lead_until(now);
                Ok(())
            }
            Err(e) if is_conflict(&e) => {
                self.step_down();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn create(&mut self, now: Instant) -> Result<(), ElectorError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let written = self.api.create(&PostParams::default(), &lease).await;
        self.settle(written, now)
    }

    /// Gives the Lease up (on SIGTERM) under the same precondition, so a successor need not
    /// wait for it to expire.
    pub async fn release(&mut self) -> Result<(), ElectorError> {
        let was_leader = self.leadership.borrow().leader;
        self.step_down();
        if !was_leader {
            return Ok(());
        }
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro_now());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs rounds every `retry_period` until `shutdown`, then releases the Lease.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, lease = %self.config.name, "leader election round failed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                () = &mut shutdown => break,
            }
        }
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "releasing the Lease failed; it will expire");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn elector(renew_deadline: Duration) -> (LeaseElector, watch::Receiver<Leadership>, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "curio-system");
        let mut config = LeaseConfig::new("curio-controller", "curio-system", "me");
        config.renew_deadline = renew_deadline;
        let (elector, rx) = LeaseElector::new(client, config, LeaderMetrics::default());
        (elector, rx, handle)
    }

    fn lease(holder: &str, resource_version: &str) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "curio-controller", "namespace": "curio-system", "resourceVersion": resource_version},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
        })
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason})
    }

    /// Answers the next request after checking its method; returns the request body as JSON.
    async fn answer(
        handle: &mut Handle,
        method: Method,
        code: u16,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let (request, respond) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method, "{}", request.uri());
        assert!(
            request
                .uri()
                .path()
                .contains("/namespaces/curio-system/leases"),
            "{}",
            request.uri()
        );
        let sent = request.into_body().collect_bytes().await.unwrap();
        respond.send_response(
            Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
        serde_json::from_slice(&sent).unwrap_or(serde_json::Value::Null)
    }

    #[test]
    fn decisions_follow_client_go() {
        let now = Instant::now();
        let fresh = |holder: Option<&str>| Observed {
            resource_version: "1".into(),
            holder: holder.map(Into::into),
            changed_at: now,
        };
        let d = Duration::from_secs(15);
        assert_eq!(decide("me", &fresh(Some("me")), now, d), Step::Renew);
        assert_eq!(decide("me", &fresh(None), now, d), Step::Acquire);
        assert_eq!(decide("me", &fresh(Some("other")), now, d), Step::Wait);
        assert_eq!(
            decide(
                "me",
                &fresh(Some("other")),
                now + Duration::from_secs(14),
                d
            ),
            Step::Wait
        );
        assert_eq!(
            decide("me", &fresh(Some("other")), now + d, d),
            Step::Acquire,
            "unchanged for a whole lease duration"
        );
    }

    #[tokio::test]
    async fn a_lost_create_race_is_not_leadership() {
        let (mut elector, rx, mut handle) = elector(Duration::from_secs(10));
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, 404, status(404, "NotFound")).await;
            let created =
                answer(&mut handle, Method::POST, 409, status(409, "AlreadyExists")).await;
            assert_eq!(created["spec"]["holderIdentity"], "me");
        });
        elector.step().await.unwrap();
        server.await.unwrap();
        assert!(!rx.borrow().is_leader_now());
    }

    #[tokio::test]
    async fn a_lease_renewed_by_another_is_waited_for_without_writing() {
        let (mut elector, rx, mut handle) = elector(Duration::from_secs(10));
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, 200, lease("other", "7")).await;
            // No write may follow: the next request must not exist.
            assert!(
                tokio::time::timeout(Duration::from_millis(100), handle.next_request())
                    .await
                    .is_err()
            );
        });
        elector.step().await.unwrap();
        server.await.unwrap();
        assert!(!rx.borrow().leader);
    }

    #[tokio::test]
    async fn a_renew_conflict_drops_leadership_before_the_deadline() {
        let (mut elector, rx, mut handle) = elector(Duration::from_secs(10));
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, 404, status(404, "NotFound")).await;
            answer(&mut handle, Method::POST, 201, lease("me", "1")).await;
            answer(&mut handle, Method::GET, 200, lease("me", "1")).await;
            let renewal = answer(&mut handle, Method::PUT, 409, status(409, "Conflict")).await;
            assert_eq!(
                renewal["metadata"]["resourceVersion"], "1",
                "the renewal carried its precondition"
            );
            handle
        });
        elector.step().await.unwrap();
        assert!(rx.borrow().is_leader_now());
        let deadline = rx.borrow().deadline.unwrap();
        elector.step().await.unwrap();
        let _handle = server.await.unwrap();
        assert!(Instant::now() < deadline, "the deadline has not passed…");
        assert!(!rx.borrow().leader, "…but leadership is already gone");
    }

    #[tokio::test]
    async fn renewal_errors_keep_leadership_only_until_the_deadline() {
        let (mut elector, rx, mut handle) = elector(Duration::from_millis(200));
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, 404, status(404, "NotFound")).await;
            answer(&mut handle, Method::POST, 201, lease("me", "1")).await;
            answer(&mut handle, Method::GET, 500, status(500, "InternalError")).await;
            answer(&mut handle, Method::GET, 500, status(500, "InternalError")).await;
        });
        elector.step().await.unwrap();
        assert!(elector.step().await.is_err());
        assert!(
            rx.borrow().is_leader_now(),
            "a failed round within the deadline keeps leadership"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            !rx.borrow().is_leader_now(),
            "readers see the deadline pass at once"
        );
        assert!(elector.step().await.is_err());
        server.await.unwrap();
        assert!(!rx.borrow().leader, "fail-stop");
    }

    #[tokio::test]
    async fn release_gives_the_lease_up_under_its_precondition() {
        let (mut elector, rx, mut handle) = elector(Duration::from_secs(10));
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, 404, status(404, "NotFound")).await;
            answer(&mut handle, Method::POST, 201, lease("me", "1")).await;
            answer(&mut handle, Method::GET, 200, lease("me", "2")).await;
            let released = answer(&mut handle, Method::PUT, 200, lease("", "3")).await;
            assert_eq!(released["metadata"]["resourceVersion"], "2");
            assert!(released["spec"]["holderIdentity"].is_null());
        });
        elector.step().await.unwrap();
        elector.release().await.unwrap();
        server.await.unwrap();
        assert!(!rx.borrow().leader);
    }
}
