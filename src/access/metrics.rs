//! Authentication and authorization metrics: outcomes (denials are a security signal), review
//! cache lookups, and identity headers ignored. No label takes a client-chosen value except
//! the header name, which is one of a fixed prefix family.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

use crate::telemetry::{Registry, register};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub result: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeaderLabels {
    pub header: String,
}

#[derive(Clone, Debug, Default)]
pub struct AccessMetrics {
    authn: Family<OutcomeLabels, Counter>,
    authz: Family<OutcomeLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    identity_headers_ignored: Family<HeaderLabels, Counter>,
}

impl AccessMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            authn: "authn", "Authentication outcomes by result and reason";
            authz: "authz", "Authorization decisions by result and reason";
            cache: "cache_lookups", "Review cache lookups by cache and hit or miss";
            identity_headers_ignored: "identity_headers_ignored", "Identity or impersonation headers ignored because they did not come from a verified proxy";
        })
    }

    pub fn authn(&self, result: &str, reason: &str) {
        outcome(&self.authn, result, reason);
    }

    pub fn authz(&self, result: &str, reason: &str) {
        outcome(&self.authz, result, reason);
    }

    pub fn cache_lookup(&self, cache: &str, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                cache: cache.into(),
                result: if hit { "hit" } else { "miss" }.into(),
            })
            .inc();
    }

    /// Counts an ignored identity header under its family name, so a client cannot mint
    /// label values by inventing header names.
    pub fn identity_header_ignored(&self, header: &str) {
        self.identity_headers_ignored
            .get_or_create(&HeaderLabels {
                header: header_family(header).to_owned(),
            })
            .inc();
    }
}

/// The fixed label for an identity or impersonation header name.
fn header_family(header: &str) -> &'static str {
    const KNOWN: [&str; 6] = [
        "x-remote-user",
        "x-remote-group",
        "impersonate-user",
        "impersonate-group",
        "impersonate-uid",
        "impersonate-serviceaccount",
    ];
    let header = header.to_ascii_lowercase();
    if let Some(known) = KNOWN.iter().find(|k| **k == header) {
        return known;
    }
    match header {
        h if h.starts_with("x-remote-extra-") => "x-remote-extra",
        h if h.starts_with("impersonate-extra-") => "impersonate-extra",
        h if h.starts_with("x-remote-") => "x-remote-other",
        _ => "impersonate-other",
    }
}

fn outcome(family: &Family<OutcomeLabels, Counter>, result: &str, reason: &str) {
    family
        .get_or_create(&OutcomeLabels {
            result: result.into(),
            reason: reason.into(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::header_family;

    #[test]
    fn ignored_header_labels_are_a_fixed_set() {
        assert_eq!(header_family("X-Remote-User"), "x-remote-user");
        assert_eq!(
            header_family("impersonate-extra-scopes"),
            "impersonate-extra"
        );
        assert_eq!(header_family("x-remote-whatever-1234"), "x-remote-other");
        assert_eq!(header_family("impersonate-anything"), "impersonate-other");
    }
}
