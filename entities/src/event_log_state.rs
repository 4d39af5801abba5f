use sea_orm::entity::prelude::*;

/// The log's one bookkeeping row: how far the relay has published, and how far pruning went.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_log_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i16,
    pub relayed_tx: i64,
    pub relayed_position: i64,
    pub pruned_tx: i64,
    pub pruned_position: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
