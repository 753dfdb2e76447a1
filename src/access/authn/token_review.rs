//! TokenReview against the apiserver, cached by a digest of the token.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::{Api, Client, api::PostParams};
use moka::{Expiry, future::Cache};
use sha2::{Digest, Sha256};

use super::{Authenticator, AuthnError};
use crate::access::{identity::UserInfo, metrics::AccessMetrics};

#[derive(Clone, Debug)]
pub struct TokenReviewOptions {
    pub valid_ttl: Duration,
    pub invalid_ttl: Duration,
    pub capacity: u64,
    pub timeout: Duration,
    /// Audiences to ask for; empty means the apiserver's defaults.
    pub audiences: Vec<String>,
}

impl Default for TokenReviewOptions {
    fn default() -> Self {
        Self {
            valid_ttl: Duration::from_secs(60),
            invalid_ttl: Duration::from_secs(10),
            capacity: 10_000,
            timeout: Duration::from_secs(5),
            audiences: Vec::new(),
        }
    }
}

struct ByOutcome {
    valid: Duration,
    invalid: Duration,
}

impl Expiry<[u8; 32], Option<UserInfo>> for ByOutcome {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Option<UserInfo>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            self.valid
        } else {
            self.invalid
        })
    }
}

pub struct TokenReviewAuthenticator {
    api: Api<TokenReview>,
    cache: Cache<[u8; 32], Option<UserInfo>>,
    options: TokenReviewOptions,
    metrics: AccessMetrics,
}

impl TokenReviewAuthenticator {
    pub fn new(client: Client, options: TokenReviewOptions, metrics: AccessMetrics) -> Self {
        let cache = Cache::builder()
            .max_capacity(options.capacity)
            .expire_after(ByOutcome {
                valid: options.valid_ttl,
                invalid: options.invalid_ttl,
            })
            .build();
        Self {
            api: Api::all(client),
            cache,
            options,
            metrics,
        }
    }

    async fn review(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: (!self.options.audiences.is_empty())
                    .then(|| self.options.audiences.clone()),
            },
            ..Default::default()
        };
        let response = tokio::time::timeout(
            self.options.timeout,
            self.api.create(&PostParams::default(), &review),
        )
        .await
        .map_err(|_| AuthnError::Timeout)?
        .map_err(|e| AuthnError::Backend {
            source: std::sync::Arc::new(e),
        })?;
        let status = response.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        let Some(username) = user.username.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let mut info = UserInfo::authenticated(username, user.uid, user.groups.unwrap_or_default());
        info.extra = user.extra.unwrap_or_default().into_iter().collect();
        Ok(Some(info))
    }
}

#[async_trait]
impl Authenticator for TokenReviewAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cache.get(&key).await {
            self.metrics.cache_lookup("tokenreview", true);
            return Ok(hit);
        }
        self.metrics.cache_lookup("tokenreview", false);
        // Concurrent lookups of one token share a single review.
        self.cache
            .try_get_with(key, self.review(token))
            .await
            .map_err(|e| e.as_ref().clone())
    }
}
