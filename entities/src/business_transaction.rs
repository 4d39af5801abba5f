use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "business_transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub type_id: Uuid,
    pub payload: Json,
    pub payload_hash: String,
    /// Who submitted: `user:<id>` or `app:<id>`; keys are unique per source.
    pub source_key: String,
    pub source_user_id: Option<Uuid>,
    pub idempotency_key: String,
    pub status: String,
    /// Every status with its time, oldest first.
    pub history: Json,
    pub result: Option<Json>,
    pub error: Option<String>,
    pub approval_instance_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The partner app that submitted it, when one did.
    pub source_app_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
