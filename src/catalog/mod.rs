//! The catalog file format: parse, validate, digest and diff. Pure functions only.

mod diff;
mod digest;
mod kubeflow;
mod model;
mod parse;
mod validate;

pub use diff::{Diff, Removal, Update, apply, diff};
pub use digest::{canonical_json, document_digest};
pub use model::{Asset, AssetKey, AssetKind, AssetRecord, Link, UnknownAssetKind};
pub use parse::{CatalogError, Limits, Problem, parse_document};
pub use validate::{
    validate_assets, validate_label_key, validate_label_value, validate_name, validate_tag,
};
