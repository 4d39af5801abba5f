use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Code,
    Name,
    AccountType,
    CreatedAt,
}

#[derive(DeriveIden)]
enum JournalEntries {
    Table,
    Id,
    Memo,
    PostingDate,
    ReversalOf,
    PostedBy,
    Warnings,
    CreatedAt,
}

#[derive(DeriveIden)]
enum JournalLines {
    Table,
    Id,
    EntryId,
    LineNo,
    AccountId,
    CostCenterId,
    TaskId,
    TransactionId,
    DebitMinor,
    CreditMinor,
    PostingDate,
}

#[derive(DeriveIden)]
enum Budgets {
    Table,
    Id,
    CostCenterId,
    AccountId,
    PeriodKind,
    PeriodStart,
    PeriodEnd,
    AmountMinor,
    Policy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(uuid(Accounts::Id).primary_key())
                    .col(string_uniq(Accounts::Code))
                    .col(string(Accounts::Name))
                    .col(string(Accounts::AccountType))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JournalEntries::Table)
                    .col(uuid(JournalEntries::Id).primary_key())
                    .col(text(JournalEntries::Memo))
                    .col(date(JournalEntries::PostingDate))
                    // Unique: an entry is reversed at most once.
                    .col(uuid_null(JournalEntries::ReversalOf).unique_key())
                    .col(uuid(JournalEntries::PostedBy))
                    .col(json(JournalEntries::Warnings))
                    .col(timestamp_with_time_zone(JournalEntries::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(JournalEntries::Table, JournalEntries::ReversalOf)
                            .to(JournalEntries::Table, JournalEntries::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JournalLines::Table)
                    .col(uuid(JournalLines::Id).primary_key())
                    .col(uuid(JournalLines::EntryId))
                    .col(integer(JournalLines::LineNo))
                    .col(uuid(JournalLines::AccountId))
                    .col(uuid_null(JournalLines::CostCenterId))
                    .col(uuid_null(JournalLines::TaskId))
                    .col(uuid_null(JournalLines::TransactionId))
                    .col(big_integer(JournalLines::DebitMinor))
                    .col(big_integer(JournalLines::CreditMinor))
                    // Copied from the entry so period sums read one table.
                    .col(date(JournalLines::PostingDate))
                    .foreign_key(
                        ForeignKey::create()
                            .from(JournalLines::Table, JournalLines::EntryId)
                            .to(JournalEntries::Table, JournalEntries::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(JournalLines::Table, JournalLines::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(JournalLines::Table, JournalLines::CostCenterId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_journal_lines_entry", vec![JournalLines::EntryId]),
            (
                "idx_journal_lines_account_date",
                vec![JournalLines::AccountId, JournalLines::PostingDate],
            ),
            (
                "idx_journal_lines_cost_center",
                vec![
                    JournalLines::CostCenterId,
                    JournalLines::AccountId,
                    JournalLines::PostingDate,
                ],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(JournalLines::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Budgets::Table)
                    .col(uuid(Budgets::Id).primary_key())
                    .col(uuid(Budgets::CostCenterId))
                    .col(uuid(Budgets::AccountId))
                    .col(string(Budgets::PeriodKind))
                    .col(date(Budgets::PeriodStart))
                    .col(date(Budgets::PeriodEnd))
                    .col(big_integer(Budgets::AmountMinor))
                    .col(string(Budgets::Policy))
                    .col(timestamp_with_time_zone(Budgets::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Budgets::Table, Budgets::CostCenterId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Budgets::Table, Budgets::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_budgets_scope")
                    .table(Budgets::Table)
                    .col(Budgets::CostCenterId)
                    .col(Budgets::AccountId)
                    .col(Budgets::PeriodStart)
                    .col(Budgets::PeriodKind)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
