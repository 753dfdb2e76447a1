//! The response cache: serialized answers, shared between callers only after each caller's
//! own checks passed, keyed by everything the answer depends on — the route, the namespaces
//! and kinds those checks allowed, the normalized query and the catalog revision of every
//! namespace involved. A refresh that changes a namespace moves its revision on, so its
//! cached answers are never hit again (and age out); other namespaces' answers stay.

use std::{future::Future, sync::Arc};

use moka::{future::Cache, notification::RemovalCause};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use sha2::{Digest, Sha256};

use super::{ApiState, error::ApiError, respond::Fixed};
use crate::{
    store::NamespaceScope,
    telemetry::{Registry, register},
};

#[derive(Clone, Debug, Default)]
pub struct CacheMetrics {
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    bytes: Gauge,
}

impl CacheMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            hits: "api_response_cache_hits", "Answers served from the response cache";
            misses: "api_response_cache_misses", "Answers built because the response cache had none";
            evictions: "api_response_cache_evictions", "Answers dropped from the response cache to stay within its size";
            bytes: "api_response_cache_bytes", "Bytes the response cache holds (keys and answers)";
        })
    }
}

/// A key: the SHA-256 of everything the answer depends on.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// `parts` must name everything the answer depends on, including the namespaces and kinds
    /// the caller was allowed and their revisions.
    pub fn of(parts: &impl std::fmt::Debug) -> Self {
        Self(Sha256::digest(format!("{parts:?}").as_bytes()).into())
    }
}

pub struct ResponseCache {
    cache: Option<Cache<CacheKey, Fixed>>,
    metrics: CacheMetrics,
}

impl ResponseCache {
    /// A cache of at most `max_bytes` (0: no cache at all, and no revision lookups).
    pub fn new(max_bytes: u64, metrics: CacheMetrics) -> Self {
        let cache = (max_bytes > 0).then(|| {
            let evictions = metrics.evictions.clone();
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key: &CacheKey, answer: &Fixed| {
                    u32::try_from(answer.weight() + 32).unwrap_or(u32::MAX)
                })
                .eviction_listener(move |_key, _body, cause| {
                    if cause == RemovalCause::Size {
                        evictions.inc();
                    }
                })
                .build()
        });
        Self { cache, metrics }
    }

    pub fn disabled() -> Self {
        Self::new(0, CacheMetrics::default())
    }

    pub fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The cached answer for `key`, or the one `build` makes (once for concurrent callers of
    /// the same key).
    pub async fn get_or_build<F, Fut>(&self, key: CacheKey, build: F) -> Result<Fixed, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, ApiError>>,
    {
        let Some(cache) = &self.cache else {
            return build().await.map(Fixed::from_bytes);
        };
        if let Some(body) = cache.get(&key).await {
            self.metrics.hits.inc();
            return Ok(body);
        }
        self.metrics.misses.inc();
        let body = cache
            .try_get_with(key, async move { build().await.map(Fixed::from_bytes) })
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())?;
        self.metrics
            .bytes
            .set(i64::try_from(cache.weighted_size()).unwrap_or(i64::MAX));
        Ok(body)
    }

    /// Bytes held, after pending evictions ran: for tests of the bound.
    pub async fn weighted_size(&self) -> u64 {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks().await;
                cache.weighted_size()
            }
            None => 0,
        }
    }
}

/// The answer for `key_parts` from the response cache, keyed also by the catalog revisions of
/// `scope` (read after the caller's own checks passed), or built by `build`.
pub async fn cached<F, Fut>(
    state: &ApiState,
    scope: &NamespaceScope,
    key_parts: &impl std::fmt::Debug,
    build: F,
) -> Result<Fixed, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<u8>, ApiError>>,
{
    if !state.responses.is_enabled() {
        return build().await.map(Fixed::from_bytes);
    }
    // The generation too: a database created again or restored repeats revision numbers.
    let revisions = state.store.catalog_revisions(scope).await?;
    let key = CacheKey::of(&(key_parts, &revisions));
    state.responses.get_or_build(key, build).await
}
