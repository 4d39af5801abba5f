use sea_orm::entity::prelude::*;

/// One entry of the durable event log, appended in the transaction of the change it tells of.
/// Readers order by `(tx_id, position)`; see `platform::events::log` for why both.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub position: i64,
    pub tx_id: i64,
    #[sea_orm(unique)]
    pub id: Uuid,
    pub topic: String,
    pub kind: String,
    pub subject_kind: String,
    pub subject_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub audience: Json,
    pub payload: Json,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
