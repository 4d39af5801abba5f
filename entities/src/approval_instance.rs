use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_instances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub flow_id: Uuid,
    /// The flow's version at submission: the steps this approval is decided by.
    pub flow_version: i32,
    pub subject_type: String,
    pub subject_id: Uuid,
    pub subject_department_id: Option<Uuid>,
    pub initiator_id: Uuid,
    pub status: String,
    /// Positions of the flow steps whose condition held at submission, in order.
    pub step_positions: Json,
    pub current_index: i32,
    /// The subject's fields at submission: what conditions and approver fields read.
    pub facts: Json,
    pub started_at: DateTimeUtc,
    pub step_started_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
