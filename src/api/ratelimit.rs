//! Request rate limits per user and per namespace (token buckets, `governor`), so one caller or
//! one tenant's burst cannot starve the others. Checked once a request is authenticated, before
//! any authorization or store work. Over the limit: 429 with `Retry-After`.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};

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
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Namespace => "namespace",
        }
    }
}

/// Over the limit: which one, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: Duration,
}

pub struct RateLimits {
    users: Option<DefaultKeyedRateLimiter<String>>,
    namespaces: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(per_user: Option<RateLimit>, per_namespace: Option<RateLimit>) -> Self {
        Self {
            users: per_user.map(RateLimit::limiter),
            namespaces: per_namespace.map(RateLimit::limiter),
            clock: DefaultClock::default(),
        }
    }

    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    /// Takes one request from `user`'s bucket and from each of `namespaces`' buckets.
    pub fn check<'a>(
        &self,
        user: &str,
        namespaces: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Limited> {
        let over = |scope, limiter: &DefaultKeyedRateLimiter<String>, key: &str| {
            limiter
                .check_key(&key.to_owned())
                .map_err(|not_until| Limited {
                    scope,
                    retry_after: not_until.wait_time_from(self.clock.now()),
                })
        };
        if let Some(users) = &self.users {
            over(Scope::User, users, user)?;
        }
        if let Some(buckets) = &self.namespaces {
            for namespace in namespaces {
                over(Scope::Namespace, buckets, namespace)?;
            }
        }
        Ok(())
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

/// The namespaces a request names: in its path (`/namespaces/{ns}/…`) and in the `namespace`
/// and `namespaces` parameters. At most `max`; a malformed one is the handler's to refuse.
pub fn named_namespaces(path: &str, query: Option<&str>, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut segments = path.split('/');
    while let Some(segment) = segments.next() {
        if segment == "namespaces"
            && let Some(ns) = segments.next()
        {
            out.push(ns.to_owned());
        }
    }
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "namespace" || key == "namespaces" {
            out.extend(
                value
                    .split(',')
                    .map(|v| v.trim_matches(' '))
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out.sort();
    out.dedup();
    out.truncate(max);
    out
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
    fn namespaces_come_from_the_path_and_the_parameters() {
        assert_eq!(
            named_namespaces(
                "/api/v1/namespaces/team-a/models",
                Some("namespaces=team-b,%20team-c&namespace=team-a"),
                10
            ),
            ["team-a", "team-b", "team-c"]
        );
        assert_eq!(named_namespaces("/healthz", None, 10), Vec::<String>::new());
    }
}
