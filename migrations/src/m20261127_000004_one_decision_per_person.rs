use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApprovalDecisions {
    Table,
    InstanceId,
    StepIndex,
    DecidedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One person is one seat per step: a delegate who is also an approver cannot decide
        // twice to meet a step that needs two approvals.
        manager
            .create_index(
                Index::create()
                    .name("uq_approval_decisions_one_per_person")
                    .table(ApprovalDecisions::Table)
                    .col(ApprovalDecisions::InstanceId)
                    .col(ApprovalDecisions::StepIndex)
                    .col(ApprovalDecisions::DecidedBy)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
