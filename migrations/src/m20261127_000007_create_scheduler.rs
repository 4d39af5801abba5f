use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Queue,
    Kind,
    Args,
    Priority,
    State,
    Attempt,
    MaxAttempts,
    RunAt,
    LeaseOwner,
    LeaseExpiresAt,
    AffinityKey,
    KeyBucket,
    UniqueKey,
    Progress,
    ProgressMessage,
    LastError,
    Errors,
    CancelRequested,
    CreatedAt,
    UpdatedAt,
    AttemptedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum JobQueues {
    Table,
    Name,
    Paused,
    Strategy,
    Tag,
    PerNodeConcurrency,
    GlobalConcurrency,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SchedulerNodes {
    Table,
    Id,
    Tags,
    Capacity,
    StartedAt,
    HeartbeatAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum CronFires {
    Table,
    Schedule,
    Slot,
    JobId,
    FiredAt,
}

#[derive(DeriveIden)]
enum RecurringTasks {
    Table,
    Id,
    CategoryId,
    Title,
    KeyPoints,
    InitiatorId,
    ExecutorIds,
    Cron,
    DeadlineAfterHours,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TaskReminders {
    Table,
    TaskId,
    Deadline,
    SentAt,
}

#[derive(DeriveIden)]
enum ApprovalEscalations {
    Table,
    InstanceId,
    StepIndex,
    EscalatedTo,
    EscalatedAt,
}

#[derive(DeriveIden)]
enum TransactionTypes {
    Table,
    ForwardUrl,
}

#[derive(DeriveIden)]
enum TaskCategories {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

const LIVE_STATES: &str = "('SCHEDULED', 'AVAILABLE', 'RUNNING', 'RETRYABLE')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(uuid(Jobs::Id).primary_key())
                    .col(string_len(Jobs::Queue, 64))
                    .col(string_len(Jobs::Kind, 128))
                    .col(json(Jobs::Args))
                    .col(integer(Jobs::Priority))
                    .col(string_len(Jobs::State, 16))
                    .col(integer(Jobs::Attempt))
                    .col(integer(Jobs::MaxAttempts))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(string_len_null(Jobs::LeaseOwner, 128))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                    .col(string_len_null(Jobs::AffinityKey, 256))
                    .col(integer_null(Jobs::KeyBucket))
                    .col(string_len_null(Jobs::UniqueKey, 256))
                    .col(integer(Jobs::Progress))
                    .col(string_len_null(Jobs::ProgressMessage, 512))
                    .col(text_null(Jobs::LastError))
                    .col(json(Jobs::Errors))
                    .col(boolean(Jobs::CancelRequested))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::AttemptedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Partial indexes (same syntax on PostgreSQL and SQLite): the claim scan only ever
        // touches waiting rows, and a unique key binds only while its job is live.
        db.execute_unprepared(
            // `id` completes the claim's ORDER BY: without it PostgreSQL sorts the whole backlog.
            "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) \
             WHERE state IN ('SCHEDULED', 'AVAILABLE', 'RETRYABLE')",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX jobs_running ON jobs (lease_owner, lease_expires_at) WHERE state = 'RUNNING'",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key) \
             WHERE unique_key IS NOT NULL AND state IN {LIVE_STATES}"
        ))
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("jobs_queue_state")
                    .table(Jobs::Table)
                    .col(Jobs::Queue)
                    .col(Jobs::State)
                    .col(Jobs::Id)
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "CREATE INDEX jobs_finished ON jobs (finished_at) \
             WHERE state IN ('COMPLETED', 'DISCARDED', 'CANCELLED')",
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobQueues::Table)
                    .col(string_len(JobQueues::Name, 64).primary_key())
                    .col(boolean(JobQueues::Paused))
                    .col(string_len(JobQueues::Strategy, 16))
                    .col(string_len_null(JobQueues::Tag, 64))
                    .col(integer(JobQueues::PerNodeConcurrency))
                    .col(integer_null(JobQueues::GlobalConcurrency))
                    .col(timestamp_with_time_zone(JobQueues::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SchedulerNodes::Table)
                    .col(string_len(SchedulerNodes::Id, 128).primary_key())
                    .col(json(SchedulerNodes::Tags))
                    .col(integer(SchedulerNodes::Capacity))
                    .col(timestamp_with_time_zone(SchedulerNodes::StartedAt))
                    .col(timestamp_with_time_zone(SchedulerNodes::HeartbeatAt))
                    .col(timestamp_with_time_zone_null(SchedulerNodes::StoppedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CronFires::Table)
                    .col(string_len(CronFires::Schedule, 200))
                    .col(timestamp_with_time_zone(CronFires::Slot))
                    .col(uuid_null(CronFires::JobId))
                    .col(timestamp_with_time_zone(CronFires::FiredAt))
                    .primary_key(
                        Index::create()
                            .col(CronFires::Schedule)
                            .col(CronFires::Slot),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecurringTasks::Table)
                    .col(uuid(RecurringTasks::Id).primary_key())
                    .col(uuid(RecurringTasks::CategoryId))
                    .col(string(RecurringTasks::Title))
                    .col(text(RecurringTasks::KeyPoints))
                    .col(uuid(RecurringTasks::InitiatorId))
                    .col(json(RecurringTasks::ExecutorIds))
                    .col(string_len(RecurringTasks::Cron, 128))
                    .col(integer_null(RecurringTasks::DeadlineAfterHours))
                    .col(boolean(RecurringTasks::Active))
                    .col(timestamp_with_time_zone(RecurringTasks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecurringTasks::Table, RecurringTasks::CategoryId)
                            .to(TaskCategories::Table, TaskCategories::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecurringTasks::Table, RecurringTasks::InitiatorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The built-in jobs' markers: each records that a reminder or escalation happened, so
        // a rerun (at-least-once delivery) or a second node does not repeat it.
        manager
            .create_table(
                Table::create()
                    .table(TaskReminders::Table)
                    .col(uuid(TaskReminders::TaskId))
                    .col(timestamp_with_time_zone(TaskReminders::Deadline))
                    .col(timestamp_with_time_zone(TaskReminders::SentAt))
                    .primary_key(
                        Index::create()
                            .col(TaskReminders::TaskId)
                            .col(TaskReminders::Deadline),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalEscalations::Table)
                    .col(uuid(ApprovalEscalations::InstanceId))
                    .col(integer(ApprovalEscalations::StepIndex))
                    .col(uuid_null(ApprovalEscalations::EscalatedTo))
                    .col(timestamp_with_time_zone(ApprovalEscalations::EscalatedAt))
                    .primary_key(
                        Index::create()
                            .col(ApprovalEscalations::InstanceId)
                            .col(ApprovalEscalations::StepIndex),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TransactionTypes::Table)
                    .add_column(string_len_null(TransactionTypes::ForwardUrl, 2048))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
