//! The catalog file format: parse, validate, digest and diff. Pure functions only.

mod a2a;
mod details;
mod diff;
mod digest;
mod error;
mod kubeflow;
mod mcp;
mod model;
mod parse;
pub mod search_terms;
mod validate;

pub use a2a::AGENT_CARD_KEY;
pub use details::{
    AgentDetails, AgentInterface, AgentSkill, McpPackage, McpRemote, McpServerDetails,
    SecurityScheme,
};
pub use diff::{Diff, Removal, Update, apply, diff};
pub use digest::{canonical_json, value_digest};
pub use error::{CatalogError, Problem};
pub use mcp::{OFFICIAL_META, REGISTRY_META_KEY, SERVER_JSON_KEY};
pub use model::{
    Asset, AssetFields, AssetKey, AssetKind, AssetRecord, Link, UnknownAssetKind, document_digest,
};
pub use parse::{Limits, parse_document};
pub use search_terms::description_terms;
pub use validate::{
    validate_assets, validate_label_key, validate_label_value, validate_name, validate_tag,
};
