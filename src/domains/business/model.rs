//! Transaction statuses, routes, posting rules and the payload's exact amounts.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::platform::money::Decimal;

crate::domains::id_type!(TransactionId, "transaction");

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
