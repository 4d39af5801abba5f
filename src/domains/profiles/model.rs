//! Portrait rules that need no storage: the window, who may look, and the rate and unit rules.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::auth::viewer::Scope;
use crate::auth::ViewerUser;
use crate::error::{AppError, AppResult};

/// Without `from`, a portrait covers this many days before `to`.
pub const DEFAULT_DAYS: i64 = 90;
/// The longest window: five years of 366 days.
pub const MAX_DAYS: i64 = 5 * 366;
/// Below this many completed tasks with a deadline the on-time rate is not given: one late
/// task out of two says nothing.
pub const MIN_FOR_RATE: i64 = 3;

/// The half-open window `[from, to)` a portrait covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileWindow {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl ProfileWindow {
    /// `to` defaults to `now`, `from` to 90 days before `to`. `from` must come before `to`,
    /// and the window may not pass five years.
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> AppResult<Self> {
        let to = to.unwrap_or(now);
        let from = match from {
            Some(from) => from,
            None => to
                .checked_sub_signed(Duration::days(DEFAULT_DAYS))
                .ok_or_else(|| AppError::bad_field("to", "too early"))?,
        };
        if from >= to {
            return Err(AppError::bad_field(
                "from",
                "the window must start before it ends",
            ));
        }
        if to - from > Duration::days(MAX_DAYS) {
            return Err(AppError::bad_field(
                "to",
                format!("a window covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// The window's length in weeks (seven days of 86,400 seconds).
    pub fn weeks(&self) -> f64 {
        (self.to - self.from).num_seconds() as f64 / (7.0 * 86_400.0)
    }
}

/// Whose portraits a viewer may see, besides their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortraitAccess {
    /// Administrators, and apps without a department.
    Everyone,
    /// A person: the people in the departments under any of their department-scoped grants
    /// (of any role; a global grant other than admin opens nothing here).
    Subtrees(Vec<String>),
    /// An app with a department: the people in its subtree.
    AppDepartment(Uuid),
}

impl PortraitAccess {
    /// Apps are held to `PROFILES_READ` before this (see `service::visible_people_query`).
    pub fn of(viewer: &ViewerUser) -> Self {
        if viewer.app.is_some() {
            return match viewer.department_id {
                Some(department) => Self::AppDepartment(department),
                None => Self::Everyone,
            };
        }
        if viewer.is_admin() {
            return Self::Everyone;
        }
        let mut paths: Vec<String> = viewer
            .grants
            .iter()
            .filter_map(|g| match &g.scope {
                Scope::Subtree { path } => Some(path.clone()),
                Scope::Global => None,
            })
            .collect();
        paths.sort();
        paths.dedup();
        Self::Subtrees(paths)
    }

    /// Whether a person of department `path` is inside (the check `visible_people_query` runs
    /// in SQL, for tests and single checks). A person of no department is inside `Everyone`
    /// only.
    pub fn covers(&self, department_path: Option<&str>, app_department_path: Option<&str>) -> bool {
        match (self, department_path) {
            (Self::Everyone, _) => true,
            (_, None) => false,
            (Self::Subtrees(paths), Some(path)) => paths.iter().any(|p| path.starts_with(p)),
            (Self::AppDepartment(_), Some(path)) => {
                app_department_path.is_some_and(|root| path.starts_with(root))
            }
        }
    }
}

/// `onTimeCount / doneWithDeadline`, or nothing below `MIN_FOR_RATE`.
pub fn on_time_rate(on_time: i64, with_deadline: i64) -> Option<f64> {
    (with_deadline >= MIN_FOR_RATE).then(|| on_time as f64 / with_deadline as f64)
}

/// Rounds to two decimals, the precision every portrait figure is given in.
pub fn two_decimals(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Hours from hundredths of seconds (what the SQL percentile yields), to two decimals.
pub fn hours_from_centiseconds(centiseconds: i64) -> f64 {
    two_decimals(centiseconds as f64 / 360_000.0)
}

/// p50 and p85 of a duration, in hours, by the one percentile rule the statistics use too.
pub use crate::domains::reports::model::{percentile_of_sorted, percentile_rank, Percentiles};

/// Average and p50 of decision time, in hours.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecisionHours {
    pub avg: Option<f64>,
    pub p50: Option<f64>,
}

/// A portrait, as the service computes it (see the README for every formula).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub user_id: Uuid,
    pub window: ProfileWindow,
    pub tasks_open: i64,
    pub tasks_done: i64,
    pub on_time_rate: Option<f64>,
    pub on_time_count: i64,
    pub done_with_deadline: i64,
    pub throughput_per_week: f64,
    pub cycle_time_hours: Percentiles,
    pub merit_total: i64,
    /// Minor units of the base currency.
    pub cash_output_minor: i64,
    pub current_workload: i64,
    pub approvals_pending: u64,
    pub approval_decision_hours: DecisionHours,
    pub as_of: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::viewer::ScopedPermission;
    use crate::auth::Permission;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn windows_default_to_ninety_days_and_refuse_backwards_or_huge_ones() {
        let now = at("2026-12-01T00:00:00Z");
        let window = ProfileWindow::new(None, None, now);
        assert_eq!(window.as_ref().map(ProfileWindow::to).ok(), Some(now));
        assert_eq!(
            window.as_ref().map(ProfileWindow::from).ok(),
            Some(at("2026-09-02T00:00:00Z"))
        );
        let backwards = ProfileWindow::new(Some(now), Some(at("2026-01-01T00:00:00Z")), now);
        assert!(backwards.is_err());
        assert!(ProfileWindow::new(Some(now), Some(now), now).is_err());
        let huge = ProfileWindow::new(Some(at("2020-01-01T00:00:00Z")), Some(now), now);
        assert!(huge.is_err());
        let two_weeks = ProfileWindow::new(Some(at("2026-11-17T00:00:00Z")), Some(now), now);
        assert_eq!(two_weeks.map(|w| w.weeks()).ok(), Some(2.0));
    }

    #[test]
    fn the_rate_needs_three_tasks_with_deadlines() {
        assert_eq!(on_time_rate(2, 2), None);
        assert_eq!(on_time_rate(0, 0), None);
        assert_eq!(on_time_rate(2, 3).map(two_decimals), Some(0.67));
        assert_eq!(on_time_rate(3, 3), Some(1.0));
    }

    #[test]
    fn percentiles_interpolate_linearly() {
        assert_eq!(percentile_of_sorted(&[], 50), None);
        assert_eq!(percentile_of_sorted(&[7], 85), Some(7.0));
        assert_eq!(percentile_of_sorted(&[1, 2, 3, 4], 50), Some(2.5));
        // (4-1)·0.85 = 2.55: 3 + 0.55·(4-3).
        assert_eq!(percentile_of_sorted(&[1, 2, 3, 4], 85), Some(3.55));
        assert_eq!(hours_from_centiseconds(360_000 * 3 / 2), 1.5);
    }

    #[test]
    fn portraits_open_to_scoped_role_holders_and_admins() {
        let scoped = |path: &str, permission| ViewerUser {
            id: Uuid::now_v7(),
            department_id: None,
            grants: vec![ScopedPermission {
                permission,
                scope: Scope::Subtree { path: path.into() },
            }],
            app: None,
        };
        let manager = PortraitAccess::of(&scoped("/a/", Permission::TaskReview));
        assert!(manager.covers(Some("/a/b/"), None));
        assert!(!manager.covers(Some("/c/"), None));
        assert!(!manager.covers(None, None));
        let global = ViewerUser::with_grants(vec![(Permission::TaskRead, Scope::Global)]);
        assert_eq!(
            PortraitAccess::of(&global),
            PortraitAccess::Subtrees(Vec::new())
        );
        let admin = ViewerUser::with_grants(vec![(Permission::Admin, Scope::Global)]);
        assert_eq!(PortraitAccess::of(&admin), PortraitAccess::Everyone);
        assert!(PortraitAccess::Everyone.covers(None, None));
        let app = PortraitAccess::AppDepartment(Uuid::now_v7());
        assert!(app.covers(Some("/a/b/"), Some("/a/")));
        assert!(!app.covers(Some("/c/"), Some("/a/")));
    }
}
