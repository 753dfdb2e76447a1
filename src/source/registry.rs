//! Reading an MCP Registry API: every page of `GET {base}/v0.1/servers?version=latest`,
//! through the URL fetcher (its address policy, timeouts and size caps), and merging an
//! incremental answer into the servers a source already holds.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::http::{Credentials, UrlError, UrlFetcher, UrlRequest, UrlResponse};
use crate::catalog::OFFICIAL_META;

/// Servers per page asked for (the API's maximum).
const PAGE_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("fetching page {page} of the registry: {source}")]
    Url { page: usize, source: UrlError },
    #[error("page {page} of the registry is not a registry answer: {message}")]
    Malformed { page: usize, message: String },
    #[error("the registry lists more than {limit} servers")]
    TooMany { limit: usize },
    #[error("the registry's answers add up to more than {limit} bytes")]
    TooLarge { limit: usize },
}

impl RegistryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Url { source, .. } if source.is_transient())
    }

    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::Url {
                source: UrlError::Refused(_),
                ..
            } => "URLRefused",
            RegistryError::Url { .. } => "FetchFailed",
            RegistryError::Malformed { .. } => "InvalidCatalog",
            RegistryError::TooMany { .. } | RegistryError::TooLarge { .. } => "QuotaExceeded",
        }
    }
}

/// One sync's questions to a registry.
#[derive(Debug, Clone)]
pub struct RegistryRequest<'a> {
    /// The base URL; `/v0.1/servers` is appended.
    pub base: &'a str,
    pub search: Option<&'a str>,
    /// Only servers updated after this time.
    pub updated_since: Option<&'a str>,
    /// For each page.
    pub timeout: Duration,
    /// For all pages together.
    pub max_bytes: usize,
    pub max_servers: usize,
    pub credentials: Option<Credentials>,
}

/// The servers' `ServerResponse` entries (`{server, _meta}`), every page's.
pub async fn fetch_servers(
    urls: &UrlFetcher,
    request: &RegistryRequest<'_>,
) -> Result<Vec<Value>, RegistryError> {
    let mut servers = Vec::new();
    let mut cursor: Option<String> = None;
    let mut budget = request.max_bytes;
    // Enough pages for max_servers, and one to learn there are no more.
    let max_pages = request.max_servers / PAGE_LIMIT + 2;
    for page in 1..=max_pages {
        let url = page_url(request, cursor.as_deref())
            .map_err(|source| RegistryError::Url { page, source })?;
        let answer = urls
            .fetch(UrlRequest {
                url: url.as_str(),
                timeout: request.timeout,
                max_bytes: budget,
                credentials: request.credentials.clone(),
                if_none_match: None,
            })
            .await
            .map_err(|source| match source {
                UrlError::TooLarge { .. } => RegistryError::TooLarge {
                    limit: request.max_bytes,
                },
                source => RegistryError::Url { page, source },
            })?;
        let UrlResponse::Document { bytes, .. } = answer else {
            return Err(RegistryError::Malformed {
                page,
                message: "answered 304 to a request without a validator".into(),
            });
        };
        budget = budget.saturating_sub(bytes.len());
        let (items, next) =
            parse_page(&bytes).map_err(|message| RegistryError::Malformed { page, message })?;
        servers.extend(items);
        if servers.len() > request.max_servers {
            return Err(RegistryError::TooMany {
                limit: request.max_servers,
            });
        }
        match next {
            Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                return Err(RegistryError::Malformed {
                    page,
                    message: "the next cursor repeats the last one".into(),
                });
            }
            Some(next) => cursor = Some(next),
            None => return Ok(servers),
        }
    }
    Err(RegistryError::TooMany {
        limit: request.max_servers,
    })
}

fn page_url(request: &RegistryRequest<'_>, cursor: Option<&str>) -> Result<url::Url, UrlError> {
    let base = request.base.trim_end_matches('/');
    let mut url = url::Url::parse(&format!("{base}/v0.1/servers"))
        .map_err(|e| UrlError::InvalidUrl(e.to_string()))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("version", "latest");
        query.append_pair("limit", &PAGE_LIMIT.to_string());
        if let Some(search) = request.search {
            query.append_pair("search", search);
        }
        if let Some(since) = request.updated_since {
            query.append_pair("updated_since", since);
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
    }
    Ok(url)
}

/// A page's servers and its next cursor (absent or empty on the last page).
fn parse_page(bytes: &[u8]) -> Result<(Vec<Value>, Option<String>), String> {
    let page: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Some(Value::Array(servers)) = page.get("servers") else {
        return Err("it has no `servers` list".into());
    };
    let next = match page.get("metadata").and_then(|m| m.get("nextCursor")) {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.is_empty() => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => return Err("metadata.nextCursor must be a string".into()),
    };
    Ok((servers.clone(), next))
}

fn server_name(item: &Value) -> Option<&str> {
    item.get("server")
        .unwrap_or(item)
        .get("name")
        .and_then(Value::as_str)
}

fn official(item: &Value) -> Option<&Value> {
    item.get("_meta").and_then(|m| m.get(OFFICIAL_META))
}

/// The servers after an incremental answer: by server name (syncs ask for the latest
/// version), changed ones replace what was held, deleted ones go.
pub fn merge(held: Vec<Value>, changed: Vec<Value>) -> Vec<Value> {
    let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
    for item in held.into_iter().chain(changed) {
        let Some(name) = server_name(&item).map(str::to_owned) else {
            // Kept, so that parsing names the bad entry rather than dropping it silently.
            by_name.insert(format!("\u{0}{}", by_name.len()), item);
            continue;
        };
        let deleted = official(&item)
            .and_then(|o| o.get("status"))
            .and_then(Value::as_str)
            == Some("deleted");
        if deleted {
            by_name.remove(&name);
        } else {
            by_name.insert(name, item);
        }
    }
    by_name.into_values().collect()
}

/// The newest `updatedAt` the registry reported for any of `items`: where the next
/// incremental sync starts.
pub fn newest_update(items: &[Value]) -> Option<String> {
    items
        .iter()
        .filter_map(|item| official(item)?.get("updatedAt")?.as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
        .map(|t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(name: &str, version: &str, status: &str, updated: &str) -> Value {
        json!({"server": {"name": name, "version": version, "description": "d"},
               "_meta": {OFFICIAL_META: {"status": status, "updatedAt": updated}}})
    }

    #[test]
    fn changes_replace_by_name_and_deletions_remove() {
        let held = vec![
            item("a/x", "1.0.0", "active", "2026-01-01T00:00:00Z"),
            item("a/y", "1.0.0", "active", "2026-01-01T00:00:00Z"),
        ];
        let changed = vec![
            item("a/x", "2.0.0", "active", "2026-01-03T00:00:00Z"),
            item("a/y", "1.0.0", "deleted", "2026-01-02T00:00:00Z"),
            item("a/z", "0.1.0", "active", "2026-01-02T12:00:00Z"),
        ];
        let merged = merge(held, changed);
        let names: Vec<String> = merged
            .iter()
            .map(|i| {
                format!(
                    "{}@{}",
                    i["server"]["name"].as_str().unwrap(),
                    i["server"]["version"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(names, ["a/x@2.0.0", "a/z@0.1.0"]);
        assert_eq!(
            newest_update(&merged).as_deref(),
            Some("2026-01-03T00:00:00Z")
        );
        assert_eq!(newest_update(&[json!({"name": "bare"})]), None);
    }

    #[test]
    fn pages_must_be_registry_answers() {
        assert!(
            parse_page(b"{\"servers\": [], \"metadata\": {\"nextCursor\": \"\"}}")
                .unwrap()
                .1
                .is_none()
        );
        assert_eq!(
            parse_page(b"{\"servers\": [{}], \"metadata\": {\"nextCursor\": \"c\"}}")
                .unwrap()
                .1
                .as_deref(),
            Some("c")
        );
        assert!(parse_page(b"{\"items\": []}").is_err());
        assert!(parse_page(b"<html>").is_err());
        assert!(parse_page(b"{\"servers\": [], \"metadata\": {\"nextCursor\": 5}}").is_err());
    }

    #[test]
    fn page_urls_carry_the_filters() {
        let request = RegistryRequest {
            base: "https://registry.example.com/registry/namespaces/team-a/",
            search: Some("weather api"),
            updated_since: Some("2026-01-01T00:00:00Z"),
            timeout: Duration::from_secs(1),
            max_bytes: 1,
            max_servers: 1,
            credentials: None,
        };
        let url = page_url(&request, Some("abc")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://registry.example.com/registry/namespaces/team-a/v0.1/servers?version=latest&limit=100&search=weather+api&updated_since=2026-01-01T00%3A00%3A00Z&cursor=abc"
        );
    }
}
