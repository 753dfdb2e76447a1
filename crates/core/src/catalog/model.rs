//! The asset shapes: `Asset` as a catalog file states it, `AssetRecord` as the store keeps it.

use std::{collections::BTreeMap, fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use super::digest::value_digest;

/// What an asset is. The plural forms double as the API's per-kind resources.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum AssetKind {
    Model,
    McpServer,
    Agent,
}

impl AssetKind {
    pub const ALL: [AssetKind; 3] = [AssetKind::Model, AssetKind::McpServer, AssetKind::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Model => "Model",
            AssetKind::McpServer => "McpServer",
            AssetKind::Agent => "Agent",
        }
    }

    /// The RBAC resource (and URL segment) for this kind.
    pub fn plural(self) -> &'static str {
        match self {
            AssetKind::Model => "models",
            AssetKind::McpServer => "mcpservers",
            AssetKind::Agent => "agents",
        }
    }

    pub fn from_plural(plural: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == plural)
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown asset kind {0:?} (expected Model, McpServer or Agent)")]
pub struct UnknownAssetKind(pub String);

impl FromStr for AssetKind {
    type Err = UnknownAssetKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAssetKind(s.to_owned()))
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// What the link points at, e.g. `weights`, `docs`, `endpoint`, `source`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub link_type: String,
    #[schemars(length(min = 1, max = 2048))]
    pub uri: String,
}

/// One asset as a catalog document (or an inline source) states it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Asset {
    pub kind: AssetKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Empty means unversioned.
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63)))]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub links: Vec<Link>,
    /// Free-form, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub metadata: Option<serde_json::Value>,
}

/// The natural key of an asset within one source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetKey {
    pub kind: AssetKind,
    pub name: String,
    pub version: String,
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}@{}", self.kind, self.name, self.version)
        }
    }
}

/// An asset as the catalog keeps it: the file's fields after curation, plus its digest.
///
/// Fields are private to keep `digest` true to the content; build with
/// [`AssetRecord::from_asset`] and change through the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    kind: AssetKind,
    name: String,
    version: String,
    display_name: Option<String>,
    description: Option<String>,
    provider: Option<String>,
    license: Option<String>,
    tags: Vec<String>,
    labels: BTreeMap<String, String>,
    stage: Option<String>,
    approved: bool,
    links: Vec<Link>,
    metadata: serde_json::Value,
    #[serde(skip)]
    digest: String,
}

impl AssetRecord {
    pub fn from_asset(asset: Asset) -> Self {
        let mut tags = asset.tags;
        tags.sort();
        tags.dedup();
        let mut record = Self {
            kind: asset.kind,
            name: asset.name,
            version: asset.version,
            display_name: asset.display_name,
            description: asset.description,
            provider: asset.provider,
            license: asset.license,
            tags,
            labels: asset.labels,
            stage: None,
            approved: false,
            links: asset.links,
            // Absent metadata is an empty mapping, so the column never holds JSON null.
            metadata: asset
                .metadata
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            digest: String::new(),
        };
        record.reseal();
        record
    }

    /// Rebuilds a record read back from the store; the stored digest is trusted as is.
    #[allow(clippy::too_many_arguments)]
    pub fn from_stored(
        key: AssetKey,
        display_name: Option<String>,
        description: Option<String>,
        provider: Option<String>,
        license: Option<String>,
        tags: Vec<String>,
        labels: BTreeMap<String, String>,
        stage: Option<String>,
        approved: bool,
        links: Vec<Link>,
        metadata: serde_json::Value,
        digest: String,
    ) -> Self {
        Self {
            kind: key.kind,
            name: key.name,
            version: key.version,
            display_name,
            description,
            provider,
            license,
            tags,
            labels,
            stage,
            approved,
            links,
            metadata,
            digest,
        }
    }

    /// Adds tags (kept sorted and unique).
    pub fn with_tags<I: IntoIterator<Item = String>>(mut self, extra: I) -> Self {
        self.tags.extend(extra);
        self.tags.sort();
        self.tags.dedup();
        self.reseal();
        self
    }

    /// Adds labels; the given ones win over the asset's own.
    pub fn with_labels<I: IntoIterator<Item = (String, String)>>(mut self, extra: I) -> Self {
        self.labels.extend(extra);
        self.reseal();
        self
    }

    pub fn with_stage(mut self, stage: Option<String>) -> Self {
        self.stage = stage;
        self.reseal();
        self
    }

    pub fn with_approved(mut self, approved: bool) -> Self {
        self.approved = approved;
        self.reseal();
        self
    }

    fn reseal(&mut self) {
        // Serializing a record to a Value cannot fail: every field is plain data with string keys.
        let value = serde_json::to_value(&*self).unwrap_or(serde_json::Value::Null);
        self.digest = value_digest(&value);
    }

    pub fn key(&self) -> AssetKey {
        AssetKey {
            kind: self.kind,
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }

    pub fn kind(&self) -> AssetKind {
        self.kind
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }
    pub fn tags(&self) -> &[String] {
        &self.tags
    }
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }
    pub fn approved(&self) -> bool {
        self.approved
    }
    pub fn links(&self) -> &[Link] {
        &self.links
    }
    pub fn metadata(&self) -> &serde_json::Value {
        &self.metadata
    }
    /// Hex SHA-256 of the record's canonical JSON.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// Digest of a whole set of records, independent of their order.
pub fn document_digest<'a, I: IntoIterator<Item = &'a AssetRecord>>(records: I) -> String {
    let mut parts: Vec<(AssetKey, &str)> =
        records.into_iter().map(|r| (r.key(), r.digest())).collect();
    parts.sort();
    let mut hasher = Sha256::new();
    for (_, digest) in parts {
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}
