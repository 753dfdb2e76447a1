//! The custom resources, `CatalogSource`, `RefreshJob` and the cluster-scoped `CatalogPolicy`
//! (group `curio.dev`, `v1alpha1`).
//! The CRD manifests in `crds/` are generated from these types by `curio crds`.

mod catalog_policy;
mod catalog_source;
pub mod generate;
mod refresh_job;

pub use catalog_policy::{
    ApiRateLimits, CatalogPolicy, CatalogPolicySpec, CatalogPolicyStatus, NamespaceUsage,
    PolicyLimits, SourceType, UrlHostRules,
};
pub use catalog_source::{
    AssetFilter, CatalogSource, CatalogSourceSpec, CatalogSourceStatus, ConfigMapSource,
    CurationRule, InlineSource, McpRegistrySource, RegistrySync, SecretRef, SourceSpec, UrlSource,
};
pub use refresh_job::{JobPhase, RefreshJob, RefreshJobSpec, RefreshJobStatus, SourceRef};

pub mod strict;

pub const GROUP: &str = "curio.dev";
pub const VERSION: &str = "v1alpha1";

/// The annotation whose value is recorded as the "why" of a change.
pub const CHANGE_REASON_ANNOTATION: &str = "curio.dev/change-reason";

/// Holds a CatalogSource until the controller has removed its assets.
pub const FINALIZER: &str = "curio.dev/cleanup";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{catalog_source, refresh_job};
    use serde_json::json;

    fn source(spec: serde_json::Value) -> CatalogSource {
        catalog_source("team-a", "s").spec(spec).build()
    }

    fn job(spec: serde_json::Value) -> RefreshJob {
        refresh_job("team-a", "j").spec(spec).build()
    }

    #[test]
    fn exactly_one_source_kind_is_allowed() {
        let one = source(json!({"source": {"configMap": {"name": "c"}}}));
        assert!(one.validate_cel().is_ok());
        let none = source(json!({"source": {}}));
        let err = none.validate_cel().unwrap_err().to_string();
        assert!(
            err.contains("exactly one of inline, configMap, url or mcpRegistry"),
            "{err}"
        );
        let two =
            source(json!({"source": {"configMap": {"name": "c"}, "url": {"url": "https://x"}}}));
        assert!(two.validate_cel().is_err());
        let registry =
            source(json!({"source": {"mcpRegistry": {"url": "https://registry.example.com"}}}));
        assert!(registry.validate_cel().is_ok());
        let registry_and_url = source(json!({"source": {
            "mcpRegistry": {"url": "https://registry.example.com"},
            "url": {"url": "https://x"}}}));
        assert!(registry_and_url.validate_cel().is_err());
    }

    #[test]
    fn interval_must_be_a_duration_of_at_least_ten_seconds() {
        let ok = source(json!({"source": {"inline": {"assets": []}}, "interval": "1h30m"}));
        assert!(ok.validate_cel().is_ok());
        let short = source(json!({"source": {"inline": {"assets": []}}, "interval": "5s"}));
        let err = short.validate_cel().unwrap_err().to_string();
        assert!(err.contains("at least 10s"), "{err}");
    }

    #[test]
    fn url_must_be_http_or_https() {
        let bad = source(json!({"source": {"url": {"url": "file:///etc/passwd"}}}));
        assert!(bad.validate_cel().is_err());
    }

    #[test]
    fn refresh_job_spec_is_immutable() {
        let old = job(json!({"sourceRef": {"name": "a"}, "reason": "nightly"}));
        let same = old.clone();
        assert!(same.validate_cel_update(&old).is_ok());
        let changed = job(json!({"sourceRef": {"name": "b"}, "reason": "nightly"}));
        let err = changed.validate_cel_update(&old).unwrap_err().to_string();
        assert!(err.contains("spec is immutable"), "{err}");
    }

    #[test]
    fn refresh_job_needs_exactly_one_target() {
        assert!(job(json!({})).validate_cel().is_err());
        assert!(
            job(json!({"sourceRef": {"name": "a"}, "selector": {}}))
                .validate_cel()
                .is_err()
        );
        assert!(
            job(json!({"selector": {"matchLabels": {"tier": "gold"}}}))
                .validate_cel()
                .is_ok()
        );
    }
}
