//! What an asset list asks for, and where a page ends. Values only; SQL is built in assets.rs.

use serde::{Deserialize, Serialize};

use curio_core::catalog::AssetKind;

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
    /// Only these kinds. `None`: every kind.
    pub kinds: Option<Vec<AssetKind>>,
    /// Per namespace, the only kinds to return from it (how per-kind RBAC narrows a list that
    /// spans namespaces). `None`: no per-namespace narrowing.
    pub kinds_by_namespace: Option<std::collections::BTreeMap<String, Vec<AssetKind>>>,
    /// Any of these sources (empty: any source).
    pub sources: Vec<String>,
    /// Any of these providers (empty: any provider).
    pub providers: Vec<String>,
    /// Any of these licenses (empty: any license).
    pub licenses: Vec<String>,
    /// Carrying any of these tags (empty: no narrowing).
    pub tags: Vec<String>,
    pub labels: Vec<LabelRequirement>,
    /// In any of these stages (empty: any stage).
    pub stages: Vec<String>,
    pub approved: Option<bool>,
    /// Case-insensitive substring of name, display name or description; `%` and `_` literal.
    pub text: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// The asset's object name in the `catalog.curio.dev` API.
    pub object_name: Option<String>,
    /// Only this namespace (a field selector's; the scope still bounds it).
    pub namespace: Option<String>,
}

/// The order of an asset list. Each is a total order (it ends in `id`), so keyset pages are
/// stable while rows are inserted concurrently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssetSort {
    /// `(namespace, kind, name, version, id)`, the store's natural order.
    #[default]
    Key,
    /// `(name, version, kind, namespace, id)`.
    Name,
    NameDesc,
    /// `(updated_at, id)`.
    Updated,
    UpdatedDesc,
}

impl AssetSort {
    /// Parses the API's `sort` parameter: `name`, `-name`, `updated`, `-updated`, `namespace`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "namespace" => Self::Key,
            "name" => Self::Name,
            "-name" => Self::NameDesc,
            "updated" => Self::Updated,
            "-updated" => Self::UpdatedDesc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "namespace",
            Self::Name => "name",
            Self::NameDesc => "-name",
            Self::Updated => "updated",
            Self::UpdatedDesc => "-updated",
        }
    }
}

/// The last row of a page: every column any sort order compares, plus the row id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetCursor {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub version: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub id: i64,
}

/// The last row of a page of a namespaced object list (sources, jobs): `(namespace, name)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCursor {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, C = AssetCursor> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
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
