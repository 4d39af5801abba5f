use sea_orm::entity::prelude::*;

/// Where one partner app wants events delivered, signed, and which ones.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub url: String,
    /// Topic names (`tasks`, …) as a JSON array; empty means every topic the app may see.
    pub topics: Json,
    /// Event kinds (`PROGRESS_REPORTED`, …) as a JSON array; empty means every kind.
    pub kinds: Json,
    /// Codes of the `APP_FORWARD` business types delivered here, as a JSON array.
    pub transaction_types: Json,
    pub description: String,
    pub active: bool,
    pub disabled_reason: Option<String>,
    /// The current signing secret, `whsec_…`.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    /// Since when every delivery has failed; cleared by any success.
    pub failing_since: Option<DateTimeUtc>,
    /// The event log's head at creation: the endpoint receives the entries after it.
    pub start_tx: i64,
    pub start_position: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Written by hand so that the signing secrets never reach a log line or an error.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("webhook_endpoint::Model")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("url", &self.url)
            .field("active", &self.active)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}
