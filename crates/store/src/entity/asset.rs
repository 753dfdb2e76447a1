//! The `assets` table. Its content columns are `AssetFields` (a test in `asset_row` holds the
//! two together), and a row serializes as the read API's asset: flat camelCase JSON.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "assets")]
#[serde(rename_all = "camelCase")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[serde(skip)]
    pub id: i64,
    pub namespace: String,
    pub source: String,
    pub kind: String,
    pub name: String,
    pub version: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub provider: Option<String>,
    pub license: Option<String>,
    pub tags: Json,
    pub labels: Json,
    pub stage: Option<String>,
    pub approved: bool,
    pub links: Json,
    pub metadata: Json,
    /// McpServer assets' transports and packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<Json>,
    /// Agent assets' skills, capabilities and interfaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Json>,
    pub digest: String,
    /// The name of the asset's object in the `catalog.curio.dev` API.
    #[serde(skip)]
    pub object_name: String,
    /// The description's distinct words, which `q` matches by prefix
    /// (`curio_core::catalog::search_terms`).
    #[serde(skip)]
    pub description_terms: String,
    #[serde(serialize_with = "super::rfc3339_seconds")]
    pub created_at: DateTimeUtc,
    #[serde(serialize_with = "super::rfc3339_seconds")]
    pub updated_at: DateTimeUtc,
    /// The change-feed revision of the row's last write.
    #[serde(skip)]
    pub revision: i64,
    /// The change-feed revision that created the row.
    #[serde(skip)]
    pub created_revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
