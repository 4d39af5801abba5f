//! The approval engine's pure parts: flows as parsed, conditions, facts, and the step arithmetic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::platform::money::Decimal;

crate::domains::id_type!(FlowId, "approval flow");
crate::domains::id_type!(InstanceId, "approval");
crate::domains::id_type!(DelegationId, "delegation");

pub const MAX_STEPS: usize = 20;
/// Ten years: an SLA is a deadline for a decision, and every stored one fits the column.
pub const MAX_SLA_HOURS: u32 = 87_600;
pub const MAX_REQUIRED_APPROVALS: u32 = 20;

/// Who approves a step. Exactly one rule per step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApproverRule {
    User(Uuid),
    /// Holders of the named role whose grant covers the subject's department (or is global).
    Role(String),
    /// The head of the subject's department, or of the nearest ancestor that has one.
    DepartmentHead,
    /// A user-valued field of the subject, such as `confirmerId`.
    Field(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "GT",
            Self::Gte => "GTE",
            Self::Lt => "LT",
            Self::Lte => "LTE",
            Self::Eq => "EQ",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Gt, Self::Gte, Self::Lt, Self::Lte, Self::Eq]
            .into_iter()
            .find(|op| op.as_str() == raw)
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Self::Gt => ordering == Greater,
            Self::Gte => ordering != Less,
            Self::Lt => ordering == Less,
            Self::Lte => ordering != Greater,
            Self::Eq => ordering == Equal,
        }
    }
}

/// `field op value` over an exact decimal, such as `cashOutputValue GTE 10000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub op: CompareOp,
    pub value: Decimal,
}

impl Condition {
    /// Whether the step this condition guards applies. A fact that is missing, or is not an
    /// exact decimal, cannot show the step is unneeded, so the step applies (fails closed):
    /// leaving a field out, or writing `"20,000"`, never skips an approval.
    pub fn applies(&self, facts: &SubjectFacts) -> bool {
        facts
            .numbers
            .get(&self.field)
            .and_then(|raw| raw.parse::<Decimal>().ok())
            .is_none_or(|actual| self.op.holds(actual.cmp_exact(&self.value)))
    }
}

#[derive(Clone, Debug)]
pub struct NewStep {
    pub name: String,
    pub rule: ApproverRule,
    pub required_approvals: u32,
    pub condition: Option<Condition>,
    pub sla_hours: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct NewFlow {
    pub name: String,
    pub allow_self_approval: bool,
    pub steps: Vec<NewStep>,
}

impl NewFlow {
    pub fn validate(&self) -> AppResult<()> {
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(AppError::bad_field(
                "steps",
                format!("a flow has between 1 and {MAX_STEPS} steps"),
            ));
        }
        for step in &self.steps {
            if step.required_approvals == 0 || step.required_approvals > MAX_REQUIRED_APPROVALS {
                return Err(AppError::bad_field(
                    "requiredApprovals",
                    format!("requiredApprovals is between 1 and {MAX_REQUIRED_APPROVALS}"),
                ));
            }
            if matches!(&step.rule, ApproverRule::User(_)) && step.required_approvals > 1 {
                return Err(AppError::bad_field(
                    "requiredApprovals",
                    "a step approved by one named user needs exactly one approval",
                ));
            }
            if step.sla_hours == Some(0) {
                return Err(AppError::bad_field("slaHours", "slaHours must be positive"));
            }
            if step.sla_hours.is_some_and(|h| h > MAX_SLA_HOURS) {
                return Err(AppError::bad_field(
                    "slaHours",
                    format!("slaHours is at most {MAX_SLA_HOURS} (ten years)"),
                ));
            }
        }
        Ok(())
    }
}

/// An edit of a flow: `None` keeps a field; steps, when given, replace them all.
pub struct FlowChanges {
    pub name: Option<String>,
    pub allow_self_approval: Option<bool>,
    pub steps: Option<Vec<NewStep>>,
}

/// What the engine knows of a subject, captured when it is submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectFacts {
    pub department_id: Option<Uuid>,
    pub initiator_id: Uuid,
    /// Numeric fields as exact decimal text, for conditions.
    pub numbers: BTreeMap<String, String>,
    /// User-valued fields, for `approverField` steps.
    pub users: BTreeMap<String, Vec<Uuid>>,
}

/// A subject the engine approves: its kind (`task`, `business_transaction`, …) and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: &'static str,
    pub id: Uuid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    Pending,
    Approved,
    Rejected,
    /// The subject was withdrawn (a cancelled task) before a verdict.
    Cancelled,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// `None` for text that is no status: callers treat it as closed, never as awaiting a
    /// decision, so a damaged row cannot be decided again.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Rejected,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// The end of an approval, handed to the subject's domain inside the deciding transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Rejected { reason: String },
}

/// A rejection must say why: that text is the subject's rejection reason.
pub fn parse_decision_comment(approve: bool, comment: Option<&str>) -> AppResult<Option<String>> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = comment {
        if c.chars().count() > 4000 {
            return Err(AppError::bad_field(
                "comment",
                "a comment has at most 4000 characters",
            ));
        }
    }
    if !approve && comment.is_none() {
        return Err(AppError::bad_field(
            "comment",
            "a rejection needs a comment saying why",
        ));
    }
    Ok(comment.map(str::to_owned))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalEventKind {
    /// A decision that left the approval pending (the step moved on, or needs more).
    StepDecided,
    /// The decision that ended the approval.
    Decided,
    /// A step ran past its SLA and was escalated.
    Escalated,
    /// An approver delegated their decisions.
    Delegated,
}

impl ApprovalEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StepDecided => "STEP_DECIDED",
            Self::Decided => "DECIDED",
            Self::Escalated => "ESCALATED",
            Self::Delegated => "DELEGATED",
        }
    }
}

/// Logged with a decision, an escalation or a delegation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalEvent {
    pub kind: ApprovalEventKind,
    /// Who may see it: the submitter, everyone assigned, and who acted…
    pub people: Vec<Uuid>,
    /// …and `approval.read` holders over the subject's department (its materialised path).
    #[serde(default)]
    pub department_path: Option<String>,
    pub instance_id: Uuid,
    pub subject_type: String,
    pub subject_id: Uuid,
    pub decided_by: Uuid,
    pub approve: bool,
    pub status: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl crate::platform::events::Event for ApprovalEvent {
    const TOPIC: &'static str = "approvals";

    fn head(&self) -> crate::platform::events::EventHead {
        crate::platform::events::EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind: match self.kind {
                ApprovalEventKind::Delegated => "approval_delegation",
                _ => "approval",
            },
            subject_id: Some(self.instance_id),
            actor_id: Some(self.decided_by),
            audience: serde_json::json!({
                "people": self.people,
                "departmentPath": self.department_path,
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalAudience {
    people: Vec<Uuid>,
    #[serde(default)]
    department_path: Option<String>,
}

/// Whether `approval.read` covers an approval whose subject lies in `department_path` (a
/// subject of no department needs a global grant).
pub fn reads_approvals_in(viewer: &crate::auth::ViewerUser, department_path: Option<&str>) -> bool {
    match department_path {
        Some(path) => viewer.has_in(crate::auth::Permission::ApprovalRead, path),
        None => viewer.has_global(crate::auth::Permission::ApprovalRead),
    }
}

/// The department subtrees over which `approval.read` (or admin) covers approvals: the SQL
/// form of `reads_approvals_in` for subtree grants.
pub fn approval_subtrees(viewer: &crate::auth::ViewerUser) -> impl Iterator<Item = &str> {
    use crate::auth::viewer::Scope;
    use crate::auth::Permission;
    viewer.grants.iter().filter_map(|g| match &g.scope {
        Scope::Subtree { path }
            if matches!(g.permission, Permission::ApprovalRead | Permission::Admin) =>
        {
            Some(path.as_str())
        }
        _ => None,
    })
}

/// The people on the approval, administrators and `approval.read` holders over its subject's
/// department, as `approval(id)` admits them.
pub fn event_visible_to(
    envelope: &crate::platform::events::Envelope,
    viewer: &crate::auth::ViewerUser,
) -> bool {
    envelope.audience::<ApprovalAudience>().is_some_and(|a| {
        a.people.contains(&viewer.id) || reads_approvals_in(viewer, a.department_path.as_deref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(amount: &str) -> SubjectFacts {
        SubjectFacts {
            numbers: BTreeMap::from([("amount".to_owned(), amount.to_owned())]),
            ..SubjectFacts::default()
        }
    }

    fn condition(op: CompareOp, value: &str) -> Condition {
        Condition {
            field: "amount".into(),
            op,
            value: value.parse().unwrap_or_else(|_| panic!("{value}")),
        }
    }

    #[test]
    fn conditions_compare_exactly_and_fail_closed() {
        let at_least = condition(CompareOp::Gte, "10000");
        assert!(at_least.applies(&facts("10000.00")));
        assert!(at_least.applies(&facts("10000.01")));
        assert!(at_least.applies(&facts("20000.5")));
        assert!(!at_least.applies(&facts("9999.99")));
        assert!(condition(CompareOp::Lt, "5").applies(&facts("4.99")));
        assert!(!condition(CompareOp::Lt, "5").applies(&facts("5")));
        assert!(condition(CompareOp::Eq, "5").applies(&facts("5.0")));
        // Nothing the engine cannot read exactly skips a step, whatever the operator.
        for unreadable in ["20,000", "1e5", " 20000", "+20000", "", "NaN", "２００００"] {
            assert!(at_least.applies(&facts(unreadable)), "{unreadable:?}");
            assert!(
                condition(CompareOp::Lt, "5").applies(&facts(unreadable)),
                "{unreadable:?}"
            );
        }
        assert!(at_least.applies(&SubjectFacts::default()));
    }

    #[test]
    fn unknown_statuses_read_as_none() {
        for status in [
            InstanceStatus::Pending,
            InstanceStatus::Approved,
            InstanceStatus::Rejected,
            InstanceStatus::Cancelled,
        ] {
            assert_eq!(InstanceStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(InstanceStatus::parse("pending"), None);
        assert_eq!(InstanceStatus::parse(""), None);
    }

    #[test]
    fn flows_are_validated() {
        let step = |required| NewStep {
            name: "s".into(),
            rule: ApproverRule::DepartmentHead,
            required_approvals: required,
            condition: None,
            sla_hours: Some(24),
        };
        let flow = |steps| NewFlow {
            name: "f".into(),
            allow_self_approval: false,
            steps,
        };
        assert!(flow(vec![step(1)]).validate().is_ok());
        assert!(flow(vec![]).validate().is_err());
        assert!(flow(vec![step(0)]).validate().is_err());
        let mut named = step(2);
        named.rule = ApproverRule::User(Uuid::now_v7());
        assert!(flow(vec![named]).validate().is_err());
    }

    #[test]
    fn rejections_need_a_reason() {
        assert!(parse_decision_comment(false, None).is_err());
        assert!(parse_decision_comment(false, Some("   ")).is_err());
        assert_eq!(
            parse_decision_comment(false, Some(" no "))
                .ok()
                .flatten()
                .as_deref(),
            Some("no")
        );
        assert_eq!(parse_decision_comment(true, None).ok().flatten(), None);
    }
}
