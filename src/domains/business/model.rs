//! Transaction statuses, routes, posting rules and the payload's exact amounts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{AppScope, Permission, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::events::{Envelope, Event, EventHead};
use crate::platform::money::Decimal;

crate::domains::id_type!(TransactionId, "transaction");
crate::domains::id_type!(TransactionTypeId, "transaction type");

pub const SUBJECT_KIND: &str = "business_transaction";
pub const TASK_OUTPUT_TYPE: &str = "TASK_OUTPUT";

string_enum!(Route { FinancePosting => "FINANCE_POSTING", AppForward => "APP_FORWARD", DataProcess => "DATA_PROCESS" });
string_enum!(Status {
    Received => "RECEIVED",
    Validated => "VALIDATED",
    PendingApproval => "PENDING_APPROVAL",
    Approved => "APPROVED",
    Executing => "EXECUTING",
    Completed => "COMPLETED",
    Failed => "FAILED",
});

/// How a payload becomes journal lines: each line names an account, a side and the payload
/// field holding its amount; optionally the fields holding the cost centre and the task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostingRule {
    pub lines: Vec<RuleLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleLine {
    pub account: String,
    pub side: Side,
    pub amount_field: String,
    #[serde(default)]
    pub cost_center_field: Option<String>,
    #[serde(default)]
    pub task_field: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Debit,
    Credit,
}

impl PostingRule {
    pub fn parse(raw: &serde_json::Value) -> AppResult<Self> {
        let rule: PostingRule = serde_json::from_value(raw.clone())
            .map_err(|e| AppError::bad_field("postingRule", format!("not a posting rule: {e}")))?;
        if rule.lines.len() < 2 {
            return Err(AppError::bad_field(
                "postingRule",
                "a posting rule has at least two lines",
            ));
        }
        if !rule.lines.iter().any(|l| l.side == Side::Debit)
            || !rule.lines.iter().any(|l| l.side == Side::Credit)
        {
            return Err(AppError::bad_field(
                "postingRule",
                "a posting rule needs a debit and a credit line",
            ));
        }
        Ok(rule)
    }
}

/// An amount from the payload: decimal text or an integer, never a fraction in floating point.
pub fn amount_at(payload: &serde_json::Value, field: &str, exponent: u32) -> AppResult<i64> {
    let bad = |why: &str| AppError::bad_field("payload", format!("/{field}: {why}"));
    let decimal: Decimal = match payload.get(field) {
        Some(serde_json::Value::String(text)) => text.parse().map_err(|e| bad(&format!("{e}")))?,
        Some(serde_json::Value::Number(n)) if n.is_i64() => {
            n.to_string().parse().map_err(|_| bad("not an amount"))?
        }
        Some(_) => return Err(bad("amounts are decimal text such as \"12.50\"")),
        None => return Err(bad("missing")),
    };
    decimal.to_minor(exponent).map_err(|e| bad(&format!("{e}")))
}

/// The payload's fingerprint: the same key must come with the same payload.
pub fn payload_hash(payload: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(payload.to_string().as_bytes()))
}

pub fn parse_idempotency_key(raw: &str) -> AppResult<String> {
    let key = raw.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(AppError::bad_field(
            "idempotencyKey",
            "an idempotency key has 1–255 characters",
        ));
    }
    Ok(key.to_owned())
}

/// Who may read a transaction: its submitter (a person, or an app's service account), and
/// holders of a global `finance.read` or `business.read` (the same rule for reads and for its
/// events). An app reads transactions only with a business scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionAudience {
    /// `None` for system sources (completed tasks).
    pub submitter: Option<Uuid>,
}

impl TransactionAudience {
    pub fn admits(&self, viewer: &ViewerUser) -> bool {
        sees_transactions(viewer)
            && (self.submitter == Some(viewer.id) || reads_every_transaction(viewer))
    }
}

pub fn sees_transactions(viewer: &ViewerUser) -> bool {
    viewer.allows(AppScope::BusinessRead) || viewer.allows(AppScope::BusinessSubmit)
}

/// People with a global `finance.read` or `business.read`; an app only with `BUSINESS_READ`
/// everywhere (its finance scope reads the ledger, not the transactions behind it).
pub fn reads_every_transaction(viewer: &ViewerUser) -> bool {
    viewer.has_global(Permission::BusinessRead)
        || (viewer.app.is_none() && viewer.has_global(Permission::FinanceRead))
}

/// The status a transaction entered; each status it enters is one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionEventKind {
    /// Received and validated.
    Submitted,
    PendingApproval,
    Approved,
    /// Its approval was rejected: the transaction is FAILED, with the reason as its error.
    Rejected,
    /// Routed; a queued route stays here until its job finishes.
    Executing,
    Completed,
    Failed,
}

impl TransactionEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::PendingApproval => "PENDING_APPROVAL",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Executing => "EXECUTING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// The status the transaction has after this event.
    pub fn status(self) -> Status {
        match self {
            Self::Submitted => Status::Validated,
            Self::PendingApproval => Status::PendingApproval,
            Self::Approved => Status::Approved,
            Self::Executing => Status::Executing,
            Self::Completed => Status::Completed,
            Self::Rejected | Self::Failed => Status::Failed,
        }
    }
}

/// A transaction's status change, appended with the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionEvent {
    pub kind: TransactionEventKind,
    pub transaction_id: Uuid,
    pub type_code: String,
    /// Stored as the transaction stores it (`PENDING_APPROVAL`), not as a Rust name.
    #[serde(with = "status_text")]
    pub status: Status,
    /// `user:<id>` or `system:<domain>`.
    pub source: String,
    pub submitter: Option<Uuid>,
    pub idempotency_key: String,
    /// What execution produced (a completed transaction's result, a queued one's job).
    pub result: Option<serde_json::Value>,
    /// Why it failed (or was rejected).
    pub error: Option<String>,
    /// Who caused the change: the submitter, the approver; `None` for jobs and system sources.
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl TransactionEvent {
    pub fn audience(&self) -> TransactionAudience {
        TransactionAudience {
            submitter: self.submitter,
        }
    }
}

impl Event for TransactionEvent {
    const TOPIC: &'static str = "business";

    fn head(&self) -> EventHead {
        EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind: SUBJECT_KIND,
            subject_id: Some(self.transaction_id),
            actor_id: self.actor_id,
            // `null` decodes to no audience, so an unserialisable one admits nobody.
            audience: serde_json::to_value(self.audience()).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Who reads a type's `postingRule` and `forwardUrl` (internal accounts, partner endpoints):
/// administrators and operators (a global `scheduler.manage`, who see the delivery jobs too).
pub fn may_read_type_config(viewer: &ViewerUser) -> bool {
    viewer.has_global(Permission::SchedulerManage)
}

/// Mirrors `service::find`: the submitter and global `finance.read` holders. Fails closed.
pub fn event_visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    envelope.topic == TransactionEvent::TOPIC
        && envelope
            .audience::<TransactionAudience>()
            .is_some_and(|audience| audience.admits(viewer))
}

mod status_text {
    use super::*;

    pub fn serialize<S: Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Status, D::Error> {
        let text = String::deserialize(deserializer)?;
        Status::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown status {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::viewer::Scope;
    use crate::platform::events::test_envelope;
    use serde_json::json;

    #[test]
    fn type_configuration_is_for_administrators_and_operators() {
        let with = |p| ViewerUser::with_grants(vec![(p, Scope::Global)]);
        assert!(may_read_type_config(&with(Permission::Admin)));
        assert!(may_read_type_config(&with(Permission::SchedulerManage)));
        assert!(!may_read_type_config(&with(Permission::BusinessSubmit)));
        assert!(!may_read_type_config(&with(Permission::FinancePost)));
        assert!(!may_read_type_config(&ViewerUser::with_grants(vec![(
            Permission::SchedulerManage,
            Scope::Subtree { path: "/a/".into() }
        )])));
    }

    fn event(submitter: Option<Uuid>) -> TransactionEvent {
        TransactionEvent {
            kind: TransactionEventKind::PendingApproval,
            transaction_id: Uuid::now_v7(),
            type_code: "EXPENSE".into(),
            status: Status::PendingApproval,
            source: "user:x".into(),
            submitter,
            idempotency_key: "k".into(),
            result: None,
            error: None,
            actor_id: submitter,
            at: Utc::now(),
        }
    }

    #[test]
    fn an_event_is_copied_out_only_when_the_filter_keeps_it() {
        let sent = event(None);
        let envelope = test_envelope(&sent, None);
        let mut seen = None;
        let refused = envelope.decode_if::<TransactionEvent>(|event| {
            seen = Some(event.transaction_id);
            false
        });
        assert_eq!(refused, None);
        assert_eq!(
            seen,
            Some(sent.transaction_id),
            "the filter saw the decoded event"
        );
        let wanted = sent.transaction_id;
        assert_eq!(
            envelope.decode_if::<TransactionEvent>(|event| event.transaction_id == wanted),
            Some(sent.clone())
        );
        // Another topic's type is never offered to the filter.
        let offered = std::cell::Cell::new(false);
        assert!(envelope
            .decode_if::<crate::domains::tasks::model::TaskEvent>(|_| {
                offered.set(true);
                true
            })
            .is_none());
        assert!(!offered.get());
    }

    #[test]
    fn events_are_seen_by_the_submitter_and_global_finance_readers() {
        let submitter = ViewerUser::with_grants(vec![]);
        let sent = event(Some(submitter.id));
        let envelope = test_envelope(&sent, None);
        assert_eq!(envelope.kind, "PENDING_APPROVAL");
        assert_eq!(envelope.payload["status"], "PENDING_APPROVAL");
        assert_eq!(envelope.decode::<TransactionEvent>(), Some(sent.clone()));
        assert!(event_visible_to(&envelope, &submitter));
        assert!(!event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![])
        ));
        assert!(event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![(Permission::FinanceRead, Scope::Global)])
        ));
        assert!(event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![(Permission::Admin, Scope::Global)])
        ));
        let scoped = ViewerUser::with_grants(vec![(
            Permission::FinanceRead,
            Scope::Subtree { path: "/a/".into() },
        )]);
        assert!(!event_visible_to(&envelope, &scoped));
        // A system transaction has no submitter: only readers of the whole ledger see it.
        let system = test_envelope(&event(None), None);
        assert!(!event_visible_to(&system, &submitter));
    }

    #[test]
    fn undecodable_audiences_admit_nobody() {
        let submitter = ViewerUser::with_grants(vec![]);
        let reader = ViewerUser::with_grants(vec![(Permission::FinanceRead, Scope::Global)]);
        for audience in [json!(null), json!([1]), json!({ "submitter": 7 })] {
            let envelope = test_envelope(&event(Some(submitter.id)), Some(audience));
            assert!(!event_visible_to(&envelope, &submitter));
            assert!(!event_visible_to(&envelope, &reader));
        }
    }

    #[test]
    fn amounts_are_exact_and_never_floats() {
        let p = json!({ "a": "12.50", "b": 7, "c": 1.5, "d": "1.005" });
        assert_eq!(amount_at(&p, "a", 2).ok(), Some(1250));
        assert_eq!(amount_at(&p, "b", 2).ok(), Some(700));
        assert!(amount_at(&p, "c", 2).is_err());
        assert!(amount_at(&p, "d", 2).is_err());
        assert!(amount_at(&p, "missing", 2).is_err());
    }

    #[test]
    fn rules_need_both_sides() {
        let ok = json!({ "lines": [
            { "account": "1000", "side": "DEBIT", "amountField": "amount" },
            { "account": "4000", "side": "CREDIT", "amountField": "amount" }
        ] });
        assert!(PostingRule::parse(&ok).is_ok());
        let one_sided = json!({ "lines": [
            { "account": "1000", "side": "DEBIT", "amountField": "amount" },
            { "account": "4000", "side": "DEBIT", "amountField": "amount" }
        ] });
        assert!(PostingRule::parse(&one_sided).is_err());
        assert!(PostingRule::parse(&json!({ "lines": [], "extra": 1 })).is_err());
    }
}
