//! Finance over GraphQL: accounts, journal entries and their reversal, budgets, the trial
//! balance. Money is the exact `Money` scalar in the base currency.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{account, journal_entry, journal_line};

use super::loaders::FinanceLoaders;
use super::model::{
    self, AccountType as Kind, BudgetPolicy as Policy, EntryId, NewEntry, PostingLine,
};
use super::service;
use crate::domains::identity::graphql::{department_by_id, Department};
use crate::domains::identity::model::DepartmentId;
use crate::domains::tasks::model::TaskId;
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::ids::optional_id;
use crate::graphql::scalars::{Date, Money};
use crate::platform::money::{currency_exponent, Decimal};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AccountType {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl From<AccountType> for Kind {
    fn from(t: AccountType) -> Self {
        match t {
            AccountType::Asset => Kind::Asset,
            AccountType::Liability => Kind::Liability,
            AccountType::Equity => Kind::Equity,
            AccountType::Revenue => Kind::Revenue,
            AccountType::Expense => Kind::Expense,
        }
    }
}

impl From<Kind> for AccountType {
    fn from(t: Kind) -> Self {
        match t {
            Kind::Asset => AccountType::Asset,
            Kind::Liability => AccountType::Liability,
            Kind::Equity => AccountType::Equity,
            Kind::Revenue => AccountType::Revenue,
            Kind::Expense => AccountType::Expense,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BudgetPolicy {
    Stop,
    Warn,
    Ignore,
}

impl From<BudgetPolicy> for Policy {
    fn from(p: BudgetPolicy) -> Self {
        match p {
            BudgetPolicy::Stop => Policy::Stop,
            BudgetPolicy::Warn => Policy::Warn,
            BudgetPolicy::Ignore => Policy::Ignore,
        }
    }
}

fn money(ctx: &Context<'_>, minor: i64) -> Result<Money> {
    let exponent = currency_exponent(&ctx.app()?.config.currency);
    Ok(Money(Decimal::from_minor(minor, exponent)))
}

fn to_minor(ctx: &Context<'_>, field: &str, value: Money) -> Result<i64, AppError> {
    let exponent = currency_exponent(&ctx.app()?.config.currency);
    value
        .0
        .to_minor(exponent)
        .map_err(|e| AppError::bad_field(field, format!("{e}")))
}

pub struct Account(pub account::Model);

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> AccountType {
        service::account_type(&self.0).into()
    }
}

pub struct JournalLine(journal_line::Model);

#[Object]
impl JournalLine {
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(ctx
            .loaders::<FinanceLoaders>()?
            .accounts
            .load_one(self.0.account_id)
            .await
            .map_err(loader_error)?
            .map(Account))
    }
    async fn debit(&self, ctx: &Context<'_>) -> Result<Money> {
        money(ctx, self.0.debit_minor)
    }
    async fn credit(&self, ctx: &Context<'_>) -> Result<Money> {
        money(ctx, self.0.credit_minor)
    }
    async fn cost_center(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        match self.0.cost_center_id {
            Some(id) => department_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn task_id(&self) -> Option<ID> {
        self.0.task_id.map(|t| ID(t.to_string()))
    }
}

pub struct JournalEntry {
    entry: journal_entry::Model,
}

impl From<journal_entry::Model> for JournalEntry {
    fn from(entry: journal_entry::Model) -> Self {
        Self { entry }
    }
}

#[Object]
impl JournalEntry {
    async fn id(&self) -> ID {
        ID(self.entry.id.to_string())
    }
    async fn memo(&self) -> &str {
        &self.entry.memo
    }
    async fn posting_date(&self) -> Date {
        Date(self.entry.posting_date)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.entry.created_at
    }
    /// The entry this one reverses, for a correction.
    async fn reversal_of(&self) -> Option<ID> {
        self.entry.reversal_of.map(|r| ID(r.to_string()))
    }
    /// Budget warnings raised when it was posted.
    async fn warnings(&self) -> Vec<String> {
        serde_json::from_value(self.entry.warnings.clone()).unwrap_or_default()
    }
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<JournalLine>> {
        Ok(ctx
            .loaders::<FinanceLoaders>()?
            .lines
            .load_one(self.entry.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(JournalLine)
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct TrialBalanceRow {
    account_code: String,
    account_name: String,
    debit: Money,
    credit: Money,
    /// Debits minus credits.
    balance: Money,
}

#[derive(SimpleObject)]
pub struct TrialBalance {
    rows: Vec<TrialBalanceRow>,
    total_debit: Money,
    total_credit: Money,
}

#[derive(SimpleObject)]
pub struct Budget {
    id: ID,
    account_code: String,
    cost_center: Option<Department>,
    period: String,
    policy: String,
    budgeted: Money,
    actual: Money,
    remaining: Money,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    code: String,
    name: String,
    #[graphql(name = "type")]
    kind: AccountType,
}

#[derive(InputObject)]
pub struct JournalLineInput {
    account_code: String,
    debit: Option<Money>,
    credit: Option<Money>,
    cost_center_id: Option<ID>,
    task_id: Option<ID>,
}

#[derive(InputObject)]
pub struct PostJournalEntryInput {
    #[graphql(default)]
    memo: String,
    posting_date: Date,
    lines: Vec<JournalLineInput>,
}

#[derive(InputObject)]
pub struct CreateBudgetInput {
    cost_center_id: ID,
    account_code: String,
    /// `2026-11` (a month), `2026-Q4` (a quarter) or `2026` (a year).
    period: String,
    amount: Money,
    policy: BudgetPolicy,
}

async fn budget_view(ctx: &Context<'_>, usage: service::Usage) -> Result<Budget> {
    let kind =
        model::PeriodKind::parse(&usage.budget.period_kind).unwrap_or(model::PeriodKind::Month);
    Ok(Budget {
        id: ID(usage.budget.id.to_string()),
        account_code: usage.account.code.clone(),
        cost_center: department_by_id(ctx, usage.budget.cost_center_id).await?,
        period: model::period_label(kind, usage.budget.period_start),
        policy: usage.budget.policy.clone(),
        budgeted: money(ctx, usage.budget.amount_minor)?,
        actual: money(ctx, usage.actual)?,
        remaining: money(ctx, usage.budget.amount_minor.saturating_sub(usage.actual))?,
    })
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PnlGroup {
    Department,
    Month,
}

#[derive(SimpleObject)]
pub struct PnlRow {
    department: Option<Department>,
    /// `YYYY-MM`, when grouped by month.
    month: Option<String>,
    revenue: Money,
    expense: Money,
    net: Money,
}

#[derive(SimpleObject)]
pub struct LedgerEntryLine {
    entry_id: ID,
    memo: String,
    posting_date: Date,
    debit: Money,
    credit: Money,
    /// The account's balance after this line, in its natural direction.
    balance: Money,
}

#[derive(SimpleObject)]
pub struct AccountLedger {
    account: Account,
    /// The balance brought forward from before `from`.
    opening_balance: Money,
    lines: Vec<LedgerEntryLine>,
    total_count: u64,
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Default)]
pub struct FinanceQuery;

#[Object]
impl FinanceQuery {
    /// Needs `finance.read`.
    async fn accounts(&self, ctx: &Context<'_>) -> Result<Vec<Account>> {
        let app = ctx.app()?;
        Ok(service::list_accounts(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(Account)
            .collect())
    }

    /// Needs `finance.read`.
    async fn journal_entry(&self, ctx: &Context<'_>, id: ID) -> Result<Option<JournalEntry>> {
        let app = ctx.app()?;
        match service::find_entry(&app.db.conn, ctx.viewer()?, EntryId::parse("id", &id)?).await {
            Ok(entry) => Ok(Some(JournalEntry { entry })),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Debits and credits per account up to `asOf` (inclusive). Needs `finance.read`.
    async fn trial_balance(&self, ctx: &Context<'_>, as_of: Option<Date>) -> Result<TrialBalance> {
        let app = ctx.app()?;
        let rows = service::trial_balance(&app.db.conn, ctx.viewer()?, as_of.map(|d| d.0)).await?;
        let total_debit: i64 = rows.iter().map(|r| r.debit).sum();
        let total_credit: i64 = rows.iter().map(|r| r.credit).sum();
        Ok(TrialBalance {
            rows: rows
                .into_iter()
                .map(|r| {
                    Ok(TrialBalanceRow {
                        account_code: r.account.code.clone(),
                        account_name: r.account.name.clone(),
                        debit: money(ctx, r.debit)?,
                        credit: money(ctx, r.credit)?,
                        balance: money(ctx, r.debit - r.credit)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            total_debit: money(ctx, total_debit)?,
            total_credit: money(ctx, total_credit)?,
        })
    }

    /// Revenue, expense and net over `[from, to]`, grouped by department and/or month.
    /// Needs `finance.read`.
    async fn profit_and_loss(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        group_by: Option<Vec<PnlGroup>>,
    ) -> Result<Vec<PnlRow>> {
        let app = ctx.app()?;
        let groups = group_by.unwrap_or_default();
        let cells = service::profit_and_loss(
            &app.db.conn,
            ctx.viewer()?,
            from.0,
            to.0,
            groups.contains(&PnlGroup::Department),
            groups.contains(&PnlGroup::Month),
        )
        .await?;
        let mut rows = Vec::with_capacity(cells.len());
        for cell in cells {
            rows.push(PnlRow {
                department: match cell.cost_center {
                    Some(id) => department_by_id(ctx, id).await?,
                    None => None,
                },
                month: cell.month,
                revenue: money(ctx, cell.revenue)?,
                expense: money(ctx, cell.expense)?,
                net: money(ctx, cell.revenue - cell.expense)?,
            });
        }
        Ok(rows)
    }

    /// One account's lines with the running balance. Needs `finance.read`.
    async fn account_ledger(
        &self,
        ctx: &Context<'_>,
        account_code: String,
        from: Option<Date>,
        to: Option<Date>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AccountLedger> {
        let app = ctx.app()?;
        let first = crate::graphql::pagination::page_size(first)?;
        let offset = crate::graphql::pagination::decode_cursor(after.as_deref())?;
        let page = service::account_ledger(
            &app.db.conn,
            ctx.viewer()?,
            account_code.trim(),
            from.map(|d| d.0),
            to.map(|d| d.0),
            offset,
            first,
        )
        .await?;
        let shown = page.lines.len() as u64;
        Ok(AccountLedger {
            opening_balance: money(ctx, page.opening)?,
            lines: page
                .lines
                .into_iter()
                .map(|l| {
                    Ok(LedgerEntryLine {
                        entry_id: ID(l.line.entry_id.to_string()),
                        memo: l.memo,
                        posting_date: Date(l.line.posting_date),
                        debit: money(ctx, l.line.debit_minor)?,
                        credit: money(ctx, l.line.credit_minor)?,
                        balance: money(ctx, l.balance)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            total_count: page.total,
            has_next_page: offset + shown < page.total,
            end_cursor: (shown > 0)
                .then(|| crate::graphql::pagination::encode_cursor(offset + shown - 1)),
            account: Account(page.account),
        })
    }

    /// Budgeted, actual and remaining per budget. Needs `finance.read`.
    async fn budget_usage(
        &self,
        ctx: &Context<'_>,
        cost_center_id: Option<ID>,
    ) -> Result<Vec<Budget>> {
        let app = ctx.app()?;
        let center =
            optional_id("costCenterId", cost_center_id.as_ref(), DepartmentId::parse)?.map(|d| d.0);
        let mut out = Vec::new();
        for usage in service::budget_usage(&app.db.conn, ctx.viewer()?, center).await? {
            out.push(budget_view(ctx, usage).await?);
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct FinanceMutation;

#[Object]
impl FinanceMutation {
    /// Needs `finance.post`.
    async fn create_account(
        &self,
        ctx: &Context<'_>,
        input: CreateAccountInput,
    ) -> Result<Account> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let name = crate::domains::identity::model::parse_name("name", &input.name, 200)?;
        let kind = input.kind.into();
        let account = app
            .write(async |work| {
                service::create_account(work, viewer, &input.code, &name, kind).await
            })
            .await?;
        Ok(Account(account))
    }

    /// A balanced entry (debits equal credits, every amount positive). Needs `finance.post`.
    async fn post_journal_entry(
        &self,
        ctx: &Context<'_>,
        input: PostJournalEntryInput,
    ) -> Result<JournalEntry> {
        let app = ctx.app()?;
        let mut lines = Vec::with_capacity(input.lines.len());
        for line in input.lines {
            lines.push(PostingLine {
                account_code: line.account_code.trim().to_owned(),
                debit_minor: line
                    .debit
                    .map(|m| to_minor(ctx, "debit", m))
                    .transpose()?
                    .unwrap_or(0),
                credit_minor: line
                    .credit
                    .map(|m| to_minor(ctx, "credit", m))
                    .transpose()?
                    .unwrap_or(0),
                cost_center_id: optional_id(
                    "costCenterId",
                    line.cost_center_id.as_ref(),
                    DepartmentId::parse,
                )?
                .map(|d| d.0),
                task_id: optional_id("taskId", line.task_id.as_ref(), TaskId::parse)?.map(|t| t.0),
            });
        }
        let entry = NewEntry {
            memo: input.memo.trim().to_owned(),
            posting_date: input.posting_date.0,
            lines,
        };
        let viewer = ctx.viewer()?;
        let posted = app
            .write(async |work| service::post_entry(work, viewer, entry).await)
            .await?;
        Ok(JournalEntry {
            entry: posted.entry,
        })
    }

    /// Posts the reversing entry of `id`. Needs `finance.post`.
    async fn reverse_journal_entry(
        &self,
        ctx: &Context<'_>,
        id: ID,
        memo: Option<String>,
    ) -> Result<JournalEntry> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = EntryId::parse("id", &id)?;
        let entry = app
            .write(async |work| service::reverse_entry(work, viewer, id, memo.as_deref()).await)
            .await?;
        Ok(JournalEntry { entry })
    }

    /// Needs `finance.post`.
    async fn create_budget(&self, ctx: &Context<'_>, input: CreateBudgetInput) -> Result<Budget> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let amount = to_minor(ctx, "amount", input.amount)?;
        let center = DepartmentId::parse("costCenterId", &input.cost_center_id)?.0;
        let policy = input.policy.into();
        let created = app
            .write(async |work| {
                service::create_budget(
                    work,
                    viewer,
                    center,
                    input.account_code.trim(),
                    &input.period,
                    amount,
                    policy,
                )
                .await
            })
            .await?;
        // After commit: the usage view needs `finance.read`, which creating a budget does not.
        let usage = service::budget_usage(&app.db.conn, viewer, Some(created.cost_center_id))
            .await?
            .into_iter()
            .find(|u| u.budget.id == created.id)
            .ok_or_else(|| AppError::not_found("budget"))?;
        budget_view(ctx, usage).await
    }
}
