//! Ledger rules over storage: accounts, posting and reversing entries under budgets, and reads.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use entities::{account, budget, journal_entry, journal_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::model::{parse_period, AccountType, BudgetPolicy, EntryId, NewEntry, PostingLine};
use crate::auth::{Permission, Viewer};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;

pub fn account_type(account: &account::Model) -> AccountType {
    AccountType::parse(&account.account_type).unwrap_or(AccountType::Asset)
}

pub async fn create_account<C: ConnectionTrait>(
    db: &C,
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
    }
    .insert(db)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, format!("an account with code {code:?} exists"))
    })
}

pub async fn list_accounts<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<account::Model>> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Code)
        .all(db)
        .await?)
}

async fn accounts_by_code<C: ConnectionTrait>(
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
async fn natural_total<C: ConnectionTrait>(
    db: &C,
    cost_center: Uuid,
    account: &account::Model,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<i64> {
    let sums: Option<(Option<i64>, Option<i64>)> = journal_line::Entity::find()
        .select_only()
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(debit_minor), 0) AS BIGINT)"),
            "debits",
        )
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(credit_minor), 0) AS BIGINT)"),
            "credits",
        )
        .filter(journal_line::Column::CostCenterId.eq(cost_center))
        .filter(journal_line::Column::AccountId.eq(account.id))
        .filter(journal_line::Column::PostingDate.gte(from))
        .filter(journal_line::Column::PostingDate.lt(to))
        .into_tuple()
        .one(db)
        .await?;
    let (debits, credits) = sums.map_or((0, 0), |(d, c)| (d.unwrap_or(0), c.unwrap_or(0)));
    Ok(account_type(account).natural(debits, credits))
}

/// Posts for a business transaction inside its transaction: the type was configured by an
/// administrator, so no `finance.post` check; budgets apply as to any posting.
pub async fn post_for_transaction<C: ConnectionTrait>(
    db: &C,
    posted_by: Uuid,
    entry: &NewEntry,
    transaction_id: Uuid,
) -> AppResult<Posted> {
    entry.validate()?;
    insert_entry(db, posted_by, entry, None, true, Some(transaction_id)).await
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
pub async fn ensure_account<C: ConnectionTrait>(
    db: &C,
    code: &str,
    name: &str,
    kind: AccountType,
) -> AppResult<()> {
    if accounts_by_code(db, vec![code.to_owned()])
        .await?
        .is_empty()
    {
        account::ActiveModel {
            id: Set(Uuid::now_v7()),
            code: Set(code.to_owned()),
            name: Set(name.to_owned()),
            account_type: Set(kind.as_str().to_owned()),
            created_at: Set(Utc::now()),
        }
        .insert(db)
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
pub async fn post_entry<C>(db: &C, viewer: &Viewer, entry: NewEntry) -> AppResult<Posted>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    me.require_global(Permission::FinancePost)?;
    entry.validate()?;
    let txn = db.begin().await?;
    let posted = insert_entry(&txn, me.id, &entry, None, true, None).await?;
    txn.commit().await?;
    Ok(posted)
}

async fn insert_entry<C: ConnectionTrait>(
    db: &C,
    posted_by: Uuid,
    entry: &NewEntry,
    reversal_of: Option<Uuid>,
    check_budgets: bool,
    transaction_id: Option<Uuid>,
) -> AppResult<Posted> {
    let accounts = accounts_by_code(
        db,
        entry.lines.iter().map(|l| l.account_code.clone()).collect(),
    )
    .await?;
    for line in &entry.lines {
        if !accounts.contains_key(&line.account_code) {
            return Err(AppError::bad_field(
                "lines",
                format!("no account with code {:?}", line.account_code),
            ));
        }
        if let Some(center) = line.cost_center_id {
            if identity::department_path_of(db, center).await?.is_none() {
                return Err(AppError::bad_field("lines", "no such cost centre"));
            }
        }
        if let Some(task) = line.task_id {
            if crate::domains::tasks::service::tasks_by_id(db, &[task])
                .await?
                .is_empty()
            {
                return Err(AppError::bad_field("lines", "no such task"));
            }
        }
    }
    let mut warnings = Vec::new();
    if check_budgets {
        warnings = check_budgets_for(db, entry, &accounts).await?;
    }
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
    .insert(db)
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
    journal_line::Entity::insert_many(lines).exec(db).await?;
    Ok(Posted {
        entry: row,
        warnings,
    })
}

async fn check_budgets_for<C: ConnectionTrait>(
    db: &C,
    entry: &NewEntry,
    accounts: &HashMap<String, account::Model>,
) -> AppResult<Vec<String>> {
    let mut deltas: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for line in &entry.lines {
        let (Some(center), Some(account)) = (line.cost_center_id, accounts.get(&line.account_code))
        else {
            continue;
        };
        *deltas.entry((center, account.id)).or_default() +=
            account_type(account).natural(line.debit_minor, line.credit_minor);
    }
    let mut keys: Vec<(Uuid, Uuid)> = deltas.keys().copied().collect();
    // A fixed lock order, so two entries touching the same budgets cannot deadlock.
    keys.sort();
    let mut warnings = Vec::new();
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
        for found in covering {
            let policy = BudgetPolicy::parse(&found.policy).unwrap_or(BudgetPolicy::Ignore);
            if policy == BudgetPolicy::Ignore {
                continue;
            }
            lock_in_transaction(db, &format!("budget:{}", found.id)).await?;
            let used =
                natural_total(db, center, account, found.period_start, found.period_end).await?;
            if used.saturating_add(delta) > found.amount_minor {
                match policy {
                    BudgetPolicy::Stop => {
                        return Err(AppError::Conflict(format!(
                            "the budget for account {} is exhausted: this posting would exceed it",
                            account.code
                        )))
                    }
                    BudgetPolicy::Warn => {
                        warnings.push(format!("exceeds the budget for account {}", account.code))
                    }
                    BudgetPolicy::Ignore => {}
                }
            }
        }
    }
    Ok(warnings)
}

/// A correction: an entry with every line's sides swapped, referencing the original. An entry
/// is reversed once, and a reversal is never reversed.
pub async fn reverse_entry<C>(
    db: &C,
    viewer: &Viewer,
    id: EntryId,
    memo: Option<&str>,
) -> AppResult<journal_entry::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    me.require_global(Permission::FinancePost)?;
    let txn = db.begin().await?;
    let original = journal_entry::Entity::find_by_id(id.0)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("journal entry"))?;
    if original.reversal_of.is_some() {
        return Err(AppError::bad_field(
            "id",
            "a reversal cannot itself be reversed",
        ));
    }
    let lines = lines_of(&txn, &[original.id]).await?;
    let codes: HashMap<Uuid, String> = account::Entity::find()
        .filter(account::Column::Id.is_in(lines.iter().map(|l| l.account_id)))
        .all(&txn)
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
    let posted = insert_entry(&txn, me.id, &reversal, Some(original.id), true, None).await?;
    txn.commit().await?;
    Ok(posted.entry)
}

pub async fn lines_of<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[Uuid],
) -> AppResult<Vec<journal_line::Model>> {
    Ok(journal_line::Entity::find()
        .filter(journal_line::Column::EntryId.is_in(entry_ids.iter().copied()))
        .order_by_asc(journal_line::Column::EntryId)
        .order_by_asc(journal_line::Column::LineNo)
        .all(db)
        .await?)
}

pub async fn find_entry<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: EntryId,
) -> AppResult<journal_entry::Model> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    journal_entry::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("journal entry"))
}

pub struct BalanceRow {
    pub account: account::Model,
    pub debit: i64,
    pub credit: i64,
}

/// Debits and credits per account up to and including `as_of` (everything when absent).
pub async fn trial_balance<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    as_of: Option<NaiveDate>,
) -> AppResult<Vec<BalanceRow>> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    let mut query = journal_line::Entity::find()
        .select_only()
        .column(journal_line::Column::AccountId)
        .expr_as(Expr::cust("CAST(SUM(debit_minor) AS BIGINT)"), "debits")
        .expr_as(Expr::cust("CAST(SUM(credit_minor) AS BIGINT)"), "credits")
        .group_by(journal_line::Column::AccountId);
    if let Some(as_of) = as_of {
        query = query.filter(journal_line::Column::PostingDate.lte(as_of));
    }
    let sums: Vec<(Uuid, i64, i64)> = query.into_tuple().all(db).await?;
    let accounts: HashMap<Uuid, account::Model> = account::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut rows: Vec<BalanceRow> = sums
        .into_iter()
        .filter_map(|(id, debit, credit)| {
            Some(BalanceRow {
                account: accounts.get(&id)?.clone(),
                debit,
                credit,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.account.code.cmp(&b.account.code));
    Ok(rows)
}

pub async fn create_budget<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    cost_center: Uuid,
    account_code: &str,
    period: &str,
    amount_minor: i64,
    policy: BudgetPolicy,
) -> AppResult<budget::Model> {
    viewer.user()?.require_global(Permission::FinancePost)?;
    let (kind, start, end) = parse_period(period)?;
    if !(0..=super::model::MAX_AMOUNT).contains(&amount_minor) {
        return Err(AppError::bad_field(
            "amount",
            "a budget is between zero and the largest amount",
        ));
    }
    if identity::department_path_of(db, cost_center)
        .await?
        .is_none()
    {
        return Err(AppError::bad_field("costCenterId", "no such cost centre"));
    }
    let account = accounts_by_code(db, vec![account_code.to_owned()])
        .await?
        .remove(account_code)
        .ok_or_else(|| {
            AppError::bad_field(
                "accountCode",
                format!("no account with code {account_code:?}"),
            )
        })?;
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
    .insert(db)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(
            e,
            "a budget for this cost centre, account and period exists",
        )
    })
}

pub struct Usage {
    pub budget: budget::Model,
    pub account: account::Model,
    pub actual: i64,
}

pub async fn budget_usage<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    cost_center: Option<Uuid>,
) -> AppResult<Vec<Usage>> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    let mut query = budget::Entity::find().order_by_asc(budget::Column::PeriodStart);
    if let Some(center) = cost_center {
        query = query.filter(budget::Column::CostCenterId.eq(center));
    }
    let mut usage = Vec::new();
    for found in query.all(db).await? {
        let Some(account) = account::Entity::find_by_id(found.account_id)
            .one(db)
            .await?
        else {
            continue;
        };
        let actual = natural_total(
            db,
            found.cost_center_id,
            &account,
            found.period_start,
            found.period_end,
        )
        .await?;
        usage.push(Usage {
            budget: found,
            account,
            actual,
        });
    }
    Ok(usage)
}

pub struct PnlCell {
    pub cost_center: Option<Uuid>,
    pub month: Option<String>,
    pub revenue: i64,
    pub expense: i64,
}

/// Revenue and expense over `[from, to]` (inclusive), grouped by department and/or month.
/// Aggregated in SQL per (cost centre, month, account type) and folded to the asked grouping.
pub async fn profit_and_loss<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    from: NaiveDate,
    to: NaiveDate,
    by_department: bool,
    by_month: bool,
) -> AppResult<Vec<PnlCell>> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    if to < from {
        return Err(AppError::bad_field(
            "to",
            "the period ends before it starts",
        ));
    }
    let month = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "to_char(journal_lines.posting_date, 'YYYY-MM')",
        _ => "strftime('%Y-%m', journal_lines.posting_date)",
    };
    let rows: Vec<(Option<Uuid>, String, String, i64, i64)> = journal_line::Entity::find()
        .select_only()
        .column(journal_line::Column::CostCenterId)
        .expr_as(Expr::cust(month), "month")
        .column_as(account::Column::AccountType, "account_type")
        .expr_as(
            Expr::cust("CAST(SUM(journal_lines.debit_minor) AS BIGINT)"),
            "debits",
        )
        .expr_as(
            Expr::cust("CAST(SUM(journal_lines.credit_minor) AS BIGINT)"),
            "credits",
        )
        .join(
            sea_orm::JoinType::InnerJoin,
            journal_line::Entity::belongs_to(account::Entity)
                .from(journal_line::Column::AccountId)
                .to(account::Column::Id)
                .into(),
        )
        .filter(
            account::Column::AccountType
                .is_in([AccountType::Revenue.as_str(), AccountType::Expense.as_str()]),
        )
        .filter(journal_line::Column::PostingDate.gte(from))
        .filter(journal_line::Column::PostingDate.lte(to))
        .group_by(journal_line::Column::CostCenterId)
        .group_by(Expr::cust(month))
        .group_by(account::Column::AccountType)
        .into_tuple()
        .all(db)
        .await?;
    let mut cells: std::collections::BTreeMap<(Option<Uuid>, Option<String>), PnlCell> =
        Default::default();
    for (center, month, kind, debits, credits) in rows {
        let key = (
            center.filter(|_| by_department),
            Some(month).filter(|_| by_month),
        );
        let cell = cells.entry(key.clone()).or_insert(PnlCell {
            cost_center: key.0,
            month: key.1,
            revenue: 0,
            expense: 0,
        });
        match AccountType::parse(&kind) {
            Some(AccountType::Revenue) => cell.revenue += credits - debits,
            Some(AccountType::Expense) => cell.expense += debits - credits,
            _ => {}
        }
    }
    Ok(cells.into_values().collect())
}

pub struct LedgerLine {
    pub line: journal_line::Model,
    pub memo: String,
    /// The account's balance after this line, in its natural direction.
    pub balance: i64,
}

pub struct LedgerPage {
    pub account: account::Model,
    pub opening: i64,
    pub lines: Vec<LedgerLine>,
    pub total: u64,
}

/// One account's lines over `[from, to]` with the running balance after each, computed in SQL
/// (`SUM(...) OVER`) on top of the balance brought forward from before `from`.
pub async fn account_ledger<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    account_code: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    offset: u64,
    first: u64,
) -> AppResult<LedgerPage> {
    viewer.user()?.require_global(Permission::FinanceRead)?;
    let account = accounts_by_code(db, vec![account_code.to_owned()])
        .await?
        .remove(account_code)
        .ok_or_else(|| {
            AppError::bad_field(
                "accountCode",
                format!("no account with code {account_code:?}"),
            )
        })?;
    let kind = account_type(&account);
    let opening = match from {
        Some(from) => {
            let sums: Option<(i64, i64)> = journal_line::Entity::find()
                .select_only()
                .expr_as(
                    Expr::cust("CAST(COALESCE(SUM(debit_minor), 0) AS BIGINT)"),
                    "debits",
                )
                .expr_as(
                    Expr::cust("CAST(COALESCE(SUM(credit_minor), 0) AS BIGINT)"),
                    "credits",
                )
                .filter(journal_line::Column::AccountId.eq(account.id))
                .filter(journal_line::Column::PostingDate.lt(from))
                .into_tuple()
                .one(db)
                .await?;
            sums.map_or(0, |(d, c)| kind.natural(d, c))
        }
        None => 0,
    };
    let mut inner =
        journal_line::Entity::find().filter(journal_line::Column::AccountId.eq(account.id));
    if let Some(from) = from {
        inner = inner.filter(journal_line::Column::PostingDate.gte(from));
    }
    if let Some(to) = to {
        inner = inner.filter(journal_line::Column::PostingDate.lte(to));
    }
    let direction = if kind.grows_by_debit() {
        "debit_minor - credit_minor"
    } else {
        "credit_minor - debit_minor"
    };
    let mut inner = sea_orm::QueryTrait::into_query(inner);
    inner
        .expr_as(
            Expr::cust(format!(
                "CAST(SUM({direction}) OVER (ORDER BY posting_date, entry_id, line_no ROWS UNBOUNDED PRECEDING) AS BIGINT)"
            )),
            sea_orm::sea_query::Alias::new("running"),
        )
        .expr_as(
            Expr::cust("ROW_NUMBER() OVER (ORDER BY posting_date, entry_id, line_no)"),
            sea_orm::sea_query::Alias::new("row_number"),
        )
        .expr_as(Expr::cust("COUNT(*) OVER ()"), sea_orm::sea_query::Alias::new("total_count"));
    let outer = sea_orm::sea_query::Query::select()
        .column(sea_orm::sea_query::Asterisk)
        .from_subquery(inner, sea_orm::sea_query::Alias::new("numbered"))
        .and_where(Expr::col(sea_orm::sea_query::Alias::new("row_number")).gt(offset as i64))
        .and_where(
            Expr::col(sea_orm::sea_query::Alias::new("row_number")).lte((offset + first) as i64),
        )
        .order_by(
            sea_orm::sea_query::Alias::new("row_number"),
            sea_orm::sea_query::Order::Asc,
        )
        .to_owned();
    let statement = db.get_database_backend().build(&outer);
    let rows = db.query_all(statement).await?;
    let mut total = 0;
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        use sea_orm::FromQueryResult;
        let line = journal_line::Model::from_query_result(row, "")?;
        let running: i64 = row.try_get("", "running")?;
        total = row.try_get::<i64>("", "total_count")? as u64;
        lines.push((line, running));
    }
    if rows.is_empty() {
        use sea_orm::PaginatorTrait;
        let mut count =
            journal_line::Entity::find().filter(journal_line::Column::AccountId.eq(account.id));
        if let Some(from) = from {
            count = count.filter(journal_line::Column::PostingDate.gte(from));
        }
        if let Some(to) = to {
            count = count.filter(journal_line::Column::PostingDate.lte(to));
        }
        total = count.count(db).await?;
    }
    let memos: HashMap<Uuid, String> = journal_entry::Entity::find()
        .filter(journal_entry::Column::Id.is_in(lines.iter().map(|(l, _)| l.entry_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.memo))
        .collect();
    Ok(LedgerPage {
        account,
        opening,
        total,
        lines: lines
            .into_iter()
            .map(|(line, running)| LedgerLine {
                memo: memos.get(&line.entry_id).cloned().unwrap_or_default(),
                balance: opening + running,
                line,
            })
            .collect(),
    })
}
