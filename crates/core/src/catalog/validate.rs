//! Asset validation rules. Documented in docs/catalog-format.md; keep the two in step.

use std::collections::HashMap;

use super::{
    details,
    digest::canonical_json,
    error::Problem,
    model::{Asset, AssetKey, AssetKind},
};

pub const MAX_NAME: usize = 253;
pub const MAX_VERSION: usize = 128;
pub const MAX_SHORT_TEXT: usize = 256;
pub const MAX_DESCRIPTION: usize = 16 * 1024;
pub const MAX_TAGS: usize = 64;
pub const MAX_LABELS: usize = 64;
pub const MAX_LINKS: usize = 32;
pub const MAX_URI: usize = 2048;
pub const MAX_METADATA_BYTES: usize = 256 * 1024;

/// Validates every asset and the uniqueness of `(kind, name, version)`. Returns every problem
/// found, so one round trip shows the author everything to fix.
pub fn validate_assets(assets: &[Asset], list: &'static str) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut seen: HashMap<AssetKey, usize> = HashMap::with_capacity(assets.len());
    for (index, asset) in assets.iter().enumerate() {
        let mut report = |field: &str, message: String| {
            problems.push(Problem {
                list,
                index,
                field: Some(field.to_owned()),
                message,
            })
        };
        check_asset(asset, &mut report);
        let key = AssetKey {
            kind: asset.kind,
            name: asset.name.clone(),
            version: asset.version.clone(),
        };
        if let Some(first) = seen.get(&key) {
            problems.push(Problem {
                list,
                index,
                field: None,
                message: format!("duplicates {list}[{first}] ({key})"),
            });
        } else {
            seen.insert(key, index);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_asset(asset: &Asset, report: &mut impl FnMut(&str, String)) {
    if let Err(m) = validate_name(&asset.name) {
        report("name", m);
    }
    if let Err(m) = validate_version(&asset.version) {
        report("version", m);
    }
    for (field, value, max) in [
        ("displayName", &asset.display_name, MAX_SHORT_TEXT),
        ("description", &asset.description, MAX_DESCRIPTION),
        ("provider", &asset.provider, MAX_SHORT_TEXT),
        ("license", &asset.license, MAX_SHORT_TEXT),
    ] {
        if let Some(Err(m)) = value.as_deref().map(|v| check_text(v, max)) {
            report(field, m);
        }
    }
    if asset.tags.len() > MAX_TAGS {
        report(
            "tags",
            format!("at most {MAX_TAGS} tags, got {}", asset.tags.len()),
        );
    }
    for (i, tag) in asset.tags.iter().enumerate() {
        if let Err(m) = check_token(tag) {
            report(&format!("tags[{i}]"), m);
        }
    }
    if asset.labels.len() > MAX_LABELS {
        report(
            "labels",
            format!("at most {MAX_LABELS} labels, got {}", asset.labels.len()),
        );
    }
    for (key, value) in &asset.labels {
        if let Err(m) = validate_label_key(key) {
            report(&format!("labels[{key}]"), m);
        }
        if let Err(m) = validate_label_value(value) {
            report(&format!("labels[{key}]"), m);
        }
    }
    if asset.links.len() > MAX_LINKS {
        report(
            "links",
            format!("at most {MAX_LINKS} links, got {}", asset.links.len()),
        );
    }
    for (i, link) in asset.links.iter().enumerate() {
        if let Err(m) = check_token(&link.link_type) {
            report(&format!("links[{i}].type"), m);
        }
        if let Err(m) = check_uri(&link.uri) {
            report(&format!("links[{i}].uri"), m);
        }
    }
    if let Some(metadata) = &asset.metadata {
        if !metadata.is_object() {
            report("metadata", "must be a mapping".into());
        } else {
            let size = canonical_json(metadata).len();
            if size > MAX_METADATA_BYTES {
                report(
                    "metadata",
                    format!("is {size} bytes as JSON, over the limit of {MAX_METADATA_BYTES}"),
                );
            }
        }
    }
    match (&asset.mcp, asset.kind) {
        (Some(mcp), AssetKind::McpServer) => details::check_mcp(mcp, report),
        (Some(_), kind) => report("mcp", format!("is only for McpServer assets, not {kind}")),
        (None, _) => {}
    }
    match (&asset.agent, asset.kind) {
        (Some(agent), AssetKind::Agent) => details::check_agent(agent, report),
        (Some(_), kind) => report("agent", format!("is only for Agent assets, not {kind}")),
        (None, _) => {}
    }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// A segment: starts and ends with a letter or digit; `.`, `_`, `-` allowed between.
fn check_segment(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(is_alnum)
        && s.ends_with(is_alnum)
        && s.chars()
            .all(|c| is_alnum(c) || matches!(c, '.' | '_' | '-'))
}

/// Asset names: one segment, or `owner/name` as Hugging Face and Kubeflow catalogs use;
/// at most 253 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters"));
    }
    let mut parts = name.split('/');
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, None) => check_segment(a),
        (Some(a), Some(b), None) => check_segment(a) && check_segment(b),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: letters, digits, '.', '_' and '-', starting and ending with a letter or digit, optionally prefixed by one 'owner/'"
        ))
    }
}

fn validate_version(version: &str) -> Result<(), String> {
    if version.len() > MAX_VERSION {
        return Err(format!("at most {MAX_VERSION} characters"));
    }
    if version.is_empty()
        || (version.starts_with(is_alnum)
            && version
                .chars()
                .all(|c| is_alnum(c) || matches!(c, '.' | '_' | '-' | '+')))
    {
        Ok(())
    } else {
        Err(format!(
            "{version:?} is not a valid version: letters, digits, '.', '_', '-', '+', starting with a letter or digit"
        ))
    }
}

fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("is {} bytes, over the limit of {max}", value.len()));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// A tag: 1 to 63 letters, digits, `.`, `_` or `-`, starting and ending with a letter or digit.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    check_token(tag)
}

/// Tags and link types: 1 to 63 characters, a segment as in names.
fn check_token(value: &str) -> Result<(), String> {
    if value.len() <= 63 && check_segment(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
        ))
    }
}

fn check_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(format!("must be 1 to {MAX_URI} characters"));
    }
    let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    });
    if !scheme_ok {
        return Err(format!(
            "{uri:?} is not a URI with a scheme (like https: or oci:)"
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    Ok(())
}

/// Kubernetes label keys: optional DNS-subdomain prefix and `/`, then a name of at most 63.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if prefix_ok && name.len() <= 63 && check_segment(name) {
        Ok(())
    } else {
        Err(format!("{key:?} is not a valid label key"))
    }
}

/// Kubernetes label values: empty, or up to 63 characters as in a segment.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && check_segment(value)) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a valid label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "granite-3.1-8b",
            "rhelai1/granite-8b-code-base",
            "Llama_3",
            "x".repeat(253).as_str(),
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a/b/c",
            "/a",
            "a/",
            "a b",
            "a\u{0}",
            "ä",
            "x".repeat(254).as_str(),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_keys_and_values() {
        for ok in ["task", "curio.dev/team", "a.b-c/x_y.z"] {
            assert!(validate_label_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "Curio.dev/x", "a/b/c", "-x", &"x".repeat(64)] {
            assert!(validate_label_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("text-generation").is_ok());
        assert!(validate_label_value("a b").is_err());
    }

    #[test]
    fn uris() {
        assert!(check_uri("oci://quay.io/x:1").is_ok());
        assert!(check_uri("https://example.com/a b").is_err());
        assert!(check_uri("no-scheme").is_err());
        assert!(check_uri("1http://x").is_err());
    }
}
