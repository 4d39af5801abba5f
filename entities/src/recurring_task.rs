use sea_orm::entity::prelude::*;

/// A task template that creates a main task on every slot of its cron expression.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "recurring_tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub category_id: Uuid,
    pub title: String,
    pub key_points: String,
    pub initiator_id: Uuid,
    /// The executors each created task gets, as a JSON array of user ids.
    pub executor_ids: Json,
    pub cron: String,
    pub deadline_after_hours: Option<i32>,
    pub active: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
