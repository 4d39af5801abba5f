use sea_orm::entity::prelude::*;

/// One row per (schedule, slot): the primary key is what makes a tick fire once cluster-wide.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cron_fires")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub schedule: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: DateTimeUtc,
    pub job_id: Option<Uuid>,
    pub fired_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
