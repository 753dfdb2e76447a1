//! Request rate limits per user and per namespace (token buckets, `governor`), so one caller or
//! one tenant's burst cannot starve the others. A user's bucket is charged once the request is
//! authenticated, before any other work; a namespace's once the caller is authorized to read it
//! (see `charges`). Over the limit: 429 with `Retry-After`. A namespace whose
//! CatalogPolicy sets `apiRateLimits` gets a bucket of that size instead of the flags' one.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use governor::{
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tokio::sync::watch;

use crate::cluster::policies::Policies;

/// A sustained rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit(Quota);

impl RateLimit {
    /// `per_second` requests a second, `burst` at once; `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Self(Quota::per_second(rate).allow_burst(burst)))
    }

    /// One request per `period`, `burst` at once; `None` for a zero period.
    pub fn every(period: Duration, burst: u32) -> Option<Self> {
        let burst = NonZeroU32::new(burst)?;
        Some(Self(Quota::with_period(period)?.allow_burst(burst)))
    }

    fn limiter(self) -> DefaultKeyedRateLimiter<String> {
        DefaultKeyedRateLimiter::keyed(self.0)
    }
}

/// Which bucket ran dry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    User,
    Namespace,
    /// A namespace's line of concurrent requests (see [`super::flow`]) was too long.
    Concurrency,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Namespace => "namespace",
            Scope::Concurrency => "concurrency",
        }
    }
}

/// Over the limit: which one, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    /// The namespace whose bucket ran dry (namespace scope).
    pub namespace: Option<String>,
    pub retry_after: Duration,
}

/// Per-namespace rates from CatalogPolicies, and a bucket for each namespace that has one.
struct PolicyRates {
    policies: Policies,
    changes: watch::Receiver<u64>,
    /// Each looked-up namespace's rate, for the policies as of the version it holds.
    rates: RwLock<(u64, HashMap<String, Option<RateLimit>>)>,
    buckets: Mutex<HashMap<String, (RateLimit, Arc<DefaultDirectRateLimiter>)>>,
}

impl PolicyRates {
    /// The rate a policy sets for `namespace`; `None` for namespaces that do not exist (so a
    /// client cannot grow these tables with made-up names) or that no policy gives a rate.
    fn rate_for(&self, namespace: &str) -> Option<RateLimit> {
        let version = *self.changes.borrow();
        {
            let rates = self
                .rates
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if rates.0 == version
                && let Some(rate) = rates.1.get(namespace)
            {
                return *rate;
            }
        }
        if !self.policies.knows_namespace(namespace) {
            return None;
        }
        let rate = self
            .policies
            .for_namespace(namespace)
            .namespace_rate
            .and_then(|bound| RateLimit::new(bound.value.0, bound.value.1));
        let mut rates = self
            .rates
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if rates.0 != version {
            *rates = (version, HashMap::new());
        }
        rates.1.insert(namespace.to_owned(), rate);
        rate
    }

    fn bucket(&self, namespace: &str, rate: RateLimit) -> Arc<DefaultDirectRateLimiter> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match buckets.get(namespace) {
            Some((current, bucket)) if *current == rate => bucket.clone(),
            _ => {
                let bucket = Arc::new(RateLimiter::direct(rate.0));
                buckets.insert(namespace.to_owned(), (rate, bucket.clone()));
                bucket
            }
        }
    }
}

pub struct RateLimits {
    users: Option<DefaultKeyedRateLimiter<String>>,
    namespaces: Option<DefaultKeyedRateLimiter<String>>,
    policy_rates: Option<PolicyRates>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(per_user: Option<RateLimit>, per_namespace: Option<RateLimit>) -> Self {
        Self {
            users: per_user.map(RateLimit::limiter),
            namespaces: per_namespace.map(RateLimit::limiter),
            policy_rates: None,
            clock: DefaultClock::default(),
        }
    }

    /// Namespaces whose CatalogPolicies set `apiRateLimits` get those instead of
    /// `per_namespace`.
    pub fn with_policies(self, policies: Policies) -> Self {
        Self {
            policy_rates: Some(PolicyRates {
                changes: policies.changes(),
                policies,
                rates: RwLock::new((0, HashMap::new())),
                buckets: Mutex::new(HashMap::new()),
            }),
            ..self
        }
    }

    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    /// Takes one request from `user`'s bucket and from each of `namespaces`' buckets (the API
    /// charges the two at different points; see `charges`).
    #[cfg(test)]
    pub fn check<'a>(
        &self,
        user: &str,
        namespaces: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Limited> {
        self.check_user(user)?;
        namespaces
            .into_iter()
            .try_for_each(|namespace| self.check_namespace(namespace))
    }

    /// Takes one request from `user`'s bucket.
    pub fn check_user(&self, user: &str) -> Result<(), Limited> {
        let Some(users) = &self.users else {
            return Ok(());
        };
        users
            .check_key(&user.to_owned())
            .map_err(|not_until| Limited {
                scope: Scope::User,
                namespace: None,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Takes one request from `namespace`'s bucket: its CatalogPolicy's, else the flags'.
    pub fn check_namespace(&self, namespace: &str) -> Result<(), Limited> {
        let refused = |not_until: governor::NotUntil<_>| Limited {
            scope: Scope::Namespace,
            namespace: Some(namespace.to_owned()),
            retry_after: not_until.wait_time_from(self.clock.now()),
        };
        let policy_rate = self
            .policy_rates
            .as_ref()
            .and_then(|rates| Some((rates, rates.rate_for(namespace)?)));
        match (policy_rate, &self.namespaces) {
            (Some((rates, rate)), _) => rates.bucket(namespace, rate).check().map_err(refused),
            (None, Some(buckets)) => buckets.check_key(&namespace.to_owned()).map_err(refused),
            (None, None) => Ok(()),
        }
    }

    /// Drops the buckets of callers and namespaces idle long enough to be full again, so the
    /// table does not grow with every name ever seen. Call it now and then.
    pub fn forget_idle(&self) {
        for limiter in [&self.users, &self.namespaces].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_user_and_per_namespace() {
        let minute = Duration::from_secs(60);
        let limits = RateLimits::new(RateLimit::every(minute, 2), RateLimit::every(minute, 3));
        assert!(limits.check("alice", ["team-a"]).is_ok());
        assert!(limits.check("alice", ["team-a"]).is_ok());
        let over = limits.check("alice", ["team-a"]).unwrap_err();
        assert_eq!(over.scope, Scope::User);
        assert!(over.retry_after > Duration::ZERO);
        assert!(limits.check("bob", ["team-b"]).is_ok(), "bob has his own");
        // A request refused by its user's bucket takes nothing from the namespace's: team-a
        // has given two, bob takes the third, and the fourth is over, whoever asks.
        assert!(limits.check("bob", ["team-a"]).is_ok());
        let over = limits.check("vera", ["team-a"]).unwrap_err();
        assert_eq!(over.scope, Scope::Namespace);
        assert!(RateLimits::unlimited().check("x", ["y"]).is_ok());
    }

    #[test]
    fn a_policy_gives_its_namespaces_their_own_rate_and_only_real_namespaces_count() {
        use crate::cluster::policies::StaticPolicies;
        let view = Arc::new(StaticPolicies::default());
        view.set_namespace_labels("gold", [("tier".to_owned(), "gold".to_owned())].into());
        view.set_namespace_labels("plain", Default::default());
        view.replace_policies(vec![
            serde_json::from_value(serde_json::json!({
                "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogPolicy",
                "metadata": {"name": "gold"},
                "spec": {"namespaceSelector": {"matchLabels": {"tier": "gold"}},
                         "apiRateLimits": {"namespaceRequestsPerSecond": 1, "namespaceBurst": 5}}
            }))
            .unwrap(),
        ]);
        let minute = Duration::from_secs(60);
        let limits = RateLimits::new(None, RateLimit::every(minute, 2))
            .with_policies(Policies::new(view.clone(), false));
        for _ in 0..5 {
            assert!(
                limits.check("u", ["gold"]).is_ok(),
                "the policy's burst is 5"
            );
        }
        let over = limits.check("u", ["gold"]).unwrap_err();
        assert_eq!(
            (over.scope, over.namespace.as_deref()),
            (Scope::Namespace, Some("gold"))
        );
        assert!(limits.check("u", ["plain"]).is_ok());
        assert!(limits.check("u", ["plain"]).is_ok());
        assert!(
            limits.check("u", ["plain"]).is_err(),
            "the flags' burst is 2"
        );
        // A made-up namespace gets the flags' bucket, and no policy table entry.
        assert!(limits.check("u", ["made-up"]).is_ok());
        assert!(
            !limits
                .policy_rates
                .as_ref()
                .unwrap()
                .rates
                .read()
                .unwrap()
                .1
                .contains_key("made-up")
        );
        // The policy loosens: the namespace gets a new, full bucket at once.
        view.replace_policies(Vec::new());
        assert!(limits.check("u", ["gold"]).is_ok());
    }
}
