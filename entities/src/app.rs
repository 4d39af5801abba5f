use sea_orm::entity::prelude::*;

/// A partner application: it authenticates with API keys and reads only its scopes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
    /// The user that stands for the app in the records it writes.
    #[sea_orm(unique)]
    pub service_user_id: Uuid,
    pub active: bool,
    /// The `AppScope` names it holds, as a JSON array of strings.
    pub scopes: Json,
    /// When set, the app sees only this department's subtree.
    pub department_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
