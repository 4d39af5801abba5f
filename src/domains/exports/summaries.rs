//! The summary reports as CSV: task and approval statistics (small, computed whole by the
//! reports service before the first byte) and portraits (one row per person the viewer may
//! see, streamed in batches; each portrait computed as `User.profile` computes it).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, Select};
use uuid::Uuid;

use super::model::Cell;
use super::service::{amount, batches, CsvOut, ExportError};
use crate::auth::Viewer;
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::domains::profiles::model::ProfileWindow;
use crate::domains::profiles::service as profiles;
use crate::domains::reports::model::{
    ApprovalStats, ApprovalStatsQuery, ApprovalStatsRow, TaskStats, TaskStatsQuery, TaskStatsRow,
};
use crate::domains::reports::service as reports;
use crate::domains::tasks::service as tasks;
use crate::error::AppResult;

/// Statistics with the names of their keys, looked up once for the whole answer.
pub struct TaskStatsTable {
    stats: TaskStats,
    departments: HashMap<Uuid, String>,
    categories: HashMap<Uuid, (String, String)>,
    people: HashMap<Uuid, String>,
}

pub struct ApprovalStatsTable {
    stats: ApprovalStats,
    flows: HashMap<Uuid, String>,
    people: HashMap<Uuid, String>,
}

pub struct ProfilesTable {
    pub viewer: Viewer,
    pub people: Select<entities::user::Entity>,
    pub window: ProfileWindow,
}

async fn names_of_people(
    db: &DatabaseConnection,
    ids: Vec<Uuid>,
) -> AppResult<HashMap<Uuid, String>> {
    Ok(identity::users_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

pub async fn task_stats(
    db: &DatabaseConnection,
    viewer: &Viewer,
    query: TaskStatsQuery,
) -> AppResult<TaskStatsTable> {
    let stats = reports::task_stats(db, viewer, query).await?;
    let department_ids: Vec<Uuid> = stats.rows.iter().filter_map(|r| r.key.department).collect();
    let departments = identity::departments_by_id(db, &department_ids)
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    // Archived categories still label the tasks filed under them.
    let categories = tasks::list_categories(db, viewer, true)
        .await?
        .into_iter()
        .map(|c| (c.id, (c.code, c.name)))
        .collect();
    let people = names_of_people(
        db,
        stats.rows.iter().filter_map(|r| r.key.executor).collect(),
    )
    .await?;
    Ok(TaskStatsTable {
        stats,
        departments,
        categories,
        people,
    })
}

pub async fn approval_stats(
    db: &DatabaseConnection,
    viewer: &Viewer,
    query: ApprovalStatsQuery,
) -> AppResult<ApprovalStatsTable> {
    let stats = reports::approval_stats(db, viewer, query).await?;
    let flows = approvals::list_flows(db, viewer)
        .await?
        .into_iter()
        .map(|f| (f.id, f.name))
        .collect();
    let people = names_of_people(
        db,
        stats.rows.iter().filter_map(|r| r.key.approver).collect(),
    )
    .await?;
    Ok(ApprovalStatsTable {
        stats,
        flows,
        people,
    })
}

fn when(at: DateTime<Utc>) -> Cell<'static> {
    Cell::display(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A measure the export computed (a count, a rate, hours): a number, never a formula.
fn number(value: impl std::fmt::Display) -> Cell<'static> {
    Cell::Amount(value.to_string())
}

fn optional_number(value: Option<f64>) -> Cell<'static> {
    value.map_or(Cell::Empty, number)
}

const TASK_STATS_COLUMNS: [&str; 27] = [
    "scope",
    "departmentId",
    "departmentName",
    "categoryCode",
    "categoryName",
    "executorId",
    "executorName",
    "status",
    "reviewStatus",
    "priority",
    "deadlineMonth",
    "completedMonth",
    "count",
    "done",
    "overdue",
    "onTime",
    "completedWithDeadline",
    "onTimeRate",
    "meritTotal",
    "cashOutputTotal",
    "currency",
    "avgProgress",
    "leadTimeHoursP50",
    "leadTimeHoursP85",
    "cycleTimeHoursP50",
    "cycleTimeHoursP85",
    "asOf",
];

impl TaskStatsTable {
    pub fn rows(&self) -> u64 {
        self.stats.rows.len() as u64 + 1
    }

    /// The grouped rows (`scope` = `group`), then the whole set's (`scope` = `total`).
    pub async fn write(
        self,
        currency: &str,
        exponent: u32,
        out: &mut CsvOut,
    ) -> Result<(), ExportError> {
        out.header(&TASK_STATS_COLUMNS).await?;
        let as_of = self.stats.as_of;
        for row in &self.stats.rows {
            self.write_row("group", row, as_of, currency, exponent, out)
                .await?;
        }
        self.write_row("total", &self.stats.total, as_of, currency, exponent, out)
            .await
    }

    async fn write_row(
        &self,
        scope: &'static str,
        row: &TaskStatsRow,
        as_of: DateTime<Utc>,
        currency: &str,
        exponent: u32,
        out: &mut CsvOut,
    ) -> Result<(), ExportError> {
        let key = &row.key;
        let category = key.category.and_then(|id| self.categories.get(&id));
        out.row(&[
            Cell::text(scope),
            Cell::opt(key.department),
            Cell::opt(key.department.and_then(|id| self.departments.get(&id))),
            Cell::opt(category.map(|c| c.0.as_str())),
            Cell::opt(category.map(|c| c.1.as_str())),
            Cell::opt(key.executor),
            Cell::opt(key.executor.and_then(|id| self.people.get(&id))),
            Cell::opt(key.status.as_deref()),
            Cell::opt(key.review_status.as_deref()),
            key.priority.map_or(Cell::Empty, number),
            Cell::opt(key.deadline_month.as_deref()),
            Cell::opt(key.completed_month.as_deref()),
            number(row.count),
            number(row.done),
            number(row.overdue),
            number(row.on_time),
            number(row.completed_with_deadline),
            optional_number(row.on_time_rate()),
            number(row.merit_total),
            amount(row.cash_output_minor, exponent),
            Cell::text(currency),
            optional_number(row.avg_progress()),
            optional_number(row.lead_time_hours.p50),
            optional_number(row.lead_time_hours.p85),
            optional_number(row.cycle_time_hours.p50),
            optional_number(row.cycle_time_hours.p85),
            when(as_of),
        ])
        .await
    }
}

const APPROVAL_STATS_COLUMNS: [&str; 17] = [
    "scope",
    "flowId",
    "flowName",
    "step",
    "approverId",
    "approverName",
    "subjectKind",
    "month",
    "count",
    "approved",
    "rejected",
    "pending",
    "slaBreaches",
    "decisionHoursAvg",
    "decisionHoursP50",
    "decisionHoursP85",
    "asOf",
];

impl ApprovalStatsTable {
    pub fn rows(&self) -> u64 {
        self.stats.rows.len() as u64 + 1
    }

    pub async fn write(self, out: &mut CsvOut) -> Result<(), ExportError> {
        out.header(&APPROVAL_STATS_COLUMNS).await?;
        for row in &self.stats.rows {
            self.write_row("group", row, out).await?;
        }
        self.write_row("total", &self.stats.total, out).await
    }

    async fn write_row(
        &self,
        scope: &'static str,
        row: &ApprovalStatsRow,
        out: &mut CsvOut,
    ) -> Result<(), ExportError> {
        let key = &row.key;
        out.row(&[
            Cell::text(scope),
            Cell::opt(key.flow),
            Cell::opt(key.flow.and_then(|id| self.flows.get(&id))),
            Cell::opt(key.step.as_deref()),
            Cell::opt(key.approver),
            Cell::opt(key.approver.and_then(|id| self.people.get(&id))),
            Cell::opt(key.subject_kind.as_deref()),
            Cell::opt(key.month.as_deref()),
            number(row.count),
            number(row.approved),
            number(row.rejected),
            number(row.pending),
            number(row.sla_breaches),
            optional_number(row.decision_hours.avg),
            optional_number(row.decision_hours.p50),
            optional_number(row.decision_hours.p85),
            when(self.stats.as_of),
        ])
        .await
    }
}

const PROFILE_COLUMNS: [&str; 21] = [
    "userId",
    "name",
    "departmentId",
    "from",
    "to",
    "tasksOpen",
    "tasksDone",
    "onTimeCount",
    "doneWithDeadline",
    "onTimeRate",
    "throughputPerWeek",
    "cycleTimeHoursP50",
    "cycleTimeHoursP85",
    "meritTotal",
    "cashOutputTotal",
    "currency",
    "currentWorkload",
    "approvalsPending",
    "approvalDecisionHoursAvg",
    "approvalDecisionHoursP50",
    "asOf",
];

impl ProfilesTable {
    /// One portrait per person the viewer may see, in name order (never ordered by a measure),
    /// each computed by `profiles::profile_of` with the viewer's own rights.
    pub async fn write(
        self,
        db: &DatabaseConnection,
        currency: &str,
        exponent: u32,
        out: &mut CsvOut,
    ) -> Result<(), ExportError> {
        out.header(&PROFILE_COLUMNS).await?;
        let mut people = batches(db, self.people);
        while let Some(batch) = people.try_next().await? {
            for person in batch {
                let p = profiles::profile_of(db, &self.viewer, person.id, self.window).await?;
                out.row(&[
                    Cell::display(person.id),
                    Cell::text(person.name.as_str()),
                    Cell::opt(person.department_id),
                    when(p.window.from()),
                    when(p.window.to()),
                    number(p.tasks_open),
                    number(p.tasks_done),
                    number(p.on_time_count),
                    number(p.done_with_deadline),
                    optional_number(p.on_time_rate),
                    number(p.throughput_per_week),
                    optional_number(p.cycle_time_hours.p50),
                    optional_number(p.cycle_time_hours.p85),
                    number(p.merit_total),
                    amount(p.cash_output_minor, exponent),
                    Cell::text(currency),
                    number(p.current_workload),
                    number(p.approvals_pending),
                    optional_number(p.approval_decision_hours.avg),
                    optional_number(p.approval_decision_hours.p50),
                    when(p.as_of),
                ])
                .await?;
            }
        }
        Ok(())
    }
}
