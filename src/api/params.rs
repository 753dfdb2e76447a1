//! Query-string parameters of the list routes, parsed strictly: an unknown or malformed
//! parameter is a 400 with a message, never silently ignored.

use std::collections::BTreeMap;

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{error::ApiError, selector::parse_selector};
use crate::{
    catalog::AssetKind,
    store::{AssetQuery, AssetSort, AuditQuery, FacetField},
};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

pub type RawParams = BTreeMap<String, String>;

/// The query string as one value per parameter. A parameter given twice is a 400 rather than a
/// silent choice of one value; a list is one parameter with comma-separated values, and the
/// few list parameters that may also repeat ([`REPEATABLE`]) are joined with commas.
pub struct Params(pub RawParams);

/// Parameters that may be given more than once (`field=provider&field=license`).
const REPEATABLE: &[&str] = &["field"];

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut params = RawParams::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if REPEATABLE.contains(&key.as_ref())
                && let Some(joined) = params.get_mut(key.as_ref())
            {
                joined.push(',');
                joined.push_str(&value);
                continue;
            }
            if params.insert(key.to_string(), value.into_owned()).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "query parameter {key:?} is given more than once; give a list as comma-separated values"
                )));
            }
        }
        Ok(Self(params))
    }
}

pub fn reject_unknown(params: &RawParams, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter {unknown:?}; this route takes: {}",
            allowed.join(", ")
        )));
    }
    Ok(())
}

pub fn limit(params: &RawParams) -> Result<u64, ApiError> {
    bounded(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)
}

/// A whole-number parameter from 1 to `max`, `default` when absent.
fn bounded(params: &RawParams, key: &str, default: u64, max: u64) -> Result<u64, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "{key} must be a whole number from 1 to {max}, got {raw:?}"
            ))),
        },
    }
}

/// Non-empty, bounded text parameter.
fn text(params: &RawParams, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() > max => Err(ApiError::BadRequest(format!(
            "{key} is longer than {max} characters"
        ))),
        Some(v) => Ok(Some(v.clone())),
    }
}

/// `q`: no control characters (no field holds one, and the search joins fields with one).
fn search_text(params: &RawParams) -> Result<Option<String>, ApiError> {
    let q = text(params, "q", 256)?;
    if q.as_deref()
        .is_some_and(|q| q.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(
            "q must not contain control characters".into(),
        ));
    }
    Ok(q)
}

pub fn kind(params: &RawParams) -> Result<Option<AssetKind>, ApiError> {
    params
        .get("kind")
        .map(|raw| {
            raw.parse::<AssetKind>()
                .ok()
                .or_else(|| AssetKind::from_plural(raw))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "kind must be Model, McpServer or Agent, got {raw:?}"
                    ))
                })
        })
        .transpose()
}

pub fn sort(params: &RawParams) -> Result<AssetSort, ApiError> {
    match params.get("sort") {
        None => Ok(AssetSort::Key),
        Some(raw) => AssetSort::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "sort must be one of namespace, name, -name, updated, -updated; got {raw:?}"
            ))
        }),
    }
}

/// The filters every asset list shares.
pub fn asset_query(params: &RawParams) -> Result<AssetQuery, ApiError> {
    let approved = match params.get("approved").map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "approved must be true or false, got {other:?}"
            )));
        }
    };
    Ok(AssetQuery {
        kinds: None,
        kinds_by_namespace: None,
        sources: list(params, "source")?,
        providers: list(params, "provider")?,
        licenses: list(params, "license")?,
        tags: list(params, "tag")?,
        labels: match params.get("labelSelector") {
            Some(selector) => parse_selector(selector)?,
            None => Vec::new(),
        },
        stages: list(params, "stage")?,
        approved,
        text: search_text(params)?,
        name: None,
        version: text(params, "version", 128)?,
        object_name: None,
        namespace: None,
    })
}

/// `field` of the facets routes: the fields to count (every one when absent).
pub fn facet_fields(params: &RawParams) -> Result<Vec<FacetField>, ApiError> {
    let names = list(params, "field")?;
    if names.is_empty() {
        return Ok(FacetField::ALL.to_vec());
    }
    let mut fields = Vec::new();
    for name in names {
        let field = FacetField::parse(&name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "field must be one of {}; got {name:?}",
                FacetField::ALL.map(FacetField::as_str).join(", ")
            ))
        })?;
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    Ok(fields)
}

pub const DEFAULT_FACET_TOP: u64 = 10;
pub const MAX_FACET_TOP: u64 = 100;

/// `top`: how many values of each field a facet holds.
pub fn facet_top(params: &RawParams) -> Result<u64, ApiError> {
    bounded(params, "top", DEFAULT_FACET_TOP, MAX_FACET_TOP)
}

/// Filters of the audit lists.
pub const AUDIT_LIST_PARAMS: [&str; 9] = [
    "limit", "continue", "since", "until", "actor", "verb", "resource", "name", "uid",
];

fn time(params: &RawParams, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    params
        .get(key)
        .filter(|v| !v.is_empty())
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "{key} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got {raw:?}: {e}"
                    ))
                })
        })
        .transpose()
}

/// A comma-separated list of short values, any of which matches (at most 20, each at most 253
/// characters). Used alike by every filter that takes one.
fn list(params: &RawParams, key: &str) -> Result<Vec<String>, ApiError> {
    let Some(raw) = params.get(key) else {
        return Ok(Vec::new());
    };
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if items.len() > 20 || items.iter().any(|v| v.len() > 253) {
        return Err(ApiError::BadRequest(format!(
            "{key} takes at most 20 comma-separated values of at most 253 characters"
        )));
    }
    Ok(items)
}

pub fn audit_query(params: &RawParams) -> Result<AuditQuery, ApiError> {
    let query = AuditQuery {
        since: time(params, "since")?,
        until: time(params, "until")?,
        actors: list(params, "actor")?,
        verbs: list(params, "verb")?,
        resources: list(params, "resource")?,
        name: text(params, "name", 253)?,
        uid: text(params, "uid", 64)?,
    };
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(ApiError::BadRequest("since must be before until".into()));
    }
    Ok(query)
}
