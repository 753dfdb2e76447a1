//! What an asset list asks for, and where a page ends. Values only; SQL is built in assets.rs.

use serde::{Deserialize, Serialize};

use crate::catalog::AssetKind;

/// One label-selector requirement, with Kubernetes semantics (`!=` and `notin` match objects
/// without the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Filters for an asset list. Every field narrows; the empty query matches everything in scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetQuery {
    /// Only these kinds (also how per-kind RBAC narrows a list). `None`: every kind.
    pub kinds: Option<Vec<AssetKind>>,
    pub source: Option<String>,
    pub tag: Option<String>,
    pub labels: Vec<LabelRequirement>,
    pub stage: Option<String>,
    pub approved: Option<bool>,
    /// Case-insensitive substring of name, display name or description; `%` and `_` literal.
    pub text: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// The last row of a page, in keyset order `(namespace, kind, name, version, id)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetCursor {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub version: String,
    pub id: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<AssetCursor>,
}

/// Escapes `\`, `%` and `_` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(super::escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
