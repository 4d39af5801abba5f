//! Task ids, states, parsed inputs and the pure rules (merit split, visibility, transitions).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::viewer::Scope;
use crate::auth::{AppScope, Permission, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::events::{Envelope, Event, EventHead};
use crate::platform::money::{currency_exponent, Decimal};

crate::domains::id_type!(TaskId, "task");
crate::domains::id_type!(CategoryId, "task category");
crate::domains::id_type!(CommentId, "comment");
crate::domains::id_type!(RecurringTaskId, "recurring task");

pub const SUBJECT_KIND: &str = "task";
pub const MAX_EXECUTORS: usize = 50;
pub const MAX_MERIT_POINTS: i32 = 1_000_000;
/// Custom fields travel in every live event of the task; a cap keeps events small.
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;
/// Sort keys a task list honours; more would only add work to every query.
pub const MAX_TASK_ORDERS: usize = 5;

string_enum!(ReviewStatus { Draft => "DRAFT", Pending => "PENDING", Approved => "APPROVED", Rejected => "REJECTED" });
string_enum!(WorkStatus { Open => "OPEN", InProgress => "IN_PROGRESS", Done => "DONE", Cancelled => "CANCELLED" });
string_enum!(AssignmentStrategy { Manual => "MANUAL", RoundRobin => "ROUND_ROBIN", LeastLoaded => "LEAST_LOADED" });

impl WorkStatus {
    pub fn is_open(self) -> bool {
        matches!(self, Self::Open | Self::InProgress)
    }
}

/// What a reader is told: flagged by the overdue scan, or past its deadline and still open
/// (between two scans).
pub fn is_overdue(
    flagged: bool,
    deadline: Option<DateTime<Utc>>,
    status: WorkStatus,
    now: DateTime<Utc>,
) -> bool {
    flagged || (deadline.is_some_and(|d| d < now) && status.is_open())
}

/// Who a round-robin or least-loaded category assigns among.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignmentPool {
    /// The active direct members of a department.
    Department(Uuid),
    /// The active holders of a role covering the task's department.
    Role(String),
}

pub struct NewCategory {
    pub code: String,
    pub name: String,
    pub default_priority: i32,
    pub approval_flow_id: Option<Uuid>,
    pub strategy: AssignmentStrategy,
    pub pool: Option<AssignmentPool>,
    pub custom_fields_schema: Option<serde_json::Value>,
}

impl NewCategory {
    pub fn validate(&self) -> AppResult<()> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= 32
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !code_ok {
            return Err(AppError::bad_field(
                "code",
                "a code is 1–32 characters of A–Z, 0–9, _ and -",
            ));
        }
        parse_priority(self.default_priority, "defaultPriority")?;
        if self.strategy != AssignmentStrategy::Manual && self.pool.is_none() {
            return Err(AppError::bad_field(
                "assignmentPool",
                "ROUND_ROBIN and LEAST_LOADED need an assignment pool",
            ));
        }
        if let Some(schema) = &self.custom_fields_schema {
            jsonschema::validator_for(schema).map_err(|e| {
                AppError::bad_field(
                    "customFieldsSchema",
                    format!("not a valid JSON Schema: {e}"),
                )
            })?;
        }
        Ok(())
    }
}

/// An edit of a category: `None` keeps a field; the `Option<Option<_>>` fields can also clear it.
#[derive(Default)]
pub struct CategoryChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub default_priority: Option<i32>,
    pub approval_flow_id: Option<Option<Uuid>>,
    pub strategy: Option<AssignmentStrategy>,
    pub pool: Option<Option<AssignmentPool>>,
    pub custom_fields_schema: Option<Option<serde_json::Value>>,
}

impl CategoryChanges {
    /// The category as it would be after the edit, for the same `validate` a new one passes.
    pub fn apply_to(self, mut category: NewCategory) -> NewCategory {
        if let Some(code) = self.code {
            category.code = code;
        }
        if let Some(name) = self.name {
            category.name = name;
        }
        if let Some(priority) = self.default_priority {
            category.default_priority = priority;
        }
        if let Some(flow) = self.approval_flow_id {
            category.approval_flow_id = flow;
        }
        if let Some(strategy) = self.strategy {
            category.strategy = strategy;
        }
        if let Some(pool) = self.pool {
            category.pool = pool;
        }
        if let Some(schema) = self.custom_fields_schema {
            category.custom_fields_schema = schema;
        }
        category
    }
}

pub fn parse_priority(priority: i32, field: &str) -> AppResult<i32> {
    if (1..=5).contains(&priority) {
        Ok(priority)
    } else {
        Err(AppError::bad_field(
            field,
            "priority is from 1 (highest) to 5 (lowest)",
        ))
    }
}

/// A task's own fields as given by the client, validated; the people and category are checked
/// against storage by the service.
#[derive(Clone, Debug)]
pub struct TaskFields {
    pub title: String,
    pub key_points: String,
    pub executor_ids: Vec<Uuid>,
    pub is_team_task: bool,
    pub confirmer_id: Option<Uuid>,
    /// Minor units; present exactly when the task has a cash output value.
    pub cash_output_minor: Option<i64>,
    pub start_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub priority: Option<i32>,
    pub merit_points: i32,
    pub custom_fields: serde_json::Value,
}

impl TaskFields {
    pub fn validate(&self) -> AppResult<()> {
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err(AppError::bad_field("title", "a title has 1–200 characters"));
        }
        if self.key_points.chars().count() > 10_000 {
            return Err(AppError::bad_field(
                "keyPoints",
                "key points have at most 10000 characters",
            ));
        }
        let mut unique = self.executor_ids.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != self.executor_ids.len() {
            return Err(AppError::bad_field(
                "executorIds",
                "an executor is listed twice",
            ));
        }
        if self.executor_ids.len() > MAX_EXECUTORS {
            return Err(AppError::bad_field(
                "executorIds",
                format!("at most {MAX_EXECUTORS} executors"),
            ));
        }
        if self.is_team_task && self.executor_ids.len() < 2 {
            return Err(AppError::bad_field(
                "executorIds",
                "a team task has several executors",
            ));
        }
        if !self.is_team_task && self.executor_ids.len() > 1 {
            return Err(AppError::bad_field(
                "executorIds",
                "a task that is not a team task has exactly one executor",
            ));
        }
        if let (Some(start), Some(deadline)) = (self.start_at, self.deadline) {
            if deadline < start {
                return Err(AppError::bad_field(
                    "deadline",
                    "the deadline is before the start",
                ));
            }
        }
        if self
            .confirmer_id
            .is_some_and(|c| self.executor_ids.contains(&c))
        {
            return Err(AppError::bad_field(
                "confirmerId",
                "an executor cannot confirm their own progress",
            ));
        }
        if let Some(priority) = self.priority {
            parse_priority(priority, "priority")?;
        }
        if !(0..=MAX_MERIT_POINTS).contains(&self.merit_points) {
            return Err(AppError::bad_field(
                "meritPoints",
                format!("merit points are from 0 to {MAX_MERIT_POINTS}"),
            ));
        }
        if let Some(amount) = self.cash_output_minor {
            if amount <= 0 {
                return Err(AppError::bad_field(
                    "cashOutputValue",
                    "a cash output value is positive",
                ));
            }
        }
        if self.custom_fields.to_string().len() > MAX_CUSTOM_FIELDS_BYTES {
            return Err(AppError::bad_field(
                "customFields",
                format!("custom fields take at most {MAX_CUSTOM_FIELDS_BYTES} bytes"),
            ));
        }
        if !self.custom_fields.is_object() {
            return Err(AppError::bad_field(
                "customFields",
                "custom fields are a JSON object",
            ));
        }
        Ok(())
    }
}

/// A cash output value in the currency's units, as minor units: `BAD_USER_INPUT` on
/// `cashOutputValue` when it has more decimals than the currency or does not fit.
pub fn cash_output_minor(value: Decimal, currency: &str) -> AppResult<i64> {
    value
        .to_minor(currency_exponent(currency))
        .map_err(|e| AppError::bad_field("cashOutputValue", format!("{e}")))
}

/// `hasCashOutput` and `cashOutputValue` of a new task, as the client states them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CashOutputInput {
    pub has: bool,
    pub value: Option<Decimal>,
}

impl CashOutputInput {
    /// The value in minor units; the flag and the value must agree.
    pub fn minor(self, currency: &str) -> AppResult<Option<i64>> {
        match (self.has, self.value) {
            (true, Some(value)) => Ok(Some(cash_output_minor(value, currency)?)),
            (true, None) => Err(AppError::bad_field(
                "cashOutputValue",
                "a task with cash output needs its value",
            )),
            (false, Some(_)) => Err(AppError::bad_field(
                "cashOutputValue",
                "set hasCashOutput to give a cash output value",
            )),
            (false, None) => Ok(None),
        }
    }
}

/// `hasCashOutput` and `cashOutputValue` of an edit: `has` absent means unchanged; `value` is
/// `None` when absent and `Some(None)` when null.
#[derive(Clone, Copy, Debug, Default)]
pub struct CashOutputChange {
    pub has: Option<bool>,
    pub value: Option<Option<Decimal>>,
}

impl CashOutputChange {
    /// The new cash output in minor units: `None` to leave it, `Some(None)` to remove it.
    pub fn minor(self, currency: &str) -> AppResult<Option<Option<i64>>> {
        match (self.has, self.value) {
            (Some(false), _) => Ok(Some(None)),
            (_, Some(Some(value))) => Ok(Some(Some(cash_output_minor(value, currency)?))),
            (Some(true) | None, Some(None)) => Ok(Some(None)),
            (Some(true), None) => Err(AppError::bad_field(
                "cashOutputValue",
                "a task with cash output needs its value",
            )),
            (None, None) => Ok(None),
        }
    }
}

/// Splits merit evenly among executors in their listed order. Integer points: each gets
/// `total / n`, and the first `total % n` executors get one more, so the parts always add up
/// to the total.
pub fn split_merit(total: i32, executors: usize) -> Vec<i32> {
    if executors == 0 {
        return Vec::new();
    }
    let n = executors as i32;
    let (base, remainder) = (total / n, total % n);
    (0..n).map(|i| base + i32::from(i < remainder)).collect()
}

pub fn parse_progress(progress: i32) -> AppResult<i32> {
    if (0..=100).contains(&progress) {
        Ok(progress)
    } else {
        Err(AppError::bad_field("progress", "progress is from 0 to 100"))
    }
}

/// Who may see a task, captured with it: the people on it, its department and its approvers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub people: Vec<Uuid>,
    pub department_path: Option<String>,
    /// The audience of the main task, for a subtask: whoever sees the parent sees its subtasks.
    pub parent: Option<Box<Audience>>,
}

impl Audience {
    /// Administrators and global `task.read` holders, the people on the task (initiator,
    /// executors, confirmer, approvers), and holders of any role scoped to a subtree containing
    /// the task's department. An app sees tasks only with a tasks scope.
    pub fn admits(&self, viewer: &ViewerUser) -> bool {
        if !sees_tasks(viewer) {
            return false;
        }
        if viewer.has_global(Permission::TaskRead) || self.people.contains(&viewer.id) {
            return true;
        }
        let in_scope = self
            .department_path
            .as_deref()
            .is_some_and(|path| task_subtrees(viewer).any(|scope| path.starts_with(scope)));
        in_scope || self.parent.as_ref().is_some_and(|p| p.admits(viewer))
    }
}

/// Whether the viewer may see any task at all: people may; apps with a tasks scope.
pub fn sees_tasks(viewer: &ViewerUser) -> bool {
    viewer.allows(AppScope::TasksRead) || viewer.allows(AppScope::TasksWrite)
}

/// The department subtrees whose tasks the viewer sees without being on them: any role scoped
/// there, for a person; for an app, its tasks scopes over its department.
pub fn task_subtrees(viewer: &ViewerUser) -> impl Iterator<Item = &str> {
    let app = viewer.app.is_some();
    viewer.grants.iter().filter_map(move |g| match &g.scope {
        Scope::Subtree { path }
            if !app
                || matches!(
                    g.permission,
                    Permission::TaskRead | Permission::TaskCreateMain
                ) =>
        {
            Some(path.as_str())
        }
        _ => None,
    })
}

string_enum!(TaskEventKind {
    Created => "CREATED",
    Updated => "UPDATED",
    Submitted => "SUBMITTED",
    ReviewDecided => "REVIEW_DECIDED",
    ProgressReported => "PROGRESS_REPORTED",
    ProgressConfirmed => "PROGRESS_CONFIRMED",
    CommentAdded => "COMMENT_ADDED",
    CommentEdited => "COMMENT_EDITED",
    CommentDeleted => "COMMENT_DELETED",
    AttachmentAdded => "ATTACHMENT_ADDED",
    StatusChanged => "STATUS_CHANGED",
});

/// Appended to the log with a task change, carrying the task as it then was and who may see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskEvent {
    pub kind: TaskEventKind,
    pub task: entities::task::Model,
    /// The nil id when the system acted on its own (a scan, a schedule).
    pub actor_id: Uuid,
    pub at: DateTime<Utc>,
    pub audience: Audience,
}

impl Event for TaskEvent {
    const TOPIC: &'static str = "tasks";

    fn head(&self) -> EventHead {
        EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind: SUBJECT_KIND,
            subject_id: Some(self.task.id),
            actor_id: (!self.actor_id.is_nil()).then_some(self.actor_id),
            // Null never decodes as an audience, so a failure here hides the event from all.
            audience: serde_json::to_value(&self.audience).unwrap_or_default(),
        }
    }
}

/// Whether `viewer` may see a logged task event: the audience captured with it admits them.
/// Fails closed: another topic or an audience that does not decode is invisible.
pub fn event_visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    envelope.topic == TaskEvent::TOPIC
        && envelope
            .audience::<Audience>()
            .is_some_and(|audience| audience.admits(viewer))
}

/// The most of a value one activity entry keeps, in characters: room for a title, a date, the
/// ids of `MAX_EXECUTORS` executors, the start of a comment.
pub const ACTIVITY_EXCERPT_CHARS: usize = 2000;

/// `text` as an activity entry keeps it: whole when short, else its start and its length.
pub fn activity_excerpt(text: &str) -> String {
    match text.char_indices().nth(ACTIVITY_EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::viewer::ScopedPermission;

    #[test]
    fn activity_keeps_excerpts_of_long_values() {
        assert_eq!(activity_excerpt("short"), "short");
        let exact = "é".repeat(ACTIVITY_EXCERPT_CHARS);
        assert_eq!(activity_excerpt(&exact), exact);
        let long = "😀".repeat(10_000);
        let kept = activity_excerpt(&long);
        assert!(kept.starts_with(&"😀".repeat(ACTIVITY_EXCERPT_CHARS)));
        assert!(kept.ends_with("… (10000 characters)"), "{kept}");
        assert_eq!(
            kept.chars().count(),
            ACTIVITY_EXCERPT_CHARS + "… (10000 characters)".chars().count()
        );
    }

    #[test]
    fn merit_splits_add_up_and_favour_the_first_listed() {
        assert_eq!(split_merit(10, 3), vec![4, 3, 3]);
        assert_eq!(split_merit(9, 3), vec![3, 3, 3]);
        assert_eq!(split_merit(1, 3), vec![1, 0, 0]);
        assert_eq!(split_merit(7, 1), vec![7]);
        for total in 0..50 {
            for n in 1..7 {
                assert_eq!(split_merit(total, n).iter().sum::<i32>(), total);
            }
        }
    }

    fn fields() -> TaskFields {
        TaskFields {
            title: "t".into(),
            key_points: String::new(),
            executor_ids: vec![Uuid::now_v7()],
            is_team_task: false,
            confirmer_id: None,
            cash_output_minor: None,
            start_at: None,
            deadline: None,
            priority: None,
            merit_points: 0,
            custom_fields: serde_json::json!({}),
        }
    }

    #[test]
    fn task_fields_are_checked() {
        assert!(fields().validate().is_ok());
        let mut team = fields();
        team.is_team_task = true;
        assert!(team.validate().is_err());
        let mut two = fields();
        two.executor_ids.push(Uuid::now_v7());
        assert!(two.validate().is_err());
        two.is_team_task = true;
        assert!(two.validate().is_ok());
        let mut backwards = fields();
        backwards.start_at = Some(Utc::now());
        backwards.deadline = Some(Utc::now() - chrono::Duration::days(1));
        assert!(backwards.validate().is_err());
        let mut free_money = fields();
        free_money.cash_output_minor = Some(0);
        assert!(free_money.validate().is_err());
        assert!(
            parse_progress(101).is_err()
                && parse_progress(-1).is_err()
                && parse_progress(100).is_ok()
        );
    }

    #[test]
    fn cash_outputs_need_flag_and_value_to_agree() {
        let amount = |text: &str| text.parse::<Decimal>().ok();
        let new = |has, value| CashOutputInput { has, value }.minor("EUR");
        assert_eq!(new(true, amount("12.5")).ok(), Some(Some(1250)));
        assert_eq!(new(false, None).ok(), Some(None));
        assert!(new(true, None).is_err() && new(false, amount("1")).is_err());
        assert!(new(true, amount("0.001")).is_err());
        let edit = |has, value| CashOutputChange { has, value }.minor("EUR");
        assert_eq!(edit(None, None).ok(), Some(None));
        assert_eq!(edit(Some(false), Some(amount("3"))).ok(), Some(Some(None)));
        assert_eq!(edit(None, Some(None)).ok(), Some(Some(None)));
        assert_eq!(edit(None, Some(amount("3"))).ok(), Some(Some(Some(300))));
        assert!(edit(Some(true), None).is_err());
    }

    #[test]
    fn task_events_carry_their_audience_and_hide_the_system_actor() {
        let now = Utc::now();
        let person = Uuid::now_v7();
        let event = TaskEvent {
            kind: TaskEventKind::CommentEdited,
            task: entities::task::Model {
                id: Uuid::now_v7(),
                category_id: Uuid::now_v7(),
                parent_id: None,
                title: "t".into(),
                key_points: String::new(),
                initiator_id: person,
                department_id: None,
                is_team_task: false,
                confirmer_id: None,
                has_cash_output: false,
                cash_output_minor: None,
                currency: "EUR".into(),
                start_at: None,
                deadline: None,
                priority: 3,
                progress: 0,
                reported_progress: None,
                merit_points: 0,
                review_status: "DRAFT".into(),
                rejection_reason: None,
                status: "OPEN".into(),
                custom_fields: serde_json::json!({}),
                version: 1,
                approval_instance_id: None,
                overdue: false,
                completed_at: None,
                created_at: now,
                updated_at: now,
            },
            actor_id: Uuid::nil(),
            at: now,
            audience: Audience {
                people: vec![person],
                department_path: None,
                parent: None,
            },
        };
        let head = event.head();
        assert_eq!(head.kind, "COMMENT_EDITED");
        assert_eq!(head.subject_id, Some(event.task.id));
        assert_eq!(head.actor_id, None);
        let decoded: Option<Audience> = serde_json::from_value(head.audience).ok();
        assert_eq!(decoded, Some(event.audience));
    }

    #[test]
    fn audiences_admit_people_scopes_and_parents() {
        let stranger = ViewerUser {
            id: Uuid::now_v7(),
            department_id: None,
            grants: vec![],
            app: None,
        };
        let person = Uuid::now_v7();
        let audience = Audience {
            people: vec![person],
            department_path: Some("/a/b/".into()),
            parent: None,
        };
        assert!(!audience.admits(&stranger));
        let scoped = ViewerUser {
            id: Uuid::now_v7(),
            department_id: None,
            grants: vec![ScopedPermission {
                permission: Permission::TaskReview,
                scope: Scope::Subtree { path: "/a/".into() },
            }],
            app: None,
        };
        assert!(audience.admits(&scoped));
        let elsewhere = ViewerUser {
            grants: vec![ScopedPermission {
                permission: Permission::TaskReview,
                scope: Scope::Subtree { path: "/c/".into() },
            }],
            ..scoped
        };
        assert!(!audience.admits(&elsewhere));
        let on_it = ViewerUser {
            id: person,
            department_id: None,
            grants: vec![],
            app: None,
        };
        let sub = Audience {
            people: vec![],
            department_path: None,
            parent: Some(Box::new(audience.clone())),
        };
        assert!(sub.admits(&on_it));
    }
}
