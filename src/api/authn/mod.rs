//! Authentication: a bearer token to a user, behind a trait.

mod static_tokens;
mod token_review;

use async_trait::async_trait;

pub use static_tokens::{StaticTokenError, StaticTokens};
pub use token_review::{TokenReviewAuthenticator, TokenReviewOptions};

use super::identity::UserInfo;

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("token review failed: {0}")]
    Backend(String),
    #[error("token review timed out")]
    Timeout,
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(None)`: the token is not valid (401). `Err`: no answer could be had (503).
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError>;
}
