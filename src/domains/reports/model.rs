//! Report queries and results as plain values: dimensions, windows, measures, and the one
//! percentile formula both backends share.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domains::tasks::model::{ReviewStatus, WorkStatus};
use crate::domains::tasks::service::TaskFilter;
use crate::error::{AppError, AppResult};

/// At most this many dimensions in one `groupBy`.
pub const MAX_DIMENSIONS: usize = 4;
/// A grouping with more groups than this is refused (`BAD_USER_INPUT` on `groupBy`), never
/// silently cut: a truncated report reads as a complete one.
pub const MAX_GROUPS: usize = 10_000;
/// `onTimeRate` is null below this many completed tasks with a deadline.
pub const MIN_RATE_BASE: i64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApprovalDimension {
    Flow,
    Step,
    Approver,
    SubjectKind,
    Month,
}

impl TaskDimension {
    /// The dimension by its SDL name (`DEADLINE_MONTH`), as the CSV export's `groupBy` gives it.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "DEPARTMENT" => Self::Department,
            "CATEGORY" => Self::Category,
            "EXECUTOR" => Self::Executor,
            "STATUS" => Self::Status,
            "REVIEW_STATUS" => Self::ReviewStatus,
            "PRIORITY" => Self::Priority,
            "DEADLINE_MONTH" => Self::DeadlineMonth,
            "COMPLETED_MONTH" => Self::CompletedMonth,
            _ => return None,
        })
    }
}

impl ApprovalDimension {
    /// The dimension by its SDL name (`SUBJECT_KIND`).
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "FLOW" => Self::Flow,
            "STEP" => Self::Step,
            "APPROVER" => Self::Approver,
            "SUBJECT_KIND" => Self::SubjectKind,
            "MONTH" => Self::Month,
            _ => return None,
        })
    }
}

/// A half-open window `[from, to)`; an absent bound is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Window {
    pub fn parse(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> AppResult<Self> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(AppError::bad_field(
                    "from",
                    "the window ends before it starts",
                ));
            }
        }
        Ok(Self { from, to })
    }
}

/// The dimensions in the order asked, refusing repeats and more than `MAX_DIMENSIONS`.
pub fn parse_dimensions<D: Copy + Eq + std::fmt::Debug>(asked: &[D]) -> AppResult<Vec<D>> {
    if asked.len() > MAX_DIMENSIONS {
        return Err(AppError::bad_field(
            "groupBy",
            format!("at most {MAX_DIMENSIONS} dimensions"),
        ));
    }
    for (i, d) in asked.iter().enumerate() {
        if asked[..i].contains(d) {
            return Err(AppError::bad_field(
                "groupBy",
                format!("{d:?} is asked twice"),
            ));
        }
    }
    Ok(asked.to_vec())
}

/// Where an answer comes from. `Auto` uses the daily rollups where they are exact; `BaseRows`
/// always reads the base tables (what the rollups are checked against).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    #[default]
    Auto,
    BaseRows,
}

#[derive(Clone, Debug, Default)]
pub struct TaskStatsQuery {
    pub filter: TaskFilter,
    pub group_by: Vec<TaskDimension>,
    pub window: Window,
    pub source: Source,
}

#[derive(Clone, Debug, Default)]
pub struct ApprovalStatsQuery {
    pub group_by: Vec<ApprovalDimension>,
    pub window: Window,
}

/// A row's key: `None` where not grouped by the dimension, or where the value is null.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskKey {
    pub department: Option<Uuid>,
    pub category: Option<Uuid>,
    pub executor: Option<Uuid>,
    pub status: Option<String>,
    pub review_status: Option<String>,
    pub priority: Option<i32>,
    pub deadline_month: Option<String>,
    pub completed_month: Option<String>,
}

impl TaskKey {
    pub fn status(&self) -> Option<WorkStatus> {
        self.status.as_deref().and_then(WorkStatus::parse)
    }

    pub fn review_status(&self) -> Option<ReviewStatus> {
        self.review_status.as_deref().and_then(ReviewStatus::parse)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p85: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskStatsRow {
    pub key: TaskKey,
    pub count: i64,
    pub done: i64,
    pub overdue: i64,
    pub on_time: i64,
    pub completed_with_deadline: i64,
    pub merit_total: i64,
    /// Minor units of the base currency.
    pub cash_output_minor: i64,
    pub progress_sum: i64,
    pub lead_time_hours: Percentiles,
    pub cycle_time_hours: Percentiles,
}

impl TaskStatsRow {
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.completed_with_deadline >= MIN_RATE_BASE)
            .then(|| self.on_time as f64 / self.completed_with_deadline as f64)
    }

    pub fn avg_progress(&self) -> Option<f64> {
        (self.count > 0).then(|| self.progress_sum as f64 / self.count as f64)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskStats {
    pub rows: Vec<TaskStatsRow>,
    pub total: TaskStatsRow,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApprovalKey {
    pub flow: Option<Uuid>,
    pub step: Option<String>,
    pub approver: Option<Uuid>,
    pub subject_kind: Option<String>,
    pub month: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecisionTime {
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p85: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApprovalStatsRow {
    pub key: ApprovalKey,
    pub count: i64,
    pub approved: i64,
    pub rejected: i64,
    pub pending: i64,
    pub sla_breaches: i64,
    pub decision_hours: DecisionTime,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApprovalStats {
    pub rows: Vec<ApprovalStatsRow>,
    pub total: ApprovalStatsRow,
    pub as_of: DateTime<Utc>,
}

/// The 0-based rank below the `percent` percentile of `n` sorted values and the fraction (in
/// hundredths) towards the next: linear interpolation between closest ranks, as
/// `percentile_cont`. Integer arithmetic, so SQL on either backend picks the same two ranks.
pub fn percentile_rank(n: i64, percent: i64) -> (i64, i64) {
    let scaled = (n - 1) * percent;
    (scaled / 100, scaled % 100)
}

/// The percentile from the two values at the ranks `percentile_rank` names (`high` is the
/// next rank's value, or `low` again when the fraction is zero).
pub fn interpolate(low: i64, high: i64, hundredths: i64) -> f64 {
    low as f64 + (high - low) as f64 * hundredths as f64 / 100.0
}

/// The reference form over a sorted slice, for tests of the SQL.
pub fn percentile_of_sorted(sorted: &[i64], percent: i64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let (rank, frac) = percentile_rank(sorted.len() as i64, percent);
    let low = *sorted.get(rank as usize)?;
    let high = if frac > 0 {
        *sorted.get(rank as usize + 1)?
    } else {
        low
    };
    Some(interpolate(low, high, frac))
}

/// Seconds to hours, for every duration measure.
pub fn hours(seconds: f64) -> f64 {
    seconds / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        assert_eq!(percentile_of_sorted(&[], 50), None);
        assert_eq!(percentile_of_sorted(&[7], 85), Some(7.0));
        assert_eq!(percentile_of_sorted(&[1, 2, 3, 4], 50), Some(2.5));
        // (4 - 1) * 0.85 = 2.55: 3 + 0.55 * (4 - 3)
        assert_eq!(percentile_of_sorted(&[1, 2, 3, 4], 85), Some(3.55));
        assert_eq!(percentile_of_sorted(&[10, 20, 30], 50), Some(20.0));
        // (3 - 1) * 0.85 = 1.7: 20 + 0.7 * 10
        let p85 = percentile_of_sorted(&[10, 20, 30], 85).unwrap_or_default();
        assert!((p85 - 27.0).abs() < 1e-9);
        assert_eq!(percentile_rank(21, 85), (17, 0));
    }

    #[test]
    fn dimensions_are_bounded_and_unique() {
        use TaskDimension::*;
        assert!(parse_dimensions::<TaskDimension>(&[]).is_ok());
        assert_eq!(
            parse_dimensions(&[Department, DeadlineMonth]).ok(),
            Some(vec![Department, DeadlineMonth])
        );
        let twice = parse_dimensions(&[Status, Priority, Status]);
        assert!(
            matches!(twice, Err(AppError::BadUserInput { field: Some(f), .. }) if f == "groupBy")
        );
        let five = parse_dimensions(&[Department, Category, Executor, Status, Priority]);
        assert!(matches!(five, Err(AppError::BadUserInput { .. })));
    }

    #[test]
    fn windows_refuse_to_end_before_they_start() {
        let now = Utc::now();
        assert!(Window::parse(Some(now), Some(now)).is_ok());
        assert!(Window::parse(None, Some(now)).is_ok());
        assert!(Window::parse(Some(now), Some(now - chrono::Duration::hours(1))).is_err());
    }

    #[test]
    fn rates_need_three_completed_with_deadline() {
        let mut row = TaskStatsRow {
            on_time: 2,
            completed_with_deadline: 2,
            ..Default::default()
        };
        assert_eq!(row.on_time_rate(), None);
        row.completed_with_deadline = 4;
        assert_eq!(row.on_time_rate(), Some(0.5));
        assert_eq!(row.avg_progress(), None);
    }
}
