use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub category_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub title: String,
    pub key_points: String,
    pub initiator_id: Uuid,
    pub department_id: Option<Uuid>,
    pub is_team_task: bool,
    pub confirmer_id: Option<Uuid>,
    pub has_cash_output: bool,
    /// Exact money: minor units of `currency`.
    pub cash_output_minor: Option<i64>,
    pub currency: String,
    pub start_at: Option<DateTimeUtc>,
    pub deadline: Option<DateTimeUtc>,
    pub priority: i32,
    /// Confirmed progress, 0–100.
    pub progress: i32,
    /// Progress an executor reported that the confirmer has not confirmed yet.
    pub reported_progress: Option<i32>,
    pub merit_points: i32,
    pub review_status: String,
    pub rejection_reason: Option<String>,
    pub status: String,
    pub custom_fields: Json,
    pub version: i32,
    pub approval_instance_id: Option<Uuid>,
    pub overdue: bool,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
