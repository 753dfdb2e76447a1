//! The catalog file format: parse, validate, digest and diff. Pure functions only.

mod diff;
mod digest;
mod error;
mod kubeflow;
mod model;
mod parse;
mod validate;

pub use diff::{Diff, Removal, Update, apply, diff};
pub use digest::{canonical_json, value_digest};
pub use error::{CatalogError, Problem};
pub use model::{
    Asset, AssetFields, AssetKey, AssetKind, AssetRecord, Link, UnknownAssetKind, document_digest,
};
pub use parse::{Limits, parse_document};
pub use validate::{
    validate_assets, validate_label_key, validate_label_value, validate_name, validate_tag,
};
