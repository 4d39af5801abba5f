//! Reading the ledger: the trial balance, profit and loss, budget use, the account ledger.

use std::collections::HashMap;

use chrono::NaiveDate;
use entities::{account, budget, journal_entry, journal_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::domains::finance::model::AccountType;
use crate::error::{AppError, AppResult};

use super::*;

pub struct BalanceRow {
    pub account: account::Model,
    pub debit: i128,
    pub credit: i128,
}

/// Debits and credits per account up to and including `as_of` (everything when absent).
pub async fn trial_balance<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    as_of: Option<NaiveDate>,
) -> AppResult<Vec<BalanceRow>> {
    let visible = visible_lines_condition(viewer.user()?)?;
    let [debits_high, debits_low] = wide_sum("debit_minor", "");
    let [credits_high, credits_low] = wide_sum("credit_minor", "");
    let mut query = journal_line::Entity::find()
        .select_only()
        .column(journal_line::Column::AccountId)
        .expr_as(Expr::cust(debits_high), "debits_high")
        .expr_as(Expr::cust(debits_low), "debits_low")
        .expr_as(Expr::cust(credits_high), "credits_high")
        .expr_as(Expr::cust(credits_low), "credits_low")
        .filter(visible)
        .group_by(journal_line::Column::AccountId);
    if let Some(as_of) = as_of {
        query = query.filter(journal_line::Column::PostingDate.lte(as_of));
    }
    let sums: Vec<(Uuid, i64, i64, i64, i64)> = query.into_tuple().all(db).await?;
    let accounts: HashMap<Uuid, account::Model> = account::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut rows: Vec<BalanceRow> = sums
        .into_iter()
        .filter_map(|(id, dh, dl, ch, cl)| {
            Some(BalanceRow {
                account: accounts.get(&id)?.clone(),
                debit: join(dh, dl),
                credit: join(ch, cl),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.account.code.cmp(&b.account.code));
    Ok(rows)
}

pub struct Usage {
    pub budget: budget::Model,
    pub account: account::Model,
    pub actual: i128,
}

pub async fn budget_usage<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    cost_center: Option<Uuid>,
) -> AppResult<Vec<Usage>> {
    // A budget belongs to its cost centre: visible when that centre is, and then all of its
    // lines are visible too, so `actual` is the same for every reader who sees the budget.
    let scope = ledger_scope(viewer.user()?)?;
    let mut query = budget::Entity::find()
        .filter(within(&scope, budget::Column::CostCenterId))
        .order_by_asc(budget::Column::PeriodStart)
        .order_by_asc(budget::Column::Id);
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

/// The usage of one budget (a read: it needs `finance.read`).
pub async fn usage_of<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    budget: &budget::Model,
) -> AppResult<Usage> {
    budget_usage(db, viewer, Some(budget.cost_center_id))
        .await?
        .into_iter()
        .find(|u| u.budget.id == budget.id)
        .ok_or_else(|| AppError::not_found("budget"))
}

pub struct PnlCell {
    pub cost_center: Option<Uuid>,
    pub month: Option<String>,
    pub revenue: i128,
    pub expense: i128,
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
    let visible = visible_lines_condition(viewer.user()?)?;
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
    let [debits_high, debits_low] = wide_sum("journal_lines.debit_minor", "");
    let [credits_high, credits_low] = wide_sum("journal_lines.credit_minor", "");
    type Row = (Option<Uuid>, String, String, i64, i64, i64, i64);
    let rows: Vec<Row> = journal_line::Entity::find()
        .select_only()
        .column(journal_line::Column::CostCenterId)
        .expr_as(Expr::cust(month), "month")
        .column_as(account::Column::AccountType, "account_type")
        .expr_as(Expr::cust(debits_high), "debits_high")
        .expr_as(Expr::cust(debits_low), "debits_low")
        .expr_as(Expr::cust(credits_high), "credits_high")
        .expr_as(Expr::cust(credits_low), "credits_low")
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
        .filter(visible)
        .group_by(journal_line::Column::CostCenterId)
        .group_by(Expr::cust(month))
        .group_by(account::Column::AccountType)
        .into_tuple()
        .all(db)
        .await?;
    let mut cells: std::collections::BTreeMap<(Option<Uuid>, Option<String>), PnlCell> =
        Default::default();
    for (center, month, kind, dh, dl, ch, cl) in rows {
        let (debits, credits) = (join(dh, dl), join(ch, cl));
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
    pub balance: i128,
}

pub struct LedgerPage {
    pub account: account::Model,
    pub opening: i128,
    pub lines: Vec<LedgerLine>,
    pub total: u64,
}

/// The account's balance in its natural direction brought forward from before `from`.
async fn ledger_opening<C: ConnectionTrait>(
    db: &C,
    account: &account::Model,
    kind: AccountType,
    from: Option<NaiveDate>,
    visible: &Condition,
) -> AppResult<i128> {
    let Some(from) = from else {
        return Ok(0);
    };
    let [debits_high, debits_low] = wide_sum("debit_minor", "");
    let [credits_high, credits_low] = wide_sum("credit_minor", "");
    let sums: Option<(i64, i64, i64, i64)> = journal_line::Entity::find()
        .select_only()
        .expr_as(Expr::cust(debits_high), "debits_high")
        .expr_as(Expr::cust(debits_low), "debits_low")
        .expr_as(Expr::cust(credits_high), "credits_high")
        .expr_as(Expr::cust(credits_low), "credits_low")
        .filter(journal_line::Column::AccountId.eq(account.id))
        .filter(journal_line::Column::PostingDate.lt(from))
        .filter(visible.clone())
        .into_tuple()
        .one(db)
        .await?;
    Ok(sums.map_or(0, |(dh, dl, ch, cl)| {
        kind.natural(join(dh, dl), join(ch, cl))
    }))
}

/// The account's visible lines over `[from, to]`, unordered.
fn ledger_lines(
    account: &account::Model,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    visible: &Condition,
) -> sea_orm::Select<journal_line::Entity> {
    let mut lines = journal_line::Entity::find()
        .filter(journal_line::Column::AccountId.eq(account.id))
        .filter(visible.clone());
    if let Some(from) = from {
        lines = lines.filter(journal_line::Column::PostingDate.gte(from));
    }
    if let Some(to) = to {
        lines = lines.filter(journal_line::Column::PostingDate.lte(to));
    }
    lines
}

/// An account's ledger to be read line by line: the lines in posting order, and the balance
/// brought forward, to which each line's natural movement is added in turn.
pub struct LedgerLines {
    pub account: account::Model,
    pub kind: AccountType,
    pub opening: i128,
    pub lines: sea_orm::Select<journal_line::Entity>,
}

/// The lines `account_ledger` pages through, whole and in its order, for a reader that streams
/// them (the CSV export) instead of paging.
pub async fn ledger_lines_query<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    account_code: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<LedgerLines> {
    let visible = visible_lines_condition(viewer.user()?)?;
    let account = account_by_code(db, account_code).await?;
    let kind = account_type(&account)?;
    let opening = ledger_opening(db, &account, kind, from, &visible).await?;
    let lines = ledger_lines(&account, from, to, &visible)
        .order_by_asc(journal_line::Column::PostingDate)
        .order_by_asc(journal_line::Column::EntryId)
        .order_by_asc(journal_line::Column::LineNo);
    Ok(LedgerLines {
        account,
        kind,
        opening,
        lines,
    })
}

async fn account_by_code<C: ConnectionTrait>(
    db: &C,
    account_code: &str,
) -> AppResult<account::Model> {
    accounts_by_code(db, vec![account_code.to_owned()])
        .await?
        .remove(account_code)
        .ok_or_else(|| {
            AppError::bad_field(
                "accountCode",
                format!("no account with code {account_code:?}"),
            )
        })
}

/// Accounts by id, for naming the accounts of a batch of lines in one query.
pub async fn accounts_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect())
}

/// The memo of each entry, for a batch of lines in one query.
pub async fn entry_memos<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, String>> {
    Ok(journal_entry::Entity::find()
        .filter(journal_entry::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.memo))
        .collect())
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
    // The opening balance, the running balance and the count are all over visible lines: a
    // scoped reader's ledger is the ledger of their cost centres, not a window on the whole.
    let visible = visible_lines_condition(viewer.user()?)?;
    let account = account_by_code(db, account_code).await?;
    let kind = account_type(&account)?;
    let opening = ledger_opening(db, &account, kind, from, &visible).await?;
    let inner = ledger_lines(&account, from, to, &visible);
    let direction = if kind.grows_by_debit() {
        "debit_minor - credit_minor"
    } else {
        "credit_minor - debit_minor"
    };
    let mut inner = sea_orm::QueryTrait::into_query(inner);
    let [running_high, running_low] = wide_sum(
        direction,
        " OVER (ORDER BY posting_date, entry_id, line_no ROWS UNBOUNDED PRECEDING)",
    );
    inner
        .expr_as(
            Expr::cust(running_high),
            sea_orm::sea_query::Alias::new("running_high"),
        )
        .expr_as(
            Expr::cust(running_low),
            sea_orm::sea_query::Alias::new("running_low"),
        )
        .expr_as(
            Expr::cust("ROW_NUMBER() OVER (ORDER BY posting_date, entry_id, line_no)"),
            sea_orm::sea_query::Alias::new("row_number"),
        )
        .expr_as(
            Expr::cust("COUNT(*) OVER ()"),
            sea_orm::sea_query::Alias::new("total_count"),
        );
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
        let running = join(
            row.try_get("", "running_high")?,
            row.try_get("", "running_low")?,
        );
        total = row.try_get::<i64>("", "total_count")? as u64;
        lines.push((line, running));
    }
    if rows.is_empty() {
        use sea_orm::PaginatorTrait;
        total = ledger_lines(&account, from, to, &visible).count(db).await?;
    }
    let entries: Vec<Uuid> = lines.iter().map(|(l, _)| l.entry_id).collect();
    let memos = entry_memos(db, &entries).await?;
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
