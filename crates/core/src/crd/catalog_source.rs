// kube's repeated `printcolumn(type_ = …)` arguments read to clippy as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::catalog::Asset;

/// Where a tenant's catalog entries come from. Never reads another namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "curio.dev",
    version = "v1alpha1",
    kind = "CatalogSource",
    namespaced,
    status = "CatalogSourceStatus",
    shortname = "catsrc",
    category = "curio",
    cel,
    doc = "A source of catalog entries (models, MCP servers, agents) for one namespace.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Assets", type_ = "integer", json_path = ".status.assetCount"),
    printcolumn(
        name = "Last refresh",
        type_ = "date",
        json_path = ".status.lastRefreshTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceSpec {
    pub source: SourceSpec,
    /// Stops refreshes; the assets already in the catalog stay.
    #[serde(default)]
    pub suspend: bool,
    /// Periodic refresh, a Go duration such as `30m` or `1h30m` (at least 10s). Absent: only on
    /// change or on demand through a RefreshJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s')").message("interval must be at least 10s"))]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<AssetFilter>,
    /// Labels added to every asset of this source (they win over the document's own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: BTreeMap<String, String>,
    /// Tag, promote and approve assets declaratively. Rules apply in order; later rules win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub curation: Vec<CurationRule>,
}

/// Exactly one of `inline`, `configMap`, `url` or `mcpRegistry`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.inline), has(self.configMap), has(self.url), has(self.mcpRegistry)].filter(x, x).size() == 1").message("exactly one of inline, configMap, url or mcpRegistry must be set"))]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_registry: Option<McpRegistrySource>,
}

/// Assets written in the resource itself, in the catalog format's asset shape.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct InlineSource {
    #[schemars(length(max = 500))]
    pub assets: Vec<Asset>,
}

/// A catalog document in a ConfigMap of the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ConfigMapSource {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The data key holding the document.
    #[serde(default = "default_config_map_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_config_map_key() -> String {
    "catalog.yaml".into()
}

/// A catalog document fetched over HTTP(S).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("url must start with https:// or http://"))]
    pub url: String,
    /// A Secret in the same namespace with `token` (bearer) or `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Total time allowed for one fetch, a Go duration (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// Largest document accepted, in bytes (default 16 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 67108864))]
    pub max_size_bytes: Option<i64>,
}

/// MCP servers synced from an MCP Registry API: the public registry, another vendor's, or
/// another Curio's team registry. The first sync pages through every server's latest
/// version; later ones ask only for what changed (`updated_since`) and merge it in, with a
/// full sync at least every `fullSyncInterval`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpRegistrySource {
    /// The registry's base URL; `/v0.1/servers` is appended (for example
    /// `https://registry.modelcontextprotocol.io` or
    /// `https://curio.example.com/registry/namespaces/team-a`).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("url must start with https:// or http://"))]
    pub url: String,
    /// A Secret in the same namespace with `token` (bearer) or `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Only servers whose name contains this (the registry's `search`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub search: Option<String>,
    /// Only servers updated after this RFC 3339 time, even on a full sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 64),
        regex(
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
        )
    )]
    pub updated_since: Option<String>,
    /// Total time allowed for one page, a Go duration (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// How often at most syncs may be incremental before a full one, a Go duration
    /// (default 24h): a full sync also drops servers a registry removed without a trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub full_sync_interval: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Globs over asset names: kept when they match an include (or there are none) and no exclude.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AssetFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub exclude: Vec<String>,
}

/// For assets whose name matches the glob: add tags, set the stage, approve or unapprove.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CurationRule {
    #[serde(rename = "match")]
    #[schemars(length(min = 1, max = 253))]
    pub match_glob: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub tags: Vec<String>,
    /// A lifecycle stage such as `experimental`, `staging` or `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<Time>,
    /// Digest of the last good catalog content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// ETag of the last document fetched from a URL source, sent back as If-None-Match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Where an `mcpRegistry` source's incremental syncs start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_sync: Option<RegistrySync>,
    /// The last RefreshJob (namespace/name) this source handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_refresh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The state of an `mcpRegistry` source's syncs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySync {
    /// The newest `updatedAt` the registry reported; the next incremental sync asks for
    /// servers updated since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_up_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_sync_time: Option<Time>,
}
