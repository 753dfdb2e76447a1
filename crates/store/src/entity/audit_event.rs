use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub namespace: String,
    pub occurred_at: DateTimeUtc,
    pub actor: String,
    pub actor_groups: Json,
    pub verb: String,
    pub resource: String,
    pub object_name: String,
    pub object_uid: Option<String>,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client: Option<String>,
    pub details: Option<Json>,
    pub idempotency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
