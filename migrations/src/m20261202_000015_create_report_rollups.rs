use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskRollupDays {
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
    Count,
    Done,
    OnTime,
    CompletedWithDeadline,
    MeritTotal,
    CashMinor,
    ProgressSum,
}

#[derive(DeriveIden)]
enum ReportRefreshState {
    Table,
    Id,
    RefreshedAt,
    ReconciledAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    UpdatedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per (UTC day of creation, key) with the measures that add up across days;
        // `reports.refresh` rewrites whole days, so no key needs to be unique on its own.
        manager
            .create_table(
                Table::create()
                    .table(TaskRollupDays::Table)
                    .col(string_len(TaskRollupDays::Day, 10))
                    .col(uuid_null(TaskRollupDays::DepartmentId))
                    .col(uuid(TaskRollupDays::CategoryId))
                    .col(string_len(TaskRollupDays::Status, 32))
                    .col(string_len(TaskRollupDays::ReviewStatus, 32))
                    .col(integer(TaskRollupDays::Priority))
                    .col(string_len_null(TaskRollupDays::DeadlineMonth, 7))
                    .col(string_len_null(TaskRollupDays::CompletedMonth, 7))
                    .col(integer(TaskRollupDays::IsMain))
                    .col(big_integer(TaskRollupDays::Count))
                    .col(big_integer(TaskRollupDays::Done))
                    .col(big_integer(TaskRollupDays::OnTime))
                    .col(big_integer(TaskRollupDays::CompletedWithDeadline))
                    .col(big_integer(TaskRollupDays::MeritTotal))
                    .col(big_integer(TaskRollupDays::CashMinor))
                    .col(big_integer(TaskRollupDays::ProgressSum))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("task_rollup_days_by_day")
                    .table(TaskRollupDays::Table)
                    .col(TaskRollupDays::Day)
                    .to_owned(),
            )
            .await?;
        // A single row: how far the rollups are written. Its row lock serialises refreshes.
        manager
            .create_table(
                Table::create()
                    .table(ReportRefreshState::Table)
                    .col(integer(ReportRefreshState::Id).primary_key())
                    .col(timestamp_with_time_zone_null(
                        ReportRefreshState::RefreshedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        ReportRefreshState::ReconciledAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO report_refresh_state (id) VALUES (1)")
            .await?;
        // The incremental refresh finds the days touched since its watermark through these.
        manager
            .create_index(
                Index::create()
                    .name("tasks_by_updated_at")
                    .table(Tasks::Table)
                    .col(Tasks::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tasks_by_created_at")
                    .table(Tasks::Table)
                    .col(Tasks::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["tasks_by_updated_at", "tasks_by_created_at"] {
            manager
                .drop_index(Index::drop().name(index).table(Tasks::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ReportRefreshState::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TaskRollupDays::Table).to_owned())
            .await
    }
}
