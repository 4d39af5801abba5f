use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskRollupMonths {
    Table,
    Month,
    DepartmentId,
    CategoryId,
    Status,
    ReviewStatus,
    Priority,
    DeadlineMonth,
    CompletedMonth,
    IsMain,
    Count,
    Done,
    OnTime,
    CompletedWithDeadline,
    MeritTotal,
    CashMinor,
    ProgressSum,
}

#[derive(DeriveIden)]
enum TaskRollupDurations {
    Table,
    Day,
    DepartmentId,
    CategoryId,
    Status,
    ReviewStatus,
    Priority,
    DeadlineMonth,
    CompletedMonth,
    IsMain,
    LeadS,
    CycleS,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The daily rollups hardly compress (a day rarely repeats a key), so whole past months
        // are summed once more: the same key without the day, one row per (month, key).
        manager
            .create_table(
                Table::create()
                    .table(TaskRollupMonths::Table)
                    .col(string_len(TaskRollupMonths::Month, 7))
                    .col(uuid_null(TaskRollupMonths::DepartmentId))
                    .col(uuid(TaskRollupMonths::CategoryId))
                    .col(string_len(TaskRollupMonths::Status, 32))
                    .col(string_len(TaskRollupMonths::ReviewStatus, 32))
                    .col(integer(TaskRollupMonths::Priority))
                    .col(string_len_null(TaskRollupMonths::DeadlineMonth, 7))
                    .col(string_len_null(TaskRollupMonths::CompletedMonth, 7))
                    .col(integer(TaskRollupMonths::IsMain))
                    .col(big_integer(TaskRollupMonths::Count))
                    .col(big_integer(TaskRollupMonths::Done))
                    .col(big_integer(TaskRollupMonths::OnTime))
                    .col(big_integer(TaskRollupMonths::CompletedWithDeadline))
                    .col(big_integer(TaskRollupMonths::MeritTotal))
                    .col(big_integer(TaskRollupMonths::CashMinor))
                    .col(big_integer(TaskRollupMonths::ProgressSum))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("task_rollup_months_by_month")
                    .table(TaskRollupMonths::Table)
                    .col(TaskRollupMonths::Month)
                    .to_owned(),
            )
            .await?;
        // Percentiles do not add up, so each done task's lead and cycle time is kept as computed
        // at refresh: reading them skips the approval-time lookups of every done task.
        manager
            .create_table(
                Table::create()
                    .table(TaskRollupDurations::Table)
                    .col(string_len(TaskRollupDurations::Day, 10))
                    .col(uuid_null(TaskRollupDurations::DepartmentId))
                    .col(uuid(TaskRollupDurations::CategoryId))
                    .col(string_len(TaskRollupDurations::Status, 32))
                    .col(string_len(TaskRollupDurations::ReviewStatus, 32))
                    .col(integer(TaskRollupDurations::Priority))
                    .col(string_len_null(TaskRollupDurations::DeadlineMonth, 7))
                    .col(string_len_null(TaskRollupDurations::CompletedMonth, 7))
                    .col(integer(TaskRollupDurations::IsMain))
                    .col(big_integer_null(TaskRollupDurations::LeadS))
                    .col(big_integer_null(TaskRollupDurations::CycleS))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("task_rollup_durations_by_day")
                    .table(TaskRollupDurations::Table)
                    .col(TaskRollupDurations::Day)
                    .to_owned(),
            )
            .await?;
        // The new tables start empty: forget the watermark, so answers read base rows until the
        // next refresh, which then rebuilds every day and month.
        manager
            .get_connection()
            .execute_unprepared("UPDATE report_refresh_state SET refreshed_at = NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TaskRollupDurations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TaskRollupMonths::Table).to_owned())
            .await
    }
}
