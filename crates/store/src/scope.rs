//! Namespaces as typed values: a query cannot run without saying whose rows it may touch.

use std::{collections::BTreeSet, fmt};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("{0:?} is not a valid namespace name (a DNS-1123 label)")]
    InvalidNamespace(String),
    #[error("a namespace scope needs at least one namespace")]
    Empty,
}

/// A Kubernetes namespace name, checked as a DNS-1123 label (so it can never carry SQL or
/// the separator used in the RLS setting).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(String);

impl Namespace {
    pub fn new(name: impl Into<String>) -> Result<Self, ScopeError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(name))
        } else {
            Err(ScopeError::InvalidNamespace(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The non-empty set of namespaces a read may see. There is no "all namespaces" value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceScope(BTreeSet<Namespace>);

impl NamespaceScope {
    pub fn new<I: IntoIterator<Item = Namespace>>(namespaces: I) -> Result<Self, ScopeError> {
        let set: BTreeSet<Namespace> = namespaces.into_iter().collect();
        if set.is_empty() {
            Err(ScopeError::Empty)
        } else {
            Ok(Self(set))
        }
    }

    pub fn single(namespace: Namespace) -> Self {
        Self(BTreeSet::from([namespace]))
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.0.iter()
    }

    pub fn contains(&self, namespace: &Namespace) -> bool {
        self.0.contains(namespace)
    }

    /// The value of the RLS setting: names joined by commas (labels never contain one).
    pub(crate) fn setting_value(&self) -> String {
        self.0
            .iter()
            .map(Namespace::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(Namespace::new("team-a").is_ok());
        for bad in [
            "",
            "Team-A",
            "-a",
            "a-",
            "a,b",
            "a'b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(Namespace::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_scope_is_refused() {
        assert_eq!(NamespaceScope::new([]), Err(ScopeError::Empty));
    }
}
