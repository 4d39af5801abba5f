//! `taskStats` and `approvalStats`: thin resolvers over `reports::service`; keys resolve to
//! typed objects through the per-request loaders.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domains::approvals::graphql::ApprovalFlow;
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::identity::graphql::{department_by_id, user_by_id, Department, User};
use crate::domains::reports::model::{self, Source, Window};
use crate::domains::reports::service;
use crate::domains::tasks::graphql::{ReviewStatus, TaskCategory, TaskFilter, TaskStatus};
use crate::domains::tasks::loaders::TaskLoaders;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::scalars::Money;
use crate::platform::money::{currency_exponent, Decimal};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "model::TaskDimension")]
pub enum TaskDimension {
    Department,
    Category,
    Executor,
    Status,
    ReviewStatus,
    Priority,
    DeadlineMonth,
    CompletedMonth,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "model::ApprovalDimension")]
pub enum ApprovalDimension {
    Flow,
    Step,
    Approver,
    SubjectKind,
    Month,
}

/// Hours, interpolated linearly between closest ranks (as `percentile_cont`); null over no
/// completed task.
#[derive(SimpleObject)]
pub struct Percentiles {
    p50: Option<f64>,
    p85: Option<f64>,
}

impl From<model::Percentiles> for Percentiles {
    fn from(p: model::Percentiles) -> Self {
        Self {
            p50: p.p50,
            p85: p.p85,
        }
    }
}

/// Hours from a step's start to the approver's decision; null over no decision.
#[derive(SimpleObject)]
pub struct DecisionTime {
    avg: Option<f64>,
    p50: Option<f64>,
    p85: Option<f64>,
}

pub struct TaskStatsRow {
    row: model::TaskStatsRow,
    exponent: u32,
}

/// One group: its key (null where not grouped by that dimension, or where the value is null)
/// and its measures. See the README's "Statistics" for every formula.
#[Object]
impl TaskStatsRow {
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        match self.row.key.department {
            Some(id) => department_by_id(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn category(&self, ctx: &Context<'_>) -> Result<Option<TaskCategory>> {
        let Some(id) = self.row.key.category else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .categories
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(TaskCategory::from))
    }

    async fn executor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.row.key.executor {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn status(&self) -> Option<TaskStatus> {
        self.row.key.status().map(Into::into)
    }

    async fn review_status(&self) -> Option<ReviewStatus> {
        self.row.key.review_status().map(Into::into)
    }

    async fn priority(&self) -> Option<i32> {
        self.row.key.priority
    }

    /// `YYYY-MM` of the deadline, in UTC.
    async fn deadline_month(&self) -> Option<&str> {
        self.row.key.deadline_month.as_deref()
    }

    /// `YYYY-MM` of the completion, in UTC.
    async fn completed_month(&self) -> Option<&str> {
        self.row.key.completed_month.as_deref()
    }

    async fn count(&self) -> i64 {
        self.row.count
    }

    async fn done(&self) -> i64 {
        self.row.done
    }

    /// As `tasks(filter: {overdue: true})` counts: deadline past, not yet done or cancelled.
    async fn overdue(&self) -> i64 {
        self.row.overdue
    }

    async fn on_time(&self) -> i64 {
        self.row.on_time
    }

    async fn completed_with_deadline(&self) -> i64 {
        self.row.completed_with_deadline
    }

    /// `onTime / completedWithDeadline`; null below 3 completed tasks with a deadline.
    async fn on_time_rate(&self) -> Option<f64> {
        self.row.on_time_rate()
    }

    async fn merit_total(&self) -> i64 {
        self.row.merit_total
    }

    async fn cash_output_total(&self) -> Money {
        Money(Decimal::from_minor(
            self.row.cash_output_minor,
            self.exponent,
        ))
    }

    async fn avg_progress(&self) -> Option<f64> {
        self.row.avg_progress()
    }

    /// Created to completed.
    async fn lead_time_hours(&self) -> Percentiles {
        self.row.lead_time_hours.into()
    }

    /// Approved to completed.
    async fn cycle_time_hours(&self) -> Percentiles {
        self.row.cycle_time_hours.into()
    }
}

pub struct TaskStats {
    stats: model::TaskStats,
    exponent: u32,
}

#[Object]
impl TaskStats {
    async fn rows(&self) -> Vec<TaskStatsRow> {
        self.stats
            .rows
            .iter()
            .map(|row| TaskStatsRow {
                row: row.clone(),
                exponent: self.exponent,
            })
            .collect()
    }

    /// The whole set, each task once (also when grouped by executor).
    async fn total(&self) -> TaskStatsRow {
        TaskStatsRow {
            row: self.stats.total.clone(),
            exponent: self.exponent,
        }
    }

    /// How fresh the answer is: the last rollup refresh when rollups answered, else now.
    async fn as_of(&self) -> DateTime<Utc> {
        self.stats.as_of
    }
}

pub struct ApprovalStatsRow(model::ApprovalStatsRow);

#[Object]
impl ApprovalStatsRow {
    async fn flow(&self, ctx: &Context<'_>) -> Result<Option<ApprovalFlow>> {
        let Some(id) = self.0.key.flow else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .flows
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(ApprovalFlow::from))
    }

    /// The step's name; with FLOW it names one step.
    async fn step(&self) -> Option<&str> {
        self.0.key.step.as_deref()
    }

    async fn approver(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.key.approver {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn subject_kind(&self) -> Option<&str> {
        self.0.key.subject_kind.as_deref()
    }

    /// `YYYY-MM` of the step's start, in UTC.
    async fn month(&self) -> Option<&str> {
        self.0.key.month.as_deref()
    }

    async fn count(&self) -> i64 {
        self.0.count
    }

    async fn approved(&self) -> i64 {
        self.0.approved
    }

    async fn rejected(&self) -> i64 {
        self.0.rejected
    }

    async fn pending(&self) -> i64 {
        self.0.pending
    }

    async fn sla_breaches(&self) -> i64 {
        self.0.sla_breaches
    }

    async fn decision_hours(&self) -> DecisionTime {
        let d = self.0.decision_hours;
        DecisionTime {
            avg: d.avg,
            p50: d.p50,
            p85: d.p85,
        }
    }
}

pub struct ApprovalStats(model::ApprovalStats);

#[Object]
impl ApprovalStats {
    async fn rows(&self) -> Vec<ApprovalStatsRow> {
        self.0.rows.iter().cloned().map(ApprovalStatsRow).collect()
    }

    async fn total(&self) -> ApprovalStatsRow {
        ApprovalStatsRow(self.0.total.clone())
    }

    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
}

#[derive(Default)]
pub struct ReportsQuery;

#[Object]
impl ReportsQuery {
    /// Grouped statistics over the tasks `tasks(filter:)` shows the caller, created in
    /// `[from, to)`. At most 4 distinct dimensions and 10,000 groups.
    async fn task_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        group_by: Vec<TaskDimension>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<TaskStats> {
        let caller = ctx.caller()?;
        let query = model::TaskStatsQuery {
            filter: filter.unwrap_or_default().try_into()?,
            group_by: group_by.into_iter().map(Into::into).collect(),
            window: Window::parse(from, to)?,
            source: Source::Auto,
        };
        let stats = service::task_stats(caller.db(), caller.viewer, query).await?;
        Ok(TaskStats {
            stats,
            exponent: currency_exponent(&caller.app.config.currency),
        })
    }

    /// Grouped statistics over the approval steps of the approvals the caller may read, whose
    /// step started in `[from, to)`.
    async fn approval_stats(
        &self,
        ctx: &Context<'_>,
        group_by: Vec<ApprovalDimension>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<ApprovalStats> {
        let caller = ctx.caller()?;
        let query = model::ApprovalStatsQuery {
            group_by: group_by.into_iter().map(Into::into).collect(),
            window: Window::parse(from, to)?,
        };
        let stats = service::approval_stats(caller.db(), caller.viewer, query).await?;
        Ok(ApprovalStats(stats))
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;

    /// The CSV export parses `groupBy=` by the SDL names; they must stay the GraphQL enums'.
    #[test]
    fn dimensions_parse_by_their_sdl_names() {
        for item in TaskDimension::items() {
            let dimension: model::TaskDimension = item.value.into();
            assert_eq!(
                model::TaskDimension::parse(item.name),
                Some(dimension),
                "{}",
                item.name
            );
        }
        for item in ApprovalDimension::items() {
            let dimension: model::ApprovalDimension = item.value.into();
            assert_eq!(
                model::ApprovalDimension::parse(item.name),
                Some(dimension),
                "{}",
                item.name
            );
        }
    }
}
