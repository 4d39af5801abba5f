use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Eq)]
#[sea_orm(table_name = "approval_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub flow_id: Uuid,
    pub version: i32,
    pub position: i32,
    pub name: String,
    pub approver_user_id: Option<Uuid>,
    pub approver_role: Option<String>,
    pub department_head: bool,
    pub approver_field: Option<String>,
    pub required_approvals: i32,
    pub condition_field: Option<String>,
    pub condition_op: Option<String>,
    pub condition_value: Option<String>,
    pub sla_hours: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
