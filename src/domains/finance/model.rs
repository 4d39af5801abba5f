//! Ledger rules that need no storage: balanced lines, periods, account sides.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::viewer::Scope;
use crate::auth::{Permission, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::events::{Envelope, Event, EventHead};

crate::domains::id_type!(EntryId, "journal entry");

crate::domains::id_type!(BudgetId, "budget");

crate::domains::id_type!(AccountId, "account");

string_enum!(AccountType {
    Asset => "ASSET",
    Liability => "LIABILITY",
    Equity => "EQUITY",
    Revenue => "REVENUE",
    Expense => "EXPENSE",
});
string_enum!(BudgetPolicy { Stop => "STOP", Warn => "WARN", Ignore => "IGNORE" });
string_enum!(PeriodKind { Month => "MONTH", Quarter => "QUARTER", Year => "YEAR" });

impl AccountType {
    /// Assets and expenses grow by debits; the others by credits.
    pub fn grows_by_debit(self) -> bool {
        matches!(self, Self::Asset | Self::Expense)
    }

    /// A movement in this account's natural direction: positive when it grows. In 128 bits:
    /// the inputs may be totals of any number of lines.
    pub fn natural(self, debit: i128, credit: i128) -> i128 {
        if self.grows_by_debit() {
            debit - credit
        } else {
            credit - debit
        }
    }
}

pub const MAX_LINES: usize = 200;
/// The largest amount on one line (10^15 minor units). An account's total may still pass
/// `i64::MAX` after some 9,200 such lines, so totals are summed in 128 bits (see
/// `service::wide_sum`), never in 64.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

#[derive(Clone, Debug)]
pub struct PostingLine {
    pub account_code: String,
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub cost_center_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
}

#[derive(Clone, Debug)]
pub struct NewEntry {
    pub memo: String,
    pub posting_date: NaiveDate,
    pub lines: Vec<PostingLine>,
}

impl NewEntry {
    /// Every line has exactly one positive side, and debits equal credits, without overflow.
    pub fn validate(&self) -> AppResult<()> {
        if self.memo.chars().count() > 500 {
            return Err(AppError::bad_field(
                "memo",
                "a memo has at most 500 characters",
            ));
        }
        if self.lines.len() < 2 || self.lines.len() > MAX_LINES {
            return Err(AppError::bad_field(
                "lines",
                format!("an entry has 2 to {MAX_LINES} lines"),
            ));
        }
        let (mut debits, mut credits) = (0i64, 0i64);
        for (n, line) in self.lines.iter().enumerate() {
            let one_side = (line.debit_minor > 0 && line.credit_minor == 0)
                || (line.credit_minor > 0 && line.debit_minor == 0);
            if !one_side {
                return Err(AppError::bad_field(
                    "lines",
                    format!(
                        "line {}: exactly one of debit and credit, and it must be positive",
                        n + 1
                    ),
                ));
            }
            if line.debit_minor > MAX_AMOUNT || line.credit_minor > MAX_AMOUNT {
                return Err(AppError::bad_field(
                    "lines",
                    format!("line {}: amount out of range", n + 1),
                ));
            }
            let overflow = || AppError::bad_field("lines", "amounts out of range");
            debits = debits.checked_add(line.debit_minor).ok_or_else(overflow)?;
            credits = credits
                .checked_add(line.credit_minor)
                .ok_or_else(overflow)?;
        }
        if debits != credits {
            return Err(AppError::bad_field(
                "lines",
                "debits and credits do not balance",
            ));
        }
        Ok(())
    }
}

/// A budget as asked for: the period text is parsed, and the rest checked, by the service.
#[derive(Clone, Debug)]
pub struct NewBudget {
    pub cost_center: Uuid,
    pub account_code: String,
    /// `2026-11`, `2026-Q4` or `2026` (see `parse_period`).
    pub period: String,
    pub amount_minor: i64,
    pub policy: BudgetPolicy,
}

/// An edit of an account; what is left out is kept. The code is fixed: posting rules and
/// clients name accounts by it.
#[derive(Clone, Debug, Default)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub kind: Option<AccountType>,
}

/// An edit of a budget; what is left out is kept. Its cost centre, account and period are what
/// the budget is, so a different one is a new budget.
#[derive(Clone, Debug, Default)]
pub struct BudgetChanges {
    pub amount_minor: Option<i64>,
    pub policy: Option<BudgetPolicy>,
}

/// A budget period from its text: `2026-11` (month), `2026-Q4` (quarter) or `2026` (year).
/// Returns the kind and the half-open range `[start, end)`.
pub fn parse_period(raw: &str) -> AppResult<(PeriodKind, NaiveDate, NaiveDate)> {
    let bad = || AppError::bad_field("period", "a period is YYYY-MM, YYYY-Qn or YYYY");
    let raw = raw.trim();
    let year_of = |y: &str| y.parse::<i32>().ok().filter(|y| (1900..=9999).contains(y));
    let date = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad);
    match raw.split_once('-') {
        None => {
            let year = year_of(raw).ok_or_else(bad)?;
            Ok((PeriodKind::Year, date(year, 1)?, date(year + 1, 1)?))
        }
        Some((y, q)) if q.starts_with('Q') => {
            let year = year_of(y).ok_or_else(bad)?;
            let quarter = q[1..]
                .parse::<u32>()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(bad)?;
            let start = date(year, (quarter - 1) * 3 + 1)?;
            let end = if quarter == 4 {
                date(year + 1, 1)?
            } else {
                date(year, quarter * 3 + 1)?
            };
            Ok((PeriodKind::Quarter, start, end))
        }
        Some((y, m)) => {
            let year = year_of(y).ok_or_else(bad)?;
            let month = m
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=12).contains(m))
                .ok_or_else(bad)?;
            let start = date(year, month)?;
            let end = if month == 12 {
                date(year + 1, 1)?
            } else {
                date(year, month + 1)?
            };
            Ok((PeriodKind::Month, start, end))
        }
    }
}

pub fn period_label(kind: PeriodKind, start: NaiveDate) -> String {
    match kind {
        PeriodKind::Month => format!("{}-{:02}", start.year(), start.month()),
        PeriodKind::Quarter => format!("{}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
        PeriodKind::Year => format!("{}", start.year()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FinanceEventKind {
    EntryPosted,
    EntryReversed,
    /// A posting took a `WARN` budget past its amount (a `STOP` budget refuses it instead).
    BudgetWarning,
}

impl FinanceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EntryPosted => "ENTRY_POSTED",
            Self::EntryReversed => "ENTRY_REVERSED",
            Self::BudgetWarning => "BUDGET_WARNING",
        }
    }
}

/// The `WARN` budget a posting overran, with the amounts that decided it (minor units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetOverrun {
    pub budget_id: Uuid,
    pub cost_center_id: Uuid,
    pub account_code: String,
    pub budgeted_minor: i64,
    /// Used before this posting; past `i64::MAX` it reads `i64::MAX` (far over any budget,
    /// which is at most `MAX_AMOUNT`).
    pub used_minor: i64,
    /// What this posting adds.
    pub posting_minor: i64,
}

/// A change to the ledger, appended with the posting that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinanceEvent {
    pub kind: FinanceEventKind,
    pub entry_id: Uuid,
    pub reversal_of: Option<Uuid>,
    /// The business transaction the entry was posted for.
    pub transaction_id: Option<Uuid>,
    /// `None` for system postings (a built-in transaction type).
    pub posted_by: Option<Uuid>,
    pub memo: String,
    pub posting_date: NaiveDate,
    pub warnings: Vec<String>,
    /// For `BUDGET_WARNING`.
    pub budget: Option<BudgetOverrun>,
    pub at: DateTime<Utc>,
}

/// Who may see ledger events: every ledger read needs a global permission, so the audience
/// names it (and a future scoped read can add its scope here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinanceAudience {
    pub permission: String,
}

impl FinanceAudience {
    pub fn readers() -> Self {
        Self {
            permission: Permission::FinanceRead.as_str().to_owned(),
        }
    }

    /// An unknown permission admits nobody.
    pub fn admits(&self, viewer: &ViewerUser) -> bool {
        self.permission
            .parse::<Permission>()
            .is_ok_and(|needed| viewer.has_global(needed))
    }
}

impl Event for FinanceEvent {
    const TOPIC: &'static str = "finance";

    fn head(&self) -> EventHead {
        let (subject_kind, subject_id) = match &self.budget {
            Some(budget) if self.kind == FinanceEventKind::BudgetWarning => {
                ("budget", budget.budget_id)
            }
            _ => ("journal_entry", self.entry_id),
        };
        EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind,
            subject_id: Some(subject_id),
            actor_id: self.posted_by,
            audience: serde_json::to_value(FinanceAudience::readers())
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Mirrors the ledger reads: holders of a global `finance.read` (or admin). Fails closed.
pub fn event_visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    envelope.topic == FinanceEvent::TOPIC
        && envelope
            .audience::<FinanceAudience>()
            .is_some_and(|audience| audience.admits(viewer))
}

/// How much of the ledger a viewer reads: everything (a global `finance.read`), or the lines
/// whose cost centre lies in one of the department subtrees where they hold it. A line with no
/// cost centre belongs to no department, so only `All` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerScope {
    All,
    /// Materialised department paths (`/a/b/`); a cost centre is inside when its path starts
    /// with one of them.
    Subtrees(Vec<String>),
}

impl LedgerScope {
    /// `None` when the viewer holds `finance.read` nowhere. An app's grants already carry its
    /// department (see `integrations::model::grants_for`), so apps need nothing of their own.
    pub fn of(viewer: &ViewerUser) -> Option<Self> {
        if viewer.has_global(Permission::FinanceRead) {
            return Some(Self::All);
        }
        let mut paths: Vec<String> = viewer
            .grants
            .iter()
            .filter(|g| matches!(g.permission, Permission::FinanceRead | Permission::Admin))
            .filter_map(|g| match &g.scope {
                Scope::Subtree { path } => Some(path.clone()),
                Scope::Global => None,
            })
            .collect();
        paths.sort();
        paths.dedup();
        (!paths.is_empty()).then_some(Self::Subtrees(paths))
    }

    /// Whether a line of cost centre `path` (`None`: no cost centre) is inside.
    pub fn covers(&self, cost_center_path: Option<&str>) -> bool {
        match (self, cost_center_path) {
            (Self::All, _) => true,
            (Self::Subtrees(_), None) => false,
            (Self::Subtrees(paths), Some(path)) => paths.iter().any(|p| path.starts_with(p)),
        }
    }
}

string_enum!(JournalSource {
    Manual => "MANUAL",
    Reversal => "REVERSAL",
    Transaction => "TRANSACTION",
    Task => "TASK",
});

impl JournalSource {
    /// What posted an entry, from facts stored with it: `reversal_of` on the entry, and
    /// `transaction_id`/`task_id` on its lines. A reversal is one whatever it reverses; an
    /// entry a business transaction posted is `TASK` when its lines name a task (the built-in
    /// task cash output posts that way) and `TRANSACTION` otherwise; everything else came
    /// through `postJournalEntry` and is `MANUAL`, even when its lines name a task.
    pub fn derive(reversal: bool, from_transaction: bool, names_task: bool) -> Self {
        match (reversal, from_transaction, names_task) {
            (true, _, _) => Self::Reversal,
            (false, true, true) => Self::Task,
            (false, true, false) => Self::Transaction,
            (false, false, _) => Self::Manual,
        }
    }
}

/// The filter shared by `journalEntries` and the journal-lines export. Dates are inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalLineFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub account_code: Option<String>,
    pub cost_center_id: Option<Uuid>,
    pub source: Option<JournalSource>,
}

impl JournalLineFilter {
    pub fn validate(&self) -> AppResult<()> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to < from {
                return Err(AppError::bad_field(
                    "to",
                    "the period ends before it starts",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::viewer::Scope;
    use crate::platform::events::test_envelope;

    #[test]
    fn ledger_scope_follows_finance_grants() {
        let global = ViewerUser::with_grants(vec![(Permission::FinanceRead, Scope::Global)]);
        assert_eq!(LedgerScope::of(&global), Some(LedgerScope::All));
        let admin = ViewerUser::with_grants(vec![(Permission::Admin, Scope::Global)]);
        assert_eq!(LedgerScope::of(&admin), Some(LedgerScope::All));
        let scoped = ViewerUser::with_grants(vec![
            (
                Permission::FinanceRead,
                Scope::Subtree { path: "/a/".into() },
            ),
            (Permission::TaskRead, Scope::Subtree { path: "/b/".into() }),
            (
                Permission::FinanceRead,
                Scope::Subtree { path: "/a/".into() },
            ),
        ]);
        let scope = LedgerScope::of(&scoped).unwrap_or(LedgerScope::All);
        assert_eq!(scope, LedgerScope::Subtrees(vec!["/a/".into()]));
        assert!(scope.covers(Some("/a/x/")));
        assert!(!scope.covers(Some("/b/")));
        assert!(!scope.covers(None));
        assert!(LedgerScope::All.covers(None));
        let none = ViewerUser::with_grants(vec![(Permission::TaskRead, Scope::Global)]);
        assert_eq!(LedgerScope::of(&none), None);
    }

    #[test]
    fn journal_sources_come_from_recorded_facts() {
        assert_eq!(
            JournalSource::derive(true, true, true),
            JournalSource::Reversal
        );
        assert_eq!(
            JournalSource::derive(false, true, true),
            JournalSource::Task
        );
        assert_eq!(
            JournalSource::derive(false, true, false),
            JournalSource::Transaction
        );
        assert_eq!(
            JournalSource::derive(false, false, true),
            JournalSource::Manual
        );
        let backwards = JournalLineFilter {
            from: NaiveDate::from_ymd_opt(2026, 2, 1),
            to: NaiveDate::from_ymd_opt(2026, 1, 1),
            ..Default::default()
        };
        assert!(backwards.validate().is_err());
        assert!(JournalLineFilter::default().validate().is_ok());
    }

    #[test]
    fn ledger_events_are_seen_by_global_finance_readers_only() {
        let budget_id = Uuid::now_v7();
        let warning = FinanceEvent {
            kind: FinanceEventKind::BudgetWarning,
            entry_id: Uuid::now_v7(),
            reversal_of: None,
            transaction_id: None,
            posted_by: None,
            memo: "m".into(),
            posting_date: NaiveDate::default(),
            warnings: vec!["exceeds the budget for account 6000".into()],
            budget: Some(BudgetOverrun {
                budget_id,
                cost_center_id: Uuid::now_v7(),
                account_code: "6000".into(),
                budgeted_minor: 100,
                used_minor: 90,
                posting_minor: 20,
            }),
            at: chrono::Utc::now(),
        };
        let envelope = test_envelope(&warning, None);
        assert_eq!(envelope.kind, "BUDGET_WARNING");
        assert_eq!(envelope.subject_id, Some(budget_id));
        assert_eq!(envelope.decode::<FinanceEvent>(), Some(warning.clone()));
        let reader = ViewerUser::with_grants(vec![(Permission::FinanceRead, Scope::Global)]);
        assert!(event_visible_to(&envelope, &reader));
        assert!(event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![(Permission::Admin, Scope::Global)])
        ));
        assert!(!event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![])
        ));
        assert!(!event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![(Permission::FinancePost, Scope::Global)])
        ));
        assert!(!event_visible_to(
            &envelope,
            &ViewerUser::with_grants(vec![(
                Permission::FinanceRead,
                Scope::Subtree { path: "/a/".into() }
            )])
        ));
        for audience in [
            serde_json::json!(null),
            serde_json::json!({}),
            serde_json::json!({ "permission": "finance.fly" }),
        ] {
            assert!(!event_visible_to(
                &test_envelope(&warning, Some(audience)),
                &reader
            ));
        }
    }

    fn line(debit: i64, credit: i64) -> PostingLine {
        PostingLine {
            account_code: "1000".into(),
            debit_minor: debit,
            credit_minor: credit,
            cost_center_id: None,
            task_id: None,
        }
    }

    fn entry(lines: Vec<PostingLine>) -> NewEntry {
        NewEntry {
            memo: "m".into(),
            posting_date: NaiveDate::default(),
            lines,
        }
    }

    #[test]
    fn entries_must_balance_with_one_positive_side_per_line() {
        assert!(entry(vec![line(100, 0), line(0, 100)]).validate().is_ok());
        assert!(entry(vec![line(100, 0), line(0, 99)]).validate().is_err());
        assert!(entry(vec![line(100, 0)]).validate().is_err());
        assert!(entry(vec![line(100, 100), line(0, 0)]).validate().is_err());
        assert!(entry(vec![line(-5, 0), line(0, -5)]).validate().is_err());
        assert!(entry(vec![line(i64::MAX, 0), line(1, 0), line(0, 1)])
            .validate()
            .is_err());
    }

    #[test]
    fn periods_parse_to_half_open_ranges() -> AppResult<()> {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert_eq!(
            parse_period("2026-11")?,
            (PeriodKind::Month, d(2026, 11, 1), d(2026, 12, 1))
        );
        assert_eq!(
            parse_period("2026-12")?,
            (PeriodKind::Month, d(2026, 12, 1), d(2027, 1, 1))
        );
        assert_eq!(
            parse_period("2026-Q4")?,
            (PeriodKind::Quarter, d(2026, 10, 1), d(2027, 1, 1))
        );
        assert_eq!(
            parse_period("2026")?,
            (PeriodKind::Year, d(2026, 1, 1), d(2027, 1, 1))
        );
        for bad in ["2026-13", "2026-Q5", "26", "2026-00", "x"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(period_label(PeriodKind::Quarter, d(2026, 10, 1)), "2026-Q4");
        Ok(())
    }

    #[test]
    fn natural_sides() {
        assert_eq!(AccountType::Expense.natural(100, 0), 100);
        assert_eq!(AccountType::Revenue.natural(0, 100), 100);
        assert_eq!(AccountType::Revenue.natural(100, 0), -100);
        let max = i128::from(i64::MAX);
        assert_eq!(AccountType::Asset.natural(max * 3, 0), max * 3);
    }

    #[test]
    fn stored_enums_that_do_not_parse_are_none() {
        assert_eq!(BudgetPolicy::parse("STOP"), Some(BudgetPolicy::Stop));
        for bad in ["stop", "", "IGNORED", "STOP "] {
            assert_eq!(BudgetPolicy::parse(bad), None);
            assert_eq!(AccountType::parse(bad), None);
        }
    }
}
