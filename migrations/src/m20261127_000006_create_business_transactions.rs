use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TransactionTypes {
    Table,
    Id,
    Code,
    Name,
    PayloadSchema,
    ApprovalFlowId,
    Route,
    PostingRule,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BusinessTransactions {
    Table,
    Id,
    TypeId,
    Payload,
    PayloadHash,
    SourceKey,
    SourceUserId,
    IdempotencyKey,
    Status,
    History,
    Result,
    Error,
    ApprovalInstanceId,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TransactionTypes::Table)
                    .col(uuid(TransactionTypes::Id).primary_key())
                    .col(string_uniq(TransactionTypes::Code))
                    .col(string(TransactionTypes::Name))
                    .col(json(TransactionTypes::PayloadSchema))
                    .col(uuid_null(TransactionTypes::ApprovalFlowId))
                    .col(string(TransactionTypes::Route))
                    .col(json_null(TransactionTypes::PostingRule))
                    .col(timestamp_with_time_zone(TransactionTypes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BusinessTransactions::Table)
                    .col(uuid(BusinessTransactions::Id).primary_key())
                    .col(uuid(BusinessTransactions::TypeId))
                    .col(json(BusinessTransactions::Payload))
                    .col(string(BusinessTransactions::PayloadHash))
                    .col(string(BusinessTransactions::SourceKey))
                    .col(uuid_null(BusinessTransactions::SourceUserId))
                    .col(string(BusinessTransactions::IdempotencyKey))
                    .col(string(BusinessTransactions::Status))
                    .col(json(BusinessTransactions::History))
                    .col(json_null(BusinessTransactions::Result))
                    .col(text_null(BusinessTransactions::Error))
                    .col(uuid_null(BusinessTransactions::ApprovalInstanceId))
                    .col(timestamp_with_time_zone(BusinessTransactions::CreatedAt))
                    .col(timestamp_with_time_zone(BusinessTransactions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BusinessTransactions::Table, BusinessTransactions::TypeId)
                            .to(TransactionTypes::Table, TransactionTypes::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The idempotency guarantee itself: one transaction per key and source, ever.
        manager
            .create_index(
                Index::create()
                    .name("uq_business_transactions_idempotency")
                    .table(BusinessTransactions::Table)
                    .col(BusinessTransactions::SourceKey)
                    .col(BusinessTransactions::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
