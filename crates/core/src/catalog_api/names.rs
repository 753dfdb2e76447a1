//! Object names for assets in the `catalog.curio.dev` API.
//!
//! An asset is identified in its namespace by (source, kind, name, version), where the name and
//! version are free text (`meta-llama/Llama-3.1-8B-Instruct`, `3.1`) and a Kubernetes object
//! name must be a DNS-1123 subdomain. The kind is the resource, so the name carries the rest:
//!
//! - **Plain** when the name is a DNS-1123 label (`granite-3-8b-instruct`), the version dot
//!   separated lower-case alphanumerics (`3.0`, `v2`) and the source a DNS-1123 label:
//!   `{name}.v{version, dots as dashes}.{source}` — `granite-3-8b-instruct.v3-0.ibm`.
//!   Three dot-separated segments, and it reads back exactly.
//! - **Hashed** otherwise: each part lower-cased with every run of other characters as one
//!   dash (and cut short), then the first 10 hex digits of the SHA-256 of the exact parts:
//!   `meta-llama-llama-3-1-8b-instruct.v3-1.hf.x1f2e3d4c5b`. Four segments, so a hashed name
//!   never equals a plain one, and two hashed names are equal only if their hashes are.

use sha2::{Digest, Sha256};

/// The longest object name Kubernetes allows.
pub const MAX_OBJECT_NAME: usize = 253;
const NAME_BUDGET: usize = 140;
const VERSION_BUDGET: usize = 40;
const SOURCE_BUDGET: usize = 50;

/// The object name of the asset `name` at `version` from `source`.
pub fn object_name(source: &str, name: &str, version: &str) -> String {
    if is_label(name) && is_plain_version(version) && is_label(source) {
        let plain = format!("{name}.v{}.{source}", version.replace('.', "-"));
        if plain.len() <= MAX_OBJECT_NAME {
            return plain;
        }
    }
    let mut hasher = Sha256::new();
    for part in [source, name, version] {
        // Length-prefixed, so ("a", "bc") and ("ab", "c") hash apart.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    format!(
        "{}.v{}.{}.x{}",
        slug(name, NAME_BUDGET, "asset"),
        slug(version, VERSION_BUDGET, "0"),
        slug(source, SOURCE_BUDGET, "source"),
        &digest[..10]
    )
}

/// The (name, version, source) a plain object name was made from; `None` for a hashed one
/// (look it up instead) or a name this mapping never makes.
pub fn parse_plain(object: &str) -> Option<(String, String, String)> {
    let mut parts = object.split('.');
    let (name, version, source) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let version = version.strip_prefix('v')?.replace('-', ".");
    (is_label(name) && is_plain_version(&version) && is_label(source))
        .then(|| (name.to_owned(), version, source.to_owned()))
}

/// A DNS-1123 label: lower-case alphanumerics and dashes, alphanumeric at both ends, ≤ 63.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Dot-separated runs of lower-case alphanumerics: `3.0`, `v2`, `2024.10.1`.
fn is_plain_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Lower case, every run of other characters one dash, no dash at either end, at most
/// `budget` bytes; `fallback` when nothing is left.
fn slug(s: &str, budget: usize, fallback: &str) -> String {
    let mut out = String::with_capacity(s.len().min(budget));
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= budget {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        fallback.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Whether `s` is a DNS-1123 subdomain (a valid object name).
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_OBJECT_NAME
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_read_as_they_were_written() {
        assert_eq!(
            object_name("ibm", "granite-3-8b-instruct", "3.0"),
            "granite-3-8b-instruct.v3-0.ibm"
        );
        assert_eq!(
            parse_plain("granite-3-8b-instruct.v3-0.ibm"),
            Some(("granite-3-8b-instruct".into(), "3.0".into(), "ibm".into()))
        );
        assert_eq!(object_name("s", "fetch", "v2"), "fetch.vv2.s");
    }

    #[test]
    fn other_names_are_slugged_and_hashed() {
        let name = object_name("hf", "meta-llama/Llama-3.1-8B-Instruct", "3.1");
        assert!(
            name.starts_with("meta-llama-llama-3-1-8b-instruct.v3-1.hf.x"),
            "{name}"
        );
        assert_eq!(name.split('.').count(), 4);
        assert!(is_subdomain(&name));
        assert_eq!(parse_plain(&name), None);
        // Case and punctuation that slug alike still name different objects.
        assert_ne!(
            object_name("hf", "Llama", "1"),
            object_name("hf", "llama!", "1")
        );
        assert_ne!(object_name("s", "a", "1-0"), object_name("s", "a", "1.0"));
        assert_eq!(
            object_name("s", "///", "...").split('.').next(),
            Some("asset")
        );
    }

    #[test]
    fn long_names_fit() {
        let long = "a".repeat(300);
        let name = object_name(&"s".repeat(63), &long, &"1".repeat(100));
        assert!(is_subdomain(&name), "{name}");
    }

    proptest! {
        #[test]
        fn every_name_is_a_subdomain_and_deterministic(
            source in "[a-z0-9.-]{1,63}", name in "\\PC{1,300}", version in "\\PC{1,64}"
        ) {
            let object = object_name(&source, &name, &version);
            prop_assert!(is_subdomain(&object), "{object}");
            prop_assert_eq!(&object, &object_name(&source, &name, &version));
            if let Some((n, v, s)) = parse_plain(&object) {
                prop_assert_eq!((n, v, s), (name, version, source));
            }
        }

        #[test]
        fn distinct_assets_get_distinct_names(
            a in ("[a-z]{1,3}", "[a-zA-Z./-]{1,6}", "[0-9a-z.-]{1,4}"),
            b in ("[a-z]{1,3}", "[a-zA-Z./-]{1,6}", "[0-9a-z.-]{1,4}"),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(object_name(&a.0, &a.1, &a.2), object_name(&b.0, &b.1, &b.2));
        }
    }
}
