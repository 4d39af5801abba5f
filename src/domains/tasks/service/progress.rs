//! Work on an approved task: executors report progress, the confirmer confirms it, and a
//! confirmed 100% completes the task, awarding merit and recording its cash output once.

use chrono::Utc;
use entities::{merit_record, task};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::domains::approvals::model::SubjectRef;
use crate::domains::approvals::service as approvals;
use crate::domains::business::service as business;
use uuid::Uuid;

use super::lifecycle::{load_for_change, save_versioned};
use super::{audience_of, emit, executors_of, record};
use crate::auth::Viewer;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::{
    parse_progress, split_merit, ReviewStatus, TaskEventKind, TaskId, WorkStatus, SUBJECT_KIND,
};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

fn subject(id: Uuid) -> Option<Subject> {
    Some(Subject {
        kind: SUBJECT_KIND,
        id,
    })
}

/// An optional free-text note: trimmed, empty treated as absent, at most 2000 characters.
fn short_text<'a>(field: &str, text: Option<&'a str>) -> AppResult<Option<&'a str>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 2000) {
        return Err(AppError::bad_field(
            field,
            format!("{field} has at most 2000 characters"),
        ));
    }
    Ok(text)
}

fn ensure_workable(task: &task::Model) -> AppResult<()> {
    if ReviewStatus::parse(&task.review_status) != Some(ReviewStatus::Approved) {
        return Err(AppError::Conflict(
            "work starts once the task is approved".into(),
        ));
    }
    if !WorkStatus::parse(&task.status).is_some_and(WorkStatus::is_open) {
        return Err(AppError::Conflict("the task is already finished".into()));
    }
    Ok(())
}

/// The person who confirms progress: the named confirmer, else the initiator.
fn confirmer_of(task: &task::Model) -> Uuid {
    task.confirmer_id.unwrap_or(task.initiator_id)
}

pub async fn report_progress(
    work: &Work,
    viewer: &Viewer,
    id: TaskId,
    progress: i32,
    note: Option<&str>,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let progress = parse_progress(progress)?;
    let note = short_text("note", note)?;
    let current = load_for_change(work, me, id).await?;
    if !executors_of(work, current.id).await?.contains(&me.id) {
        return Err(AppError::Forbidden(
            "only an executor reports progress".into(),
        ));
    }
    ensure_workable(&current)?;
    let mut active: task::ActiveModel = current.clone().into();
    active.reported_progress = Set(Some(progress));
    if WorkStatus::parse(&current.status) == Some(WorkStatus::Open) {
        active.status = Set(WorkStatus::InProgress.as_str().to_owned());
    }
    let updated = save_versioned(work, active, current.version).await?;
    record(
        work,
        updated.id,
        me.id,
        "progress_reported",
        Some("reportedProgress"),
        current.reported_progress.map(|p| p.to_string()),
        Some(progress.to_string()),
    )
    .await?;
    if let Some(note) = note {
        record(
            work,
            updated.id,
            me.id,
            "progress_note",
            None,
            None,
            Some(note.to_owned()),
        )
        .await?;
    }
    notifications::notify(
        work,
        &[confirmer_of(&updated)],
        Some(me.id),
        notifications::Notice {
            kind: NotificationKind::ProgressReported,
            title: &format!("Progress reported: {progress}%"),
            body: note.unwrap_or(&updated.title),
            subject: subject(updated.id),
        },
    )
    .await?;
    let audience = audience_of(work, &updated).await?;
    emit(
        work,
        TaskEventKind::ProgressReported,
        &updated,
        me.id,
        &audience,
    );
    if current.status != updated.status {
        emit(
            work,
            TaskEventKind::StatusChanged,
            &updated,
            me.id,
            &audience,
        );
    }
    Ok(updated)
}

/// `expected` is the reported value the confirmer saw; if the executor reported again since,
/// the confirmation is refused rather than applied to a value nobody confirmed.
pub async fn confirm_progress(
    work: &Work,
    viewer: &Viewer,
    id: TaskId,
    expected: Option<i32>,
    note: Option<&str>,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let note = short_text("note", note)?;
    let current = load_for_change(work, me, id).await?;
    if confirmer_of(&current) != me.id {
        return Err(AppError::Forbidden(
            "only the progress confirmer confirms progress".into(),
        ));
    }
    ensure_workable(&current)?;
    let Some(reported) = current.reported_progress else {
        return Err(AppError::Conflict(
            "there is no reported progress to confirm".into(),
        ));
    };
    if expected.is_some_and(|e| e != reported) {
        return Err(AppError::Conflict(format!(
            "the reported progress is now {reported}%; review it and confirm again"
        )));
    }
    if executors_of(work, current.id).await?.contains(&me.id) {
        return Err(AppError::Forbidden(
            "an executor cannot confirm their own progress".into(),
        ));
    }
    let completes = reported == 100;
    let now = Utc::now();
    let mut active: task::ActiveModel = current.clone().into();
    active.progress = Set(reported);
    active.reported_progress = Set(None);
    if completes {
        active.status = Set(WorkStatus::Done.as_str().to_owned());
        active.completed_at = Set(Some(now));
    }
    let updated = save_versioned(work, active, current.version).await?;
    record(
        work,
        updated.id,
        me.id,
        "progress_confirmed",
        Some("progress"),
        Some(current.progress.to_string()),
        Some(reported.to_string()),
    )
    .await?;
    if let Some(note) = note {
        record(
            work,
            updated.id,
            me.id,
            "confirmation_note",
            None,
            None,
            Some(note.to_owned()),
        )
        .await?;
    }
    let executors = executors_of(work, updated.id).await?;
    if completes {
        record(
            work,
            updated.id,
            me.id,
            "completed",
            Some("status"),
            Some(current.status.clone()),
            Some(updated.status.clone()),
        )
        .await?;
        award_merit(work, &updated, &executors).await?;
        record_cash_output(work, &updated).await?;
    }
    notifications::notify(
        work,
        &executors,
        Some(me.id),
        notifications::Notice {
            kind: NotificationKind::ProgressConfirmed,
            title: &format!("Progress confirmed: {reported}%"),
            body: note.unwrap_or(&updated.title),
            subject: subject(updated.id),
        },
    )
    .await?;
    let audience = audience_of(work, &updated).await?;
    emit(
        work,
        TaskEventKind::ProgressConfirmed,
        &updated,
        me.id,
        &audience,
    );
    if completes {
        emit(
            work,
            TaskEventKind::StatusChanged,
            &updated,
            me.id,
            &audience,
        );
    }
    Ok(updated)
}

/// Immutable merit records, one per executor; the unique (task, user) index makes a second
/// award impossible even if completion were attempted twice.
async fn award_merit<C: ConnectionTrait>(
    db: &C,
    task: &task::Model,
    executors: &[Uuid],
) -> AppResult<()> {
    if task.merit_points == 0 || executors.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = executors
        .iter()
        .zip(split_merit(task.merit_points, executors.len()))
        .map(|(user, points)| merit_record::ActiveModel {
            id: Set(Uuid::now_v7()),
            task_id: Set(task.id),
            user_id: Set(*user),
            points: Set(points),
            created_at: Set(now),
        });
    merit_record::Entity::insert_many(rows)
        .exec(db)
        .await
        .map_err(|e| {
            AppError::from_unique_violation(e, "merit for this task was already awarded")
        })?;
    Ok(())
}

/// The cash output becomes a `TASK_OUTPUT` business transaction in the completing unit of
/// work: revenue for the task's department, posted once (its idempotency key is the task).
async fn record_cash_output(work: &Work, task: &task::Model) -> AppResult<()> {
    let Some(amount) = task.cash_output_minor else {
        return Ok(());
    };
    let recorded =
        business::record_task_output(work, task.id, task.department_id, amount, &task.currency)
            .await?;
    if recorded.error.is_some() {
        return Err(AppError::Conflict(format!(
            "the task's cash output could not be posted: {}",
            recorded.error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// The initiator (or an administrator) cancels an unfinished task; nothing is awarded or posted.
pub async fn cancel_task(
    work: &Work,
    viewer: &Viewer,
    id: TaskId,
    reason: Option<&str>,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let reason = short_text("reason", reason)?;
    let current = load_for_change(work, me, id).await?;
    if current.initiator_id != me.id && !me.is_admin() {
        return Err(AppError::Forbidden(
            "only the initiator cancels a task".into(),
        ));
    }
    if !WorkStatus::parse(&current.status).is_some_and(WorkStatus::is_open) {
        return Err(AppError::Conflict("the task is already finished".into()));
    }
    let mut active: task::ActiveModel = current.clone().into();
    active.status = Set(WorkStatus::Cancelled.as_str().to_owned());
    active.reported_progress = Set(None);
    let updated = save_versioned(work, active, current.version).await?;
    approvals::cancel_for_subject(
        work,
        SubjectRef {
            kind: SUBJECT_KIND,
            id: updated.id,
        },
    )
    .await?;
    let open_subtasks = task::Entity::find()
        .filter(task::Column::ParentId.eq(updated.id))
        .filter(
            task::Column::Status
                .is_in([WorkStatus::Open.as_str(), WorkStatus::InProgress.as_str()]),
        )
        .all(work)
        .await?;
    for subtask in open_subtasks {
        let mut closing: task::ActiveModel = subtask.clone().into();
        closing.status = Set(WorkStatus::Cancelled.as_str().to_owned());
        closing.reported_progress = Set(None);
        save_versioned(work, closing, subtask.version).await?;
        record(
            work,
            subtask.id,
            me.id,
            "cancelled",
            Some("status"),
            Some(subtask.status.clone()),
            Some(WorkStatus::Cancelled.as_str().to_owned()),
        )
        .await?;
    }
    record(
        work,
        updated.id,
        me.id,
        "cancelled",
        Some("status"),
        Some(current.status.clone()),
        Some(updated.status.clone()),
    )
    .await?;
    if let Some(reason) = reason {
        record(
            work,
            updated.id,
            me.id,
            "cancellation_reason",
            None,
            None,
            Some(reason.to_owned()),
        )
        .await?;
    }
    let audience = audience_of(work, &updated).await?;
    emit(
        work,
        TaskEventKind::StatusChanged,
        &updated,
        me.id,
        &audience,
    );
    Ok(updated)
}
