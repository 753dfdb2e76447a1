//! HTTP(S) catalog fetches, checked against an [`AddressPolicy`] after DNS resolution, for
//! IP-literal hosts, and on every redirect; a redirect never changes the scheme. Bounded by a
//! connect timeout, a total timeout and a size cap; `If-None-Match` makes an unchanged remote
//! cost one 304. Environment proxies are ignored: they would bypass the address checks.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{
    StatusCode, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::{ETAG, IF_NONE_MATCH},
    redirect,
};

use super::policy::AddressPolicy;

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("refused by the URL address policy: {0}")]
    Refused(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the document is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("request failed: {0}")]
    Transport(String),
}

impl UrlError {
    /// Whether retrying without a change could help.
    pub fn is_transient(&self) -> bool {
        match self {
            UrlError::Timeout(_) | UrlError::Transport(_) => true,
            UrlError::Status(code) => *code >= 500 || *code == 429,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

#[derive(Debug, Clone)]
pub struct UrlRequest<'a> {
    pub url: &'a str,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub credentials: Option<Credentials>,
    pub if_none_match: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlResponse {
    NotModified,
    Document {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

/// Resolves names and drops every address the policy refuses.
struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses the URL policy refuses").into(),
                );
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

fn literal_host_refused(url: &Url, policy: &AddressPolicy) -> Option<String> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !policy.permits(ip.into()) => Some(ip.to_string()),
        Some(url::Host::Ipv6(ip)) if !policy.permits(ip.into()) => Some(ip.to_string()),
        _ => None,
    }
}

#[derive(Clone)]
pub struct UrlFetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl UrlFetcher {
    pub fn new(policy: AddressPolicy, connect_timeout: Duration) -> Result<Self, UrlError> {
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect_timeout)
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .redirect(redirect::Policy::custom(move |attempt| {
                let scheme = attempt.previous().first().map(|u| u.scheme().to_owned());
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if scheme.as_deref() != Some(attempt.url().scheme()) {
                    let to = attempt.url().scheme().to_owned();
                    attempt.error(format!("redirect to another scheme ({to}) refused"))
                } else if let Some(ip) = literal_host_refused(attempt.url(), &redirect_policy) {
                    attempt.error(format!(
                        "redirect to {ip} refused by the URL address policy"
                    ))
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("curio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UrlError::Transport(e.to_string()))?;
        Ok(Self { client, policy })
    }

    pub async fn fetch(&self, request: UrlRequest<'_>) -> Result<UrlResponse, UrlError> {
        let url = Url::parse(request.url).map_err(|e| UrlError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::InvalidUrl(format!(
                "scheme {} is not http or https",
                url.scheme()
            )));
        }
        if let Some(ip) = literal_host_refused(&url, &self.policy) {
            return Err(UrlError::Refused(format!("{ip} is not an allowed address")));
        }
        let timeout = request.timeout;
        tokio::time::timeout(timeout, self.fetch_inner(url, request))
            .await
            .map_err(|_| UrlError::Timeout(timeout))?
    }

    async fn fetch_inner(
        &self,
        url: Url,
        request: UrlRequest<'_>,
    ) -> Result<UrlResponse, UrlError> {
        let mut builder = self.client.get(url);
        if let Some(etag) = request.if_none_match {
            builder = builder.header(IF_NONE_MATCH, etag);
        }
        builder = match &request.credentials {
            Some(Credentials::Bearer(token)) => builder.bearer_auth(token),
            Some(Credentials::Basic { username, password }) => {
                builder.basic_auth(username, Some(password))
            }
            None => builder,
        };
        let mut response = builder.send().await.map_err(|e| describe(&e))?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(UrlResponse::NotModified);
        }
        if !response.status().is_success() {
            return Err(UrlError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > request.max_bytes as u64)
        {
            return Err(UrlError::TooLarge {
                limit: request.max_bytes,
            });
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if bytes.len() + chunk.len() > request.max_bytes {
                return Err(UrlError::TooLarge {
                    limit: request.max_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(UrlResponse::Document { bytes, etag })
    }
}

/// The error chain as one line, so a refused redirect or address says so.
fn describe(error: &reqwest::Error) -> UrlError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    if message.contains("URL address policy") || message.contains("policy refuses") {
        UrlError::Refused(message)
    } else {
        UrlError::Transport(message)
    }
}
