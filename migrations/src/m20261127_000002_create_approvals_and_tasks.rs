use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApprovalFlows {
    Table,
    Id,
    Name,
    AllowSelfApproval,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApprovalSteps {
    Table,
    Id,
    FlowId,
    Position,
    Name,
    ApproverUserId,
    ApproverRole,
    DepartmentHead,
    ApproverField,
    RequiredApprovals,
    ConditionField,
    ConditionOp,
    ConditionValue,
    SlaHours,
}

#[derive(DeriveIden)]
enum ApprovalInstances {
    Table,
    Id,
    FlowId,
    SubjectType,
    SubjectId,
    SubjectDepartmentId,
    InitiatorId,
    Status,
    StepPositions,
    CurrentIndex,
    Facts,
    StartedAt,
    StepStartedAt,
    DecidedAt,
}

#[derive(DeriveIden)]
enum ApprovalAssignments {
    Table,
    Id,
    InstanceId,
    StepIndex,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApprovalDecisions {
    Table,
    Id,
    InstanceId,
    StepIndex,
    StepName,
    AccountableUserId,
    DecidedBy,
    Approve,
    Comment,
    DecidedAt,
}

#[derive(DeriveIden)]
enum ApprovalDelegations {
    Table,
    Id,
    FromUserId,
    ToUserId,
    StartsAt,
    EndsAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TaskCategories {
    Table,
    Id,
    Code,
    Name,
    DefaultPriority,
    CustomFieldsSchema,
    ApprovalFlowId,
    AssignmentStrategy,
    PoolDepartmentId,
    PoolRole,
    RoundRobinCounter,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    CategoryId,
    ParentId,
    Title,
    KeyPoints,
    InitiatorId,
    DepartmentId,
    IsTeamTask,
    ConfirmerId,
    HasCashOutput,
    CashOutputMinor,
    Currency,
    StartAt,
    Deadline,
    Priority,
    Progress,
    ReportedProgress,
    MeritPoints,
    ReviewStatus,
    RejectionReason,
    Status,
    CustomFields,
    Version,
    ApprovalInstanceId,
    Overdue,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskExecutors {
    Table,
    TaskId,
    UserId,
    Position,
}

#[derive(DeriveIden)]
enum TaskComments {
    Table,
    Id,
    TaskId,
    AuthorId,
    Body,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum TaskActivity {
    Table,
    Id,
    TaskId,
    ActorId,
    Action,
    Field,
    OldValue,
    NewValue,
    At,
}

#[derive(DeriveIden)]
enum TaskAttachments {
    Table,
    Id,
    TaskId,
    UploaderId,
    Filename,
    ContentType,
    SizeBytes,
    StorageKey,
    Sha256,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MeritRecords {
    Table,
    Id,
    TaskId,
    UserId,
    Points,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Topic,
    DedupeKey,
    Payload,
    CreatedAt,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    Kind,
    Title,
    Body,
    SubjectType,
    SubjectId,
    CreatedAt,
    ReadAt,
}

fn fk(
    from: (impl IntoIden + 'static, impl IntoIden + 'static),
    to: (impl IntoIden + 'static, impl IntoIden + 'static),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

fn index(
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<DynIden>,
    unique: bool,
) -> IndexCreateStatement {
    let mut statement = Index::create();
    statement.name(name).table(table);
    for col in cols {
        statement.col(col);
    }
    if unique {
        statement.unique();
    }
    statement.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApprovalFlows::Table)
                    .col(uuid(ApprovalFlows::Id).primary_key())
                    .col(string(ApprovalFlows::Name))
                    .col(boolean(ApprovalFlows::AllowSelfApproval))
                    .col(timestamp_with_time_zone(ApprovalFlows::CreatedAt))
                    .col(timestamp_with_time_zone(ApprovalFlows::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalSteps::Table)
                    .col(uuid(ApprovalSteps::Id).primary_key())
                    .col(uuid(ApprovalSteps::FlowId))
                    .col(integer(ApprovalSteps::Position))
                    .col(string(ApprovalSteps::Name))
                    .col(uuid_null(ApprovalSteps::ApproverUserId))
                    .col(string_null(ApprovalSteps::ApproverRole))
                    .col(boolean(ApprovalSteps::DepartmentHead))
                    .col(string_null(ApprovalSteps::ApproverField))
                    .col(integer(ApprovalSteps::RequiredApprovals))
                    .col(string_null(ApprovalSteps::ConditionField))
                    .col(string_null(ApprovalSteps::ConditionOp))
                    .col(string_null(ApprovalSteps::ConditionValue))
                    .col(integer_null(ApprovalSteps::SlaHours))
                    .foreign_key(&mut fk(
                        (ApprovalSteps::Table, ApprovalSteps::FlowId),
                        (ApprovalFlows::Table, ApprovalFlows::Id),
                    ))
                    .foreign_key(&mut fk(
                        (ApprovalSteps::Table, ApprovalSteps::ApproverUserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_approval_steps_flow_position",
                ApprovalSteps::Table,
                vec![
                    ApprovalSteps::FlowId.into_iden(),
                    ApprovalSteps::Position.into_iden(),
                ],
                true,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalInstances::Table)
                    .col(uuid(ApprovalInstances::Id).primary_key())
                    .col(uuid(ApprovalInstances::FlowId))
                    .col(string(ApprovalInstances::SubjectType))
                    .col(uuid(ApprovalInstances::SubjectId))
                    .col(uuid_null(ApprovalInstances::SubjectDepartmentId))
                    .col(uuid(ApprovalInstances::InitiatorId))
                    .col(string(ApprovalInstances::Status))
                    .col(json(ApprovalInstances::StepPositions))
                    .col(integer(ApprovalInstances::CurrentIndex))
                    .col(json(ApprovalInstances::Facts))
                    .col(timestamp_with_time_zone(ApprovalInstances::StartedAt))
                    .col(timestamp_with_time_zone(ApprovalInstances::StepStartedAt))
                    .col(timestamp_with_time_zone_null(ApprovalInstances::DecidedAt))
                    .foreign_key(&mut fk(
                        (ApprovalInstances::Table, ApprovalInstances::FlowId),
                        (ApprovalFlows::Table, ApprovalFlows::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_approval_instances_subject",
                ApprovalInstances::Table,
                vec![
                    ApprovalInstances::SubjectType.into_iden(),
                    ApprovalInstances::SubjectId.into_iden(),
                ],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalAssignments::Table)
                    .col(uuid(ApprovalAssignments::Id).primary_key())
                    .col(uuid(ApprovalAssignments::InstanceId))
                    .col(integer(ApprovalAssignments::StepIndex))
                    .col(uuid(ApprovalAssignments::UserId))
                    .col(timestamp_with_time_zone(ApprovalAssignments::CreatedAt))
                    .foreign_key(&mut fk(
                        (ApprovalAssignments::Table, ApprovalAssignments::InstanceId),
                        (ApprovalInstances::Table, ApprovalInstances::Id),
                    ))
                    .foreign_key(&mut fk(
                        (ApprovalAssignments::Table, ApprovalAssignments::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_approval_assignments",
                ApprovalAssignments::Table,
                vec![
                    ApprovalAssignments::InstanceId.into_iden(),
                    ApprovalAssignments::StepIndex.into_iden(),
                    ApprovalAssignments::UserId.into_iden(),
                ],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_approval_assignments_user",
                ApprovalAssignments::Table,
                vec![ApprovalAssignments::UserId.into_iden()],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalDecisions::Table)
                    .col(uuid(ApprovalDecisions::Id).primary_key())
                    .col(uuid(ApprovalDecisions::InstanceId))
                    .col(integer(ApprovalDecisions::StepIndex))
                    .col(string(ApprovalDecisions::StepName))
                    .col(uuid(ApprovalDecisions::AccountableUserId))
                    .col(uuid(ApprovalDecisions::DecidedBy))
                    .col(boolean(ApprovalDecisions::Approve))
                    .col(text_null(ApprovalDecisions::Comment))
                    .col(timestamp_with_time_zone(ApprovalDecisions::DecidedAt))
                    .foreign_key(&mut fk(
                        (ApprovalDecisions::Table, ApprovalDecisions::InstanceId),
                        (ApprovalInstances::Table, ApprovalInstances::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One decision per accountable approver per step, even when two requests race.
        manager
            .create_index(index(
                "uq_approval_decisions_once",
                ApprovalDecisions::Table,
                vec![
                    ApprovalDecisions::InstanceId.into_iden(),
                    ApprovalDecisions::StepIndex.into_iden(),
                    ApprovalDecisions::AccountableUserId.into_iden(),
                ],
                true,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalDelegations::Table)
                    .col(uuid(ApprovalDelegations::Id).primary_key())
                    .col(uuid(ApprovalDelegations::FromUserId))
                    .col(uuid(ApprovalDelegations::ToUserId))
                    .col(timestamp_with_time_zone(ApprovalDelegations::StartsAt))
                    .col(timestamp_with_time_zone(ApprovalDelegations::EndsAt))
                    .col(timestamp_with_time_zone(ApprovalDelegations::CreatedAt))
                    .foreign_key(&mut fk(
                        (ApprovalDelegations::Table, ApprovalDelegations::FromUserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        (ApprovalDelegations::Table, ApprovalDelegations::ToUserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskCategories::Table)
                    .col(uuid(TaskCategories::Id).primary_key())
                    .col(string_uniq(TaskCategories::Code))
                    .col(string(TaskCategories::Name))
                    .col(integer(TaskCategories::DefaultPriority))
                    .col(json_null(TaskCategories::CustomFieldsSchema))
                    .col(uuid_null(TaskCategories::ApprovalFlowId))
                    .col(string(TaskCategories::AssignmentStrategy))
                    .col(uuid_null(TaskCategories::PoolDepartmentId))
                    .col(string_null(TaskCategories::PoolRole))
                    .col(big_integer(TaskCategories::RoundRobinCounter))
                    .col(timestamp_with_time_zone(TaskCategories::CreatedAt))
                    .col(timestamp_with_time_zone(TaskCategories::UpdatedAt))
                    .foreign_key(&mut fk(
                        (TaskCategories::Table, TaskCategories::ApprovalFlowId),
                        (ApprovalFlows::Table, ApprovalFlows::Id),
                    ))
                    .foreign_key(&mut fk(
                        (TaskCategories::Table, TaskCategories::PoolDepartmentId),
                        (Departments::Table, Departments::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(uuid(Tasks::Id).primary_key())
                    .col(uuid(Tasks::CategoryId))
                    .col(uuid_null(Tasks::ParentId))
                    .col(string(Tasks::Title))
                    .col(text(Tasks::KeyPoints))
                    .col(uuid(Tasks::InitiatorId))
                    .col(uuid_null(Tasks::DepartmentId))
                    .col(boolean(Tasks::IsTeamTask))
                    .col(uuid_null(Tasks::ConfirmerId))
                    .col(boolean(Tasks::HasCashOutput))
                    .col(big_integer_null(Tasks::CashOutputMinor))
                    .col(string(Tasks::Currency))
                    .col(timestamp_with_time_zone_null(Tasks::StartAt))
                    .col(timestamp_with_time_zone_null(Tasks::Deadline))
                    .col(integer(Tasks::Priority))
                    .col(integer(Tasks::Progress))
                    .col(integer_null(Tasks::ReportedProgress))
                    .col(integer(Tasks::MeritPoints))
                    .col(string(Tasks::ReviewStatus))
                    .col(text_null(Tasks::RejectionReason))
                    .col(string(Tasks::Status))
                    .col(json(Tasks::CustomFields))
                    .col(integer(Tasks::Version))
                    .col(uuid_null(Tasks::ApprovalInstanceId))
                    .col(boolean(Tasks::Overdue))
                    .col(timestamp_with_time_zone_null(Tasks::CompletedAt))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .foreign_key(&mut fk(
                        (Tasks::Table, Tasks::CategoryId),
                        (TaskCategories::Table, TaskCategories::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Tasks::Table, Tasks::ParentId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Tasks::Table, Tasks::InitiatorId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Tasks::Table, Tasks::ConfirmerId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Tasks::Table, Tasks::DepartmentId),
                        (Departments::Table, Departments::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_tasks_parent", Tasks::ParentId),
            ("idx_tasks_category", Tasks::CategoryId),
            ("idx_tasks_initiator", Tasks::InitiatorId),
            ("idx_tasks_department", Tasks::DepartmentId),
            ("idx_tasks_deadline", Tasks::Deadline),
        ] {
            manager
                .create_index(index(name, Tasks::Table, vec![col.into_iden()], false))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(TaskExecutors::Table)
                    .col(uuid(TaskExecutors::TaskId))
                    .col(uuid(TaskExecutors::UserId))
                    .col(integer(TaskExecutors::Position))
                    .primary_key(
                        Index::create()
                            .col(TaskExecutors::TaskId)
                            .col(TaskExecutors::UserId),
                    )
                    .foreign_key(&mut fk(
                        (TaskExecutors::Table, TaskExecutors::TaskId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .foreign_key(&mut fk(
                        (TaskExecutors::Table, TaskExecutors::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_task_executors_user",
                TaskExecutors::Table,
                vec![TaskExecutors::UserId.into_iden()],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskComments::Table)
                    .col(uuid(TaskComments::Id).primary_key())
                    .col(uuid(TaskComments::TaskId))
                    .col(uuid(TaskComments::AuthorId))
                    .col(text(TaskComments::Body))
                    .col(timestamp_with_time_zone(TaskComments::CreatedAt))
                    .col(timestamp_with_time_zone(TaskComments::UpdatedAt))
                    .col(timestamp_with_time_zone_null(TaskComments::DeletedAt))
                    .foreign_key(&mut fk(
                        (TaskComments::Table, TaskComments::TaskId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .foreign_key(&mut fk(
                        (TaskComments::Table, TaskComments::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_task_comments_task",
                TaskComments::Table,
                vec![
                    TaskComments::TaskId.into_iden(),
                    TaskComments::Id.into_iden(),
                ],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskActivity::Table)
                    .col(uuid(TaskActivity::Id).primary_key())
                    .col(uuid(TaskActivity::TaskId))
                    .col(uuid(TaskActivity::ActorId))
                    .col(string(TaskActivity::Action))
                    .col(string_null(TaskActivity::Field))
                    .col(text_null(TaskActivity::OldValue))
                    .col(text_null(TaskActivity::NewValue))
                    .col(timestamp_with_time_zone(TaskActivity::At))
                    .foreign_key(&mut fk(
                        (TaskActivity::Table, TaskActivity::TaskId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_task_activity_task",
                TaskActivity::Table,
                vec![
                    TaskActivity::TaskId.into_iden(),
                    TaskActivity::Id.into_iden(),
                ],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskAttachments::Table)
                    .col(uuid(TaskAttachments::Id).primary_key())
                    .col(uuid(TaskAttachments::TaskId))
                    .col(uuid(TaskAttachments::UploaderId))
                    .col(string(TaskAttachments::Filename))
                    .col(string(TaskAttachments::ContentType))
                    .col(big_integer(TaskAttachments::SizeBytes))
                    .col(string(TaskAttachments::StorageKey))
                    .col(string(TaskAttachments::Sha256))
                    .col(timestamp_with_time_zone(TaskAttachments::CreatedAt))
                    .foreign_key(&mut fk(
                        (TaskAttachments::Table, TaskAttachments::TaskId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_task_attachments_task",
                TaskAttachments::Table,
                vec![TaskAttachments::TaskId.into_iden()],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MeritRecords::Table)
                    .col(uuid(MeritRecords::Id).primary_key())
                    .col(uuid(MeritRecords::TaskId))
                    .col(uuid(MeritRecords::UserId))
                    .col(integer(MeritRecords::Points))
                    .col(timestamp_with_time_zone(MeritRecords::CreatedAt))
                    .foreign_key(&mut fk(
                        (MeritRecords::Table, MeritRecords::TaskId),
                        (Tasks::Table, Tasks::Id),
                    ))
                    .foreign_key(&mut fk(
                        (MeritRecords::Table, MeritRecords::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_merit_records_task_user",
                MeritRecords::Table,
                vec![
                    MeritRecords::TaskId.into_iden(),
                    MeritRecords::UserId.into_iden(),
                ],
                true,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(uuid(Outbox::Id).primary_key())
                    .col(string(Outbox::Topic))
                    .col(string_uniq(Outbox::DedupeKey))
                    .col(json(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::ProcessedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(uuid(Notifications::Id).primary_key())
                    .col(uuid(Notifications::UserId))
                    .col(string(Notifications::Kind))
                    .col(string(Notifications::Title))
                    .col(text(Notifications::Body))
                    .col(string_null(Notifications::SubjectType))
                    .col(uuid_null(Notifications::SubjectId))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(&mut fk(
                        (Notifications::Table, Notifications::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_notifications_user",
                Notifications::Table,
                vec![
                    Notifications::UserId.into_iden(),
                    Notifications::Id.into_iden(),
                ],
                false,
            ))
            .await?;
        Ok(())
    }
}
