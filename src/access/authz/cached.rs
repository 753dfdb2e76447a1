//! A decision cache in front of any authorizer: allowed answers kept longer than denied ones
//! (as the kubelet's webhook authorizer does), bounded in size, and concurrent identical
//! questions coalesced into one upstream check. Errors are never cached.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use moka::{Expiry, future::Cache};

use super::{Attributes, Authorizer, AuthzError, Decision};
use crate::access::metrics::AccessMetrics;

#[derive(Clone, Debug)]
pub struct CacheOptions {
    pub allowed_ttl: Duration,
    pub denied_ttl: Duration,
    pub capacity: u64,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            allowed_ttl: Duration::from_secs(300),
            denied_ttl: Duration::from_secs(30),
            capacity: 100_000,
        }
    }
}

struct ByDecision {
    allowed: Duration,
    denied: Duration,
}

impl Expiry<Attributes, Decision> for ByDecision {
    fn expire_after_create(
        &self,
        _key: &Attributes,
        value: &Decision,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.allowed() {
            self.allowed
        } else {
            self.denied
        })
    }
}

pub struct CachedAuthorizer<A> {
    inner: Arc<A>,
    cache: Cache<Attributes, Decision>,
    metrics: AccessMetrics,
}

impl<A: Authorizer> CachedAuthorizer<A> {
    pub fn new(inner: A, options: CacheOptions, metrics: AccessMetrics) -> Self {
        let cache = Cache::builder()
            .max_capacity(options.capacity)
            .expire_after(ByDecision {
                allowed: options.allowed_ttl,
                denied: options.denied_ttl,
            })
            .build();
        Self {
            inner: Arc::new(inner),
            cache,
            metrics,
        }
    }
}

#[async_trait]
impl<A: Authorizer> Authorizer for CachedAuthorizer<A> {
    async fn authorize(&self, attributes: &Attributes) -> Result<Decision, AuthzError> {
        if let Some(hit) = self.cache.get(attributes).await {
            self.metrics.cache_lookup("authorization", true);
            return Ok(hit);
        }
        self.metrics.cache_lookup("authorization", false);
        let inner = self.inner.clone();
        let question = attributes.clone();
        self.cache
            .try_get_with(attributes.clone(), async move {
                inner.authorize(&question).await
            })
            .await
            .map_err(|e| e.as_ref().clone())
    }
}
