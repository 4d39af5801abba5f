use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub args: Json,
    /// Higher runs first within a queue.
    pub priority: i32,
    pub state: String,
    /// Incremented by every claim; the fencing token of the current lease.
    pub attempt: i32,
    pub max_attempts: i32,
    pub run_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub affinity_key: Option<String>,
    pub key_bucket: Option<i32>,
    pub unique_key: Option<String>,
    pub progress: i32,
    pub progress_message: Option<String>,
    pub last_error: Option<String>,
    /// Every failed attempt, oldest first: `[{attempt, at, error}]`.
    pub errors: Json,
    pub cancel_requested: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub attempted_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
