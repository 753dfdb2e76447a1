//! Authentication: a bearer token to a user, behind a trait.

mod static_tokens;
mod token_review;

use async_trait::async_trait;

pub use static_tokens::{StaticTokenError, StaticTokens, entries as token_entries};
pub use token_review::{TokenReviewAuthenticator, TokenReviewOptions};

use super::identity::UserInfo;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthnError {
    #[error("token review failed: {source}")]
    Backend {
        // Shared, so one failed review can answer every caller it was coalesced with.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    #[error("token review timed out")]
    Timeout,
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(None)`: the token is not valid (401). `Err`: no answer could be had (503).
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError>;
}
