// kube's repeated `printcolumn(type_ = …)` arguments read to clippy as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Limits a platform operator sets on the namespaces a policy selects. Cluster-scoped, so
/// tenants (who hold namespaced roles) cannot write it. Every policy that selects a namespace
/// applies; where two set the same limit, the more restrictive value wins.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "curio.dev",
    version = "v1alpha1",
    kind = "CatalogPolicy",
    status = "CatalogPolicyStatus",
    shortname = "catpol",
    category = "curio",
    cel,
    doc = "Limits and a kill switch for the namespaces it selects (platform operators only).",
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(
        name = "Namespaces",
        type_ = "integer",
        json_path = ".status.namespaceCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.namespaceSelector) || !has(self.namespaceSelector.matchExpressions) || self.namespaceSelector.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])").message("namespaceSelector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"))]
pub struct CatalogPolicySpec {
    /// The namespaces this policy applies to, by their labels (`kubernetes.io/metadata.name`
    /// selects one by name). Absent or empty: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The kill switch: no refreshes in the selected namespaces (the API keeps serving the last
    /// good catalog). Turning it off resumes at the job pool's normal pace.
    #[serde(default)]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "PolicyLimits::is_empty")]
    pub limits: PolicyLimits,
    /// Read API request rates for the selected namespaces, instead of the server's flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_rate_limits: Option<ApiRateLimits>,
}

/// Each limit is optional; an absent one does not limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLimits {
    /// CatalogSources per namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_sources: Option<i64>,
    /// Assets across all sources of a namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000000))]
    pub max_assets_per_namespace: Option<i64>,
    /// Assets in one source's catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000000))]
    pub max_assets_per_source: Option<i64>,
    /// Largest catalog document fetched, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 67108864))]
    pub max_document_bytes: Option<i64>,
    /// RefreshJobs of a namespace running at once (the pool's per-namespace limit is the most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_refresh_jobs: Option<i64>,
    /// The shortest `spec.interval` a source may ask for, a Go duration such as `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub min_interval: Option<String>,
    /// The source types allowed; absent allows all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 3))]
    pub allowed_source_types: Option<Vec<SourceType>>,
    /// Which URL hosts URL sources may name, on top of the controller's address policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_hosts: Option<UrlHostRules>,
}

impl PolicyLimits {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum SourceType {
    Inline,
    ConfigMap,
    Url,
    McpRegistry,
}

impl SourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::ConfigMap => "configMap",
            Self::Url => "url",
            Self::McpRegistry => "mcpRegistry",
        }
    }
}

/// Host patterns (`models.example.com`, `*.example.com`) or CIDRs (`10.0.0.0/8`, matched
/// against a URL whose host is an IP address). A host in `deny` is refused; when `allow` is
/// not empty, a host must match it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct UrlHostRules {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub deny: Vec<String>,
}

/// Token buckets for the read API. A user's requests are limited per user; a namespace's by
/// all callers together.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiRateLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub namespace_requests_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub namespace_burst: Option<u32>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` once the controller has counted the selected namespaces' usage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_count: Option<i64>,
    /// Usage in each selected namespace that has any CatalogSource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceUsage>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceUsage {
    pub namespace: String,
    pub sources: i64,
    pub assets: i64,
    /// A policy or the kill switch pauses the namespace's refreshes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}
