use sea_orm::entity::prelude::*;

/// One message for one endpoint, with its fixed body; retried until delivered or given up.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id`: `msg_` and the event's cursor, the same on every attempt and replay.
    pub message_id: String,
    pub event_type: String,
    pub cursor: Option<String>,
    /// For a forwarded business transaction: which one.
    pub transaction_id: Option<Uuid>,
    pub body: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    pub attempt_count: i32,
    /// The attempt chain allowed to change this row.
    pub chain: Uuid,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
