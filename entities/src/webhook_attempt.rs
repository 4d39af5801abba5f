use sea_orm::entity::prelude::*;

/// One HTTP attempt of a delivery, as its owner may see it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub at: DateTimeUtc,
    /// The receiver's status, when it answered.
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    /// Short and free of internal detail.
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
