use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::integer;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApprovalFlows {
    Table,
    Version,
}

#[derive(DeriveIden)]
enum ApprovalSteps {
    Table,
    FlowId,
    Version,
    Position,
}

#[derive(DeriveIden)]
enum ApprovalInstances {
    Table,
    FlowVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // An edit of a flow adds a version of its steps beside the old ones: approvals already
        // running keep deciding by the steps they started on. Everything so far is version 1.
        manager
            .alter_table(
                Table::alter()
                    .table(ApprovalFlows::Table)
                    .add_column(integer(ApprovalFlows::Version).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApprovalSteps::Table)
                    .add_column(integer(ApprovalSteps::Version).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApprovalInstances::Table)
                    .add_column(integer(ApprovalInstances::FlowVersion).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_approval_steps_flow_position")
                    .table(ApprovalSteps::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_approval_steps_flow_version_position")
                    .table(ApprovalSteps::Table)
                    .col(ApprovalSteps::FlowId)
                    .col(ApprovalSteps::Version)
                    .col(ApprovalSteps::Position)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
