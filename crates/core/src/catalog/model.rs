//! The asset shapes: `Asset` as a catalog file states it, `AssetFields` as the catalog keeps
//! it, and `AssetRecord`: those fields sealed with their digest.

use std::{collections::BTreeMap, fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use super::{
    details::{AgentDetails, McpServerDetails},
    digest::value_digest,
};

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
    /// Transports and packages; only on `McpServer` assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpServerDetails>,
    /// Skills, capabilities and interfaces; only on `Agent` assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentDetails>,
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

/// The fields the catalog keeps of an asset: the catalog file's after curation. Written once
/// here; the digest, the refresh diff, the store's upserts and the API's rows all follow this
/// shape (the store checks its table against it in a test).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetFields {
    pub kind: AssetKind,
    pub name: String,
    pub version: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub provider: Option<String>,
    pub license: Option<String>,
    /// Sorted and unique.
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stage: Option<String>,
    pub approved: bool,
    pub links: Vec<Link>,
    /// A JSON object; never null.
    pub metadata: serde_json::Value,
    // Absent ones are left out of the JSON, so digests of assets without them stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpServerDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentDetails>,
}

/// An asset as the catalog keeps it: its fields and their digest.
///
/// The fields are private to keep `digest` true to the content; build with
/// [`AssetRecord::from_asset`] and change through the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssetRecord {
    #[serde(flatten)]
    fields: AssetFields,
    #[serde(skip)]
    digest: String,
}

impl AssetRecord {
    pub fn from_asset(asset: Asset) -> Self {
        Self::sealed(Self::fields_of(asset))
    }

    /// `asset` as a source's curation keeps it: `labels` added (winning over the asset's own),
    /// `tags` added, stage and approval set. The same record as `from_asset` followed by
    /// `with_labels`, `with_tags`, `with_stage` and `with_approved`, with one digest instead
    /// of five (a refresh digests every asset of the source).
    pub fn curated(
        asset: Asset,
        labels: impl IntoIterator<Item = (String, String)>,
        tags: impl IntoIterator<Item = String>,
        stage: Option<String>,
        approved: bool,
    ) -> Self {
        let mut fields = Self::fields_of(asset);
        fields.labels.extend(labels);
        fields.tags.extend(tags);
        fields.tags.sort();
        fields.tags.dedup();
        fields.stage = stage;
        fields.approved = approved;
        Self::sealed(fields)
    }

    fn fields_of(asset: Asset) -> AssetFields {
        let mut tags = asset.tags;
        tags.sort();
        tags.dedup();
        AssetFields {
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
            mcp: asset.mcp,
            agent: asset.agent,
        }
    }

    fn sealed(fields: AssetFields) -> Self {
        let mut record = Self {
            fields,
            digest: String::new(),
        };
        record.reseal();
        record
    }

    /// Adds tags (kept sorted and unique).
    pub fn with_tags<I: IntoIterator<Item = String>>(mut self, extra: I) -> Self {
        self.fields.tags.extend(extra);
        self.fields.tags.sort();
        self.fields.tags.dedup();
        self.reseal();
        self
    }

    /// Adds labels; the given ones win over the asset's own.
    pub fn with_labels<I: IntoIterator<Item = (String, String)>>(mut self, extra: I) -> Self {
        self.fields.labels.extend(extra);
        self.reseal();
        self
    }

    pub fn with_stage(mut self, stage: Option<String>) -> Self {
        self.fields.stage = stage;
        self.reseal();
        self
    }

    pub fn with_approved(mut self, approved: bool) -> Self {
        self.fields.approved = approved;
        self.reseal();
        self
    }

    fn reseal(&mut self) {
        // Serializing plain data with string keys cannot fail.
        let value = serde_json::to_value(&self.fields).unwrap_or(serde_json::Value::Null);
        self.digest = value_digest(&value);
    }

    pub fn fields(&self) -> &AssetFields {
        &self.fields
    }

    pub fn key(&self) -> AssetKey {
        AssetKey {
            kind: self.fields.kind,
            name: self.fields.name.clone(),
            version: self.fields.version.clone(),
        }
    }

    pub fn kind(&self) -> AssetKind {
        self.fields.kind
    }
    pub fn name(&self) -> &str {
        &self.fields.name
    }
    pub fn version(&self) -> &str {
        &self.fields.version
    }
    /// Hex SHA-256 of the fields' canonical JSON.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::asset;
    use serde_json::json;

    /// Stored rows carry these digests; a change of shape or encoding would make every
    /// refresh after an upgrade rewrite (and audit) every asset. The expected value is the
    /// SHA-256 of the record's canonical JSON, computed outside Rust.
    #[test]
    fn the_record_digest_is_stable() {
        let record = AssetRecord::from_asset(Asset {
            display_name: Some("Granite".into()),
            provider: Some("IBM".into()),
            license: Some("apache-2.0".into()),
            tags: vec!["b".into(), "a".into(), "b".into()],
            labels: [("task".to_owned(), "chat".to_owned())].into(),
            links: vec![Link {
                link_type: "weights".into(),
                uri: "oci://x".into(),
            }],
            metadata: Some(json!({"z": 1, "a": [1, 2]})),
            ..asset(AssetKind::Model, "granite", "3")
        })
        .with_stage(Some("production".into()))
        .with_approved(true);
        assert_eq!(
            record.digest(),
            "0ee55fa12800379495c787eb59722a9ae0ad02bf77ff5bd82c27e419d352f889"
        );
    }

    #[test]
    fn a_curated_record_is_the_record_the_with_chain_builds() {
        let original = || Asset {
            tags: vec!["llm".into(), "b".into()],
            labels: [
                ("task".to_owned(), "chat".to_owned()),
                ("team".to_owned(), "own".to_owned()),
            ]
            .into(),
            ..asset(AssetKind::Model, "granite", "3")
        };
        let labels = || [("team".to_owned(), "curated".to_owned())];
        let tags = || ["a".to_owned(), "llm".to_owned()];
        let chained = AssetRecord::from_asset(original())
            .with_labels(labels())
            .with_tags(tags())
            .with_stage(Some("production".into()))
            .with_approved(true);
        let curated = AssetRecord::curated(
            original(),
            labels(),
            tags(),
            Some("production".into()),
            true,
        );
        assert_eq!(curated, chained);
        assert_eq!(curated.digest(), chained.digest());
        assert_eq!(curated.fields().tags, ["a", "b", "llm"]);
        assert_eq!(curated.fields().labels["team"], "curated");
        // Curation that changes nothing leaves the asset's own digest.
        assert_eq!(
            AssetRecord::curated(original(), [], [], None, false).digest(),
            AssetRecord::from_asset(original()).digest()
        );
    }
}
