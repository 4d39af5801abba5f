use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Eq)]
#[sea_orm(table_name = "journal_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub entry_id: Uuid,
    pub line_no: i32,
    pub account_id: Uuid,
    pub cost_center_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub transaction_id: Option<Uuid>,
    /// Exact money: minor units of the base currency; exactly one of debit and credit is positive.
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub posting_date: Date,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
