//! Ledger rules over storage: accounts, posting and reversing entries under budgets.

mod journal;
mod reports;

pub use journal::*;
pub use reports::*;

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use entities::{account, budget, journal_entry, journal_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::model::{
    parse_period, AccountChanges, AccountId, AccountType, BudgetChanges, BudgetId, BudgetOverrun,
    BudgetPolicy, EntryId, FinanceEvent, FinanceEventKind, NewBudget, NewEntry, PostingLine,
};
use crate::auth::{Permission, Viewer};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

/// An account whose stored type does not parse is an `INTERNAL` error, never a guess: the type
/// decides which side grows, and so what budgets see.
pub fn account_type(account: &account::Model) -> AppResult<AccountType> {
    AccountType::parse(&account.account_type).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "account {} has unknown type {:?}",
            account.id,
            account.account_type
        ))
    })
}

/// What a budget's stored policy means. One that does not parse is `STOP`: a damaged row holds
/// spending back rather than waving it through.
pub fn budget_policy(found: &budget::Model) -> BudgetPolicy {
    BudgetPolicy::parse(&found.policy).unwrap_or_else(|| {
        tracing::error!(budget = %found.id, policy = %found.policy, "unknown budget policy, read as STOP");
        BudgetPolicy::Stop
    })
}

/// Amounts are split as `high × 10^9 + low` and the two parts summed apart, so no SQL sum can
/// pass 64 bits on either database (SQLite's `SUM` raises "integer overflow" there, and
/// PostgreSQL's NUMERIC sum would not cast back to BIGINT) for up to a billion lines; `join`
/// puts them together in 128 bits.
const SPLIT: i64 = 1_000_000_000;

/// The two SQL expressions summing `expr` (optionally with a window `over`), as BIGINTs.
pub(super) fn wide_sum(expr: &str, over: &str) -> [String; 2] {
    [
        format!("CAST(COALESCE(SUM(({expr}) / {SPLIT}){over}, 0) AS BIGINT)"),
        format!("CAST(COALESCE(SUM(({expr}) % {SPLIT}){over}, 0) AS BIGINT)"),
    ]
}

pub(super) fn join(high: i64, low: i64) -> i128 {
    i128::from(high) * i128::from(SPLIT) + i128::from(low)
}

pub async fn create_account(
    work: &Work,
    viewer: &Viewer,
    code: &str,
    name: &str,
    kind: AccountType,
) -> AppResult<account::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    let code = code.trim();
    if code.is_empty()
        || code.len() > 32
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(AppError::bad_field(
            "code",
            "an account code is 1–32 letters, digits, '-' or '.'",
        ));
    }
    account::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(code.to_owned()),
        name: Set(name.to_owned()),
        account_type: Set(kind.as_str().to_owned()),
        created_at: Set(Utc::now()),
        deactivated_at: Set(None),
    }
    .insert(work)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, format!("an account with code {code:?} exists"))
    })
}

async fn find_account<C: ConnectionTrait>(db: &C, id: AccountId) -> AppResult<account::Model> {
    account::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("account"))
}

/// Renames an account, or changes its type while nothing is posted to it: the type decides
/// which side grows, so changing it under postings would rewrite every balance.
pub async fn update_account(
    work: &Work,
    viewer: &Viewer,
    id: AccountId,
    changes: AccountChanges,
) -> AppResult<account::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    let current = find_account(work, id).await?;
    let kind = changes.kind.map(AccountType::as_str);
    if kind.is_some_and(|k| k != current.account_type) {
        let posted = journal_line::Entity::find()
            .filter(journal_line::Column::AccountId.eq(current.id))
            .one(work)
            .await?
            .is_some();
        if posted {
            return Err(AppError::Conflict(format!(
                "account {} has postings, so its type cannot change",
                current.code
            )));
        }
    }
    let mut row: account::ActiveModel = current.clone().into();
    row.name = Set(changes.name.unwrap_or(current.name));
    row.account_type = Set(kind.map_or(current.account_type, str::to_owned));
    Ok(row.update(work).await?)
}

/// Closes an account to new postings and budgets, or opens it again. Its history, balances and
/// reversals of its entries are untouched. Doing either twice changes nothing.
pub async fn set_account_active(
    work: &Work,
    viewer: &Viewer,
    id: AccountId,
    active: bool,
) -> AppResult<account::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    let current = find_account(work, id).await?;
    if current.deactivated_at.is_none() == active {
        return Ok(current);
    }
    let mut row: account::ActiveModel = current.into();
    row.deactivated_at = Set((!active).then(Utc::now));
    Ok(row.update(work).await?)
}

pub async fn list_accounts<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<account::Model>> {
    // The chart of accounts is the same for every cost centre: any finance reader reads it.
    ledger_scope(viewer.user()?)?;
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Code)
        .all(db)
        .await?)
}

/// The chart of accounts for whoever reads the ledger or posts to it: it shows no balances.
pub async fn chart_of_accounts<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<account::Model>> {
    let me = viewer.user()?;
    if !me.has_global(Permission::FinancePost) {
        ledger_scope(me)?;
    }
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Code)
        .all(db)
        .await?)
}

/// Every budget, for those who set them (`finance.post`); their use is `budget_usage`.
pub async fn list_budgets<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<budget::Model>> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    Ok(budget::Entity::find()
        .order_by_desc(budget::Column::PeriodStart)
        .order_by_asc(budget::Column::Id)
        .all(db)
        .await?)
}

pub async fn find_budget<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: BudgetId,
) -> AppResult<budget::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    budget::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("budget"))
}

pub(super) async fn accounts_by_code<C: ConnectionTrait>(
    db: &C,
    codes: Vec<String>,
) -> AppResult<HashMap<String, account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::Code.is_in(codes))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.code.clone(), a))
        .collect())
}

/// The net movement, in the account's natural direction, of (cost centre, account) over
/// `[from, to)`.
pub(super) async fn natural_total<C: ConnectionTrait>(
    db: &C,
    cost_center: Uuid,
    account: &account::Model,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<i128> {
    let [debits_high, debits_low] = wide_sum("debit_minor", "");
    let [credits_high, credits_low] = wide_sum("credit_minor", "");
    let sums: Option<(i64, i64, i64, i64)> = journal_line::Entity::find()
        .select_only()
        .expr_as(Expr::cust(debits_high), "debits_high")
        .expr_as(Expr::cust(debits_low), "debits_low")
        .expr_as(Expr::cust(credits_high), "credits_high")
        .expr_as(Expr::cust(credits_low), "credits_low")
        .filter(journal_line::Column::CostCenterId.eq(cost_center))
        .filter(journal_line::Column::AccountId.eq(account.id))
        .filter(journal_line::Column::PostingDate.gte(from))
        .filter(journal_line::Column::PostingDate.lt(to))
        .into_tuple()
        .one(db)
        .await?;
    let (debits, credits) = sums.map_or((0, 0), |(dh, dl, ch, cl)| (join(dh, dl), join(ch, cl)));
    Ok(account_type(account)?.natural(debits, credits))
}

/// Posts for a business transaction inside its transaction: the type was configured by an
/// administrator, so no `finance.post` check; budgets apply as to any posting.
pub async fn post_for_transaction(
    work: &Work,
    posted_by: Uuid,
    entry: &NewEntry,
    transaction_id: Uuid,
) -> AppResult<Posted> {
    entry.validate()?;
    insert_entry(work, posted_by, entry, None, true, Some(transaction_id)).await
}

pub async fn accounts_exist<C: ConnectionTrait>(
    db: &C,
    codes: Vec<String>,
) -> AppResult<Vec<String>> {
    let found = accounts_by_code(db, codes.clone()).await?;
    Ok(codes
        .into_iter()
        .filter(|c| !found.contains_key(c))
        .collect())
}

/// Creates an account if no account has the code (for built-in transaction types).
pub async fn ensure_account(
    work: &Work,
    code: &str,
    name: &str,
    kind: AccountType,
) -> AppResult<()> {
    if accounts_by_code(work, vec![code.to_owned()])
        .await?
        .is_empty()
    {
        account::ActiveModel {
            id: Set(Uuid::now_v7()),
            code: Set(code.to_owned()),
            name: Set(name.to_owned()),
            account_type: Set(kind.as_str().to_owned()),
            created_at: Set(Utc::now()),
            deactivated_at: Set(None),
        }
        .insert(work)
        .await?;
    }
    Ok(())
}

pub struct Posted {
    pub entry: journal_entry::Model,
    pub warnings: Vec<String>,
}

/// Posts a balanced entry. Each budget the entry touches is locked for the transaction, so
/// concurrent postings are checked one after another and a `STOP` budget is never exceeded.
pub async fn post_entry(work: &Work, viewer: &Viewer, entry: NewEntry) -> AppResult<Posted> {
    let me = viewer.user()?;
    me.require_global(Permission::FinancePost)?;
    entry.validate()?;
    insert_entry(work, me.id, &entry, None, true, None).await
}

/// Writes the entry and its lines and appends its events: the posting (or reversal), then one
/// `BUDGET_WARNING` per `WARN` budget it overran.
async fn insert_entry(
    work: &Work,
    posted_by: Uuid,
    entry: &NewEntry,
    reversal_of: Option<Uuid>,
    check_budgets: bool,
    transaction_id: Option<Uuid>,
) -> AppResult<Posted> {
    let accounts = accounts_by_code(
        work,
        entry.lines.iter().map(|l| l.account_code.clone()).collect(),
    )
    .await?;
    for line in &entry.lines {
        let Some(account) = accounts.get(&line.account_code) else {
            return Err(AppError::bad_field(
                "lines",
                format!("no account with code {:?}", line.account_code),
            ));
        };
        // A reversal corrects history, so it may still touch a closed account.
        if account.deactivated_at.is_some() && reversal_of.is_none() {
            return Err(AppError::bad_field(
                "lines",
                format!("account {:?} is deactivated", line.account_code),
            ));
        }
        if let Some(center) = line.cost_center_id {
            if identity::department_path_of(work, center).await?.is_none() {
                return Err(AppError::bad_field("lines", "no such cost centre"));
            }
        }
        if let Some(task) = line.task_id {
            if crate::domains::tasks::service::tasks_by_id(work, &[task])
                .await?
                .is_empty()
            {
                return Err(AppError::bad_field("lines", "no such task"));
            }
        }
    }
    let overruns = if check_budgets {
        check_budgets_for(work, entry, &accounts).await?
    } else {
        Vec::new()
    };
    let warnings: Vec<String> = overruns
        .iter()
        .map(|o| format!("exceeds the budget for account {}", o.account_code))
        .collect();
    let id = Uuid::now_v7();
    let row = journal_entry::ActiveModel {
        id: Set(id),
        memo: Set(entry.memo.clone()),
        posting_date: Set(entry.posting_date),
        reversal_of: Set(reversal_of),
        posted_by: Set(posted_by),
        warnings: Set(serde_json::json!(warnings)),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await
    .map_err(|e| AppError::from_unique_violation(e, "this entry has already been reversed"))?;
    let lines = entry.lines.iter().enumerate().filter_map(|(n, line)| {
        Some(journal_line::ActiveModel {
            id: Set(Uuid::now_v7()),
            entry_id: Set(id),
            line_no: Set(n as i32 + 1),
            account_id: Set(accounts.get(&line.account_code)?.id),
            cost_center_id: Set(line.cost_center_id),
            task_id: Set(line.task_id),
            transaction_id: Set(transaction_id),
            debit_minor: Set(line.debit_minor),
            credit_minor: Set(line.credit_minor),
            posting_date: Set(entry.posting_date),
        })
    });
    journal_line::Entity::insert_many(lines).exec(work).await?;
    let event = FinanceEvent {
        kind: if reversal_of.is_some() {
            FinanceEventKind::EntryReversed
        } else {
            FinanceEventKind::EntryPosted
        },
        entry_id: id,
        reversal_of,
        transaction_id,
        // Built-in transaction types post as the nil user: no one acted.
        posted_by: Some(posted_by).filter(|p| !p.is_nil()),
        memo: row.memo.clone(),
        posting_date: row.posting_date,
        warnings: warnings.clone(),
        budget: None,
        at: row.created_at,
    };
    work.emit(&event);
    for overrun in overruns {
        work.emit(&FinanceEvent {
            kind: FinanceEventKind::BudgetWarning,
            budget: Some(overrun),
            ..event.clone()
        });
    }
    Ok(Posted {
        entry: row,
        warnings,
    })
}

async fn check_budgets_for<C: ConnectionTrait>(
    db: &C,
    entry: &NewEntry,
    accounts: &HashMap<String, account::Model>,
) -> AppResult<Vec<BudgetOverrun>> {
    let mut deltas: HashMap<(Uuid, Uuid), i128> = HashMap::new();
    for line in &entry.lines {
        let (Some(center), Some(account)) = (line.cost_center_id, accounts.get(&line.account_code))
        else {
            continue;
        };
        *deltas.entry((center, account.id)).or_default() +=
            account_type(account)?.natural(line.debit_minor.into(), line.credit_minor.into());
    }
    let mut keys: Vec<(Uuid, Uuid)> = deltas.keys().copied().collect();
    // A fixed lock order, so two entries touching the same budgets cannot deadlock.
    keys.sort();
    let mut overruns = Vec::new();
    for (center, account_id) in keys {
        let delta = deltas.get(&(center, account_id)).copied().unwrap_or(0);
        if delta <= 0 {
            continue;
        }
        // Every budget covering the date counts (a month and its year alike), locked in id order.
        let covering = budget::Entity::find()
            .filter(budget::Column::CostCenterId.eq(center))
            .filter(budget::Column::AccountId.eq(account_id))
            .filter(budget::Column::PeriodStart.lte(entry.posting_date))
            .filter(budget::Column::PeriodEnd.gt(entry.posting_date))
            .order_by_asc(budget::Column::Id)
            .all(db)
            .await?;
        let account = accounts
            .values()
            .find(|a| a.id == account_id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("account vanished")))?;
        for covering in covering {
            // Locked whatever its policy, then read again: an edit (`update_budget`) holding the
            // lock may have changed its amount or policy since the list above was read.
            lock_in_transaction(db, &format!("budget:{}", covering.id)).await?;
            let Some(found) = budget::Entity::find_by_id(covering.id).one(db).await? else {
                continue;
            };
            let policy = budget_policy(&found);
            if policy == BudgetPolicy::Ignore {
                continue;
            }
            let used =
                natural_total(db, center, account, found.period_start, found.period_end).await?;
            if used + delta > i128::from(found.amount_minor) {
                match policy {
                    BudgetPolicy::Stop => {
                        return Err(AppError::Conflict(format!(
                            "the budget for account {} is exhausted: this posting would exceed it",
                            account.code
                        )))
                    }
                    BudgetPolicy::Warn => overruns.push(BudgetOverrun {
                        budget_id: found.id,
                        cost_center_id: center,
                        account_code: account.code.clone(),
                        budgeted_minor: found.amount_minor,
                        used_minor: i64::try_from(used).unwrap_or(i64::MAX),
                        // One entry's lines sum inside i64 (checked by `validate`).
                        posting_minor: i64::try_from(delta).unwrap_or(i64::MAX),
                    }),
                    BudgetPolicy::Ignore => {}
                }
            }
        }
    }
    Ok(overruns)
}

/// A correction: an entry with every line's sides swapped, referencing the original. An entry
/// is reversed once, and a reversal is never reversed.
pub async fn reverse_entry(
    work: &Work,
    viewer: &Viewer,
    id: EntryId,
    memo: Option<&str>,
) -> AppResult<journal_entry::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::FinancePost)?;
    let original = journal_entry::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("journal entry"))?;
    if original.reversal_of.is_some() {
        return Err(AppError::bad_field(
            "id",
            "a reversal cannot itself be reversed",
        ));
    }
    let lines = lines_of(work, &[original.id]).await?;
    let codes: HashMap<Uuid, String> = account::Entity::find()
        .filter(account::Column::Id.is_in(lines.iter().map(|l| l.account_id)))
        .all(work)
        .await?
        .into_iter()
        .map(|a| (a.id, a.code))
        .collect();
    let reversal = NewEntry {
        memo: memo
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Reversal of {}", original.id)),
        posting_date: Utc::now().date_naive(),
        lines: lines
            .iter()
            .map(|l| PostingLine {
                account_code: codes.get(&l.account_id).cloned().unwrap_or_default(),
                debit_minor: l.credit_minor,
                credit_minor: l.debit_minor,
                cost_center_id: l.cost_center_id,
                task_id: l.task_id,
            })
            .collect(),
    };
    reversal.validate()?;
    let posted = insert_entry(work, me.id, &reversal, Some(original.id), true, None).await?;
    Ok(posted.entry)
}

pub async fn lines_of<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[Uuid],
) -> AppResult<Vec<journal_line::Model>> {
    lines_of_where(db, entry_ids, sea_orm::Condition::all()).await
}

/// The lines of `entry_ids` that also meet `condition` (see `lines_shown_condition`).
pub async fn lines_of_where<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[Uuid],
    condition: sea_orm::Condition,
) -> AppResult<Vec<journal_line::Model>> {
    Ok(journal_line::Entity::find()
        .filter(journal_line::Column::EntryId.is_in(entry_ids.iter().copied()))
        .filter(condition)
        .order_by_asc(journal_line::Column::EntryId)
        .order_by_asc(journal_line::Column::LineNo)
        .all(db)
        .await?)
}

/// An entry is visible when one of its lines is (`NOT_FOUND` otherwise, as for a missing one);
/// its `lines` then show the visible lines only (`lines_shown_condition`).
pub async fn find_entry<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: EntryId,
) -> AppResult<journal_entry::Model> {
    let visible = visible_lines_condition(viewer.user()?)?;
    let with_visible_line = sea_orm::sea_query::Query::select()
        .column(journal_line::Column::EntryId)
        .from(journal_line::Entity)
        .cond_where(visible)
        .and_where(journal_line::Column::EntryId.eq(id.0))
        .to_owned();
    journal_entry::Entity::find_by_id(id.0)
        .filter(journal_entry::Column::Id.in_subquery(with_visible_line))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("journal entry"))
}

pub async fn create_budget(
    work: &Work,
    viewer: &Viewer,
    new: NewBudget,
) -> AppResult<budget::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    let NewBudget {
        cost_center,
        account_code,
        period,
        amount_minor,
        policy,
    } = new;
    let (account_code, period) = (account_code.as_str(), period.as_str());
    let (kind, start, end) = parse_period(period)?;
    check_budget_amount(amount_minor)?;
    if identity::department_path_of(work, cost_center)
        .await?
        .is_none()
    {
        return Err(AppError::bad_field("costCenterId", "no such cost centre"));
    }
    let account = accounts_by_code(work, vec![account_code.to_owned()])
        .await?
        .remove(account_code)
        .ok_or_else(|| {
            AppError::bad_field(
                "accountCode",
                format!("no account with code {account_code:?}"),
            )
        })?;
    if account.deactivated_at.is_some() {
        return Err(AppError::bad_field(
            "accountCode",
            format!("account {account_code:?} is deactivated"),
        ));
    }
    budget::ActiveModel {
        id: Set(Uuid::now_v7()),
        cost_center_id: Set(cost_center),
        account_id: Set(account.id),
        period_kind: Set(kind.as_str().to_owned()),
        period_start: Set(start),
        period_end: Set(end),
        amount_minor: Set(amount_minor),
        policy: Set(policy.as_str().to_owned()),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(
            e,
            "a budget for this cost centre, account and period exists",
        )
    })
}

/// Changes a budget's amount or policy. An amount below what is already spent is allowed: the
/// budget then shows as overrun, and a `STOP` budget takes no further spending.
pub async fn update_budget(
    work: &Work,
    viewer: &Viewer,
    id: BudgetId,
    changes: BudgetChanges,
) -> AppResult<budget::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    if let Some(amount) = changes.amount_minor {
        check_budget_amount(amount)?;
    }
    // Postings check a budget under this lock, and read it after taking it: an edit waits for
    // them and they for it; two edits take turns, each on the row the other left.
    lock_in_transaction(work, &format!("budget:{}", id.0)).await?;
    let current = budget::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("budget"))?;
    let mut row: budget::ActiveModel = current.clone().into();
    row.amount_minor = Set(changes.amount_minor.unwrap_or(current.amount_minor));
    row.policy = Set(changes
        .policy
        .map_or(current.policy, |p| p.as_str().to_owned()));
    Ok(row.update(work).await?)
}

fn check_budget_amount(amount_minor: i64) -> AppResult<()> {
    if (0..=super::model::MAX_AMOUNT).contains(&amount_minor) {
        Ok(())
    } else {
        Err(AppError::bad_field(
            "amount",
            "a budget is between zero and the largest amount",
        ))
    }
}
