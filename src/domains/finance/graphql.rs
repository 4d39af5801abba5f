//! Finance over GraphQL: accounts, journal entries and their reversal, budgets, the trial
//! balance. Money is the exact `Money` scalar in the base currency.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{account, journal_entry, journal_line};
use uuid::Uuid;

use super::loaders::FinanceLoaders;
use super::model::{
    self, AccountChanges, AccountId, BudgetChanges, BudgetId, EntryId, NewBudget, NewEntry,
    PostingLine,
};
use super::service;
use crate::domains::identity::graphql::{department_by_id, Department};
use crate::domains::identity::model::DepartmentId;
use crate::domains::tasks::model::TaskId;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{loader_error, Caller, ContextExt};
use crate::graphql::found;
use crate::graphql::ids::optional_id;
use crate::graphql::pagination::{connection, decode_cursor, encode_cursor, page_size, TotalCount};
use crate::graphql::scalars::{Date, Money};
use crate::platform::money::{currency_exponent, Decimal};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::finance::model::AccountType")]
pub enum AccountType {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

/// What posted an entry, from facts recorded with it (see `JournalSource::derive`).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::finance::model::JournalSource")]
pub enum JournalSource {
    /// Posted with `postJournalEntry` (its lines may still name a task).
    Manual,
    /// A `reverseJournalEntry` correction.
    Reversal,
    /// Posted by a business transaction whose lines name no task.
    Transaction,
    /// Posted by a business transaction whose lines name a task: a task's cash output.
    Task,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::finance::model::BudgetPolicy")]
pub enum BudgetPolicy {
    Stop,
    Warn,
    Ignore,
}

/// Minor units of the base currency: every amount in and out of this API is in it.
#[derive(Clone, Copy)]
struct Units(u32);

impl Units {
    fn of(caller: &Caller<'_>) -> Self {
        Self(currency_exponent(&caller.app.config.currency))
    }

    fn money(self, minor: impl Into<i128>) -> Money {
        Money(Decimal::from_wide_minor(minor.into(), self.0))
    }

    fn minor(self, field: &str, value: Money) -> AppResult<i64> {
        value
            .0
            .to_minor(self.0)
            .map_err(|e| AppError::bad_field(field, format!("{e}")))
    }
}

#[derive(SimpleObject)]
pub struct Account {
    id: ID,
    code: String,
    name: String,
    #[graphql(name = "type")]
    kind: AccountType,
    /// False once deactivated: no new postings or budgets, history untouched.
    active: bool,
}

impl TryFrom<account::Model> for Account {
    type Error = AppError;

    fn try_from(row: account::Model) -> AppResult<Self> {
        Ok(Self {
            id: ID(row.id.to_string()),
            kind: service::account_type(&row)?.into(),
            active: row.deactivated_at.is_none(),
            code: row.code,
            name: row.name,
        })
    }
}

/// Hand-written: all but `taskId` load or compute, and a derived object would list that
/// plain field first, reordering the type in the schema.
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
            .map(Account::try_from)
            .transpose()?)
    }
    async fn debit(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Units::of(&ctx.caller()?).money(self.0.debit_minor))
    }
    async fn credit(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Units::of(&ctx.caller()?).money(self.0.credit_minor))
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

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct JournalEntry {
    #[graphql(skip)]
    entry_id: Uuid,
    #[graphql(skip)]
    reversal: bool,
    id: ID,
    memo: String,
    posting_date: Date,
    created_at: DateTime<Utc>,
    /// The entry this one reverses, for a correction.
    reversal_of: Option<ID>,
    /// Budget warnings raised when it was posted.
    warnings: Vec<String>,
}

impl From<journal_entry::Model> for JournalEntry {
    fn from(entry: journal_entry::Model) -> Self {
        Self {
            entry_id: entry.id,
            reversal: entry.reversal_of.is_some(),
            id: ID(entry.id.to_string()),
            memo: entry.memo,
            posting_date: Date(entry.posting_date),
            created_at: entry.created_at,
            reversal_of: entry.reversal_of.map(|r| ID(r.to_string())),
            warnings: serde_json::from_value(entry.warnings).unwrap_or_default(),
        }
    }
}

#[ComplexObject]
impl JournalEntry {
    async fn source(&self, ctx: &Context<'_>) -> Result<JournalSource> {
        let (from_transaction, names_task) = ctx
            .loaders::<FinanceLoaders>()?
            .posting_facts
            .load_one(self.entry_id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        Ok(model::JournalSource::derive(self.reversal, from_transaction, names_task).into())
    }

    /// The lines the viewer may read: all for a global `finance.read`, else those whose cost
    /// centre is in the viewer's subtrees (the entry's other lines are left out, so a scoped
    /// reader's view of an entry need not balance).
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<JournalLine>> {
        Ok(ctx
            .loaders::<FinanceLoaders>()?
            .lines
            .load_one(self.entry_id)
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

impl TrialBalance {
    fn new(units: Units, rows: Vec<service::BalanceRow>) -> Self {
        let total_debit: i128 = rows.iter().map(|r| r.debit).sum();
        let total_credit: i128 = rows.iter().map(|r| r.credit).sum();
        Self {
            rows: rows
                .into_iter()
                .map(|r| TrialBalanceRow {
                    debit: units.money(r.debit),
                    credit: units.money(r.credit),
                    balance: units.money(r.debit - r.credit),
                    account_code: r.account.code,
                    account_name: r.account.name,
                })
                .collect(),
            total_debit: units.money(total_debit),
            total_credit: units.money(total_credit),
        }
    }
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

impl Budget {
    async fn new(ctx: &Context<'_>, units: Units, usage: service::Usage) -> Result<Self> {
        let kind =
            model::PeriodKind::parse(&usage.budget.period_kind).unwrap_or(model::PeriodKind::Month);
        Ok(Self {
            id: ID(usage.budget.id.to_string()),
            cost_center: department_by_id(ctx, usage.budget.cost_center_id).await?,
            period: model::period_label(kind, usage.budget.period_start),
            budgeted: units.money(usage.budget.amount_minor),
            actual: units.money(usage.actual),
            remaining: units.money(i128::from(usage.budget.amount_minor) - usage.actual),
            policy: usage.budget.policy,
            account_code: usage.account.code,
        })
    }

    async fn all(ctx: &Context<'_>, units: Units, usage: Vec<service::Usage>) -> Result<Vec<Self>> {
        let mut out = Vec::with_capacity(usage.len());
        for one in usage {
            out.push(Self::new(ctx, units, one).await?);
        }
        Ok(out)
    }
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    code: String,
    name: String,
    #[graphql(name = "type")]
    kind: AccountType,
}

/// An account as `createAccount` asked for it (the code is checked by the service).
struct NewAccount {
    code: String,
    name: String,
    kind: model::AccountType,
}

impl TryFrom<CreateAccountInput> for NewAccount {
    type Error = AppError;

    fn try_from(input: CreateAccountInput) -> AppResult<Self> {
        Ok(Self {
            name: crate::domains::identity::model::parse_name("name", &input.name, 200)?,
            code: input.code,
            kind: input.kind.into(),
        })
    }
}

/// What is left out is kept. The code is fixed; the type changes only while nothing is posted.
#[derive(InputObject)]
pub struct UpdateAccountInput {
    name: Option<String>,
    #[graphql(name = "type")]
    kind: Option<AccountType>,
}

impl TryFrom<UpdateAccountInput> for AccountChanges {
    type Error = AppError;

    fn try_from(input: UpdateAccountInput) -> AppResult<Self> {
        Ok(Self {
            name: input
                .name
                .map(|n| crate::domains::identity::model::parse_name("name", &n, 200))
                .transpose()?,
            kind: input.kind.map(Into::into),
        })
    }
}

#[derive(InputObject)]
pub struct JournalLineInput {
    account_code: String,
    debit: Option<Money>,
    credit: Option<Money>,
    cost_center_id: Option<ID>,
    task_id: Option<ID>,
}

impl JournalLineInput {
    fn parse(self, units: Units) -> AppResult<PostingLine> {
        let amount = |field: &str, value: Option<Money>| {
            value
                .map(|m| units.minor(field, m))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(PostingLine {
            account_code: self.account_code.trim().to_owned(),
            debit_minor: amount("debit", self.debit)?,
            credit_minor: amount("credit", self.credit)?,
            cost_center_id: optional_id(
                "costCenterId",
                self.cost_center_id.as_ref(),
                DepartmentId::parse,
            )?
            .map(|d| d.0),
            task_id: optional_id("taskId", self.task_id.as_ref(), TaskId::parse)?.map(|t| t.0),
        })
    }
}

#[derive(InputObject)]
pub struct PostJournalEntryInput {
    #[graphql(default)]
    memo: String,
    posting_date: Date,
    lines: Vec<JournalLineInput>,
}

impl PostJournalEntryInput {
    fn parse(self, units: Units) -> AppResult<NewEntry> {
        Ok(NewEntry {
            memo: self.memo.trim().to_owned(),
            posting_date: self.posting_date.0,
            lines: self
                .lines
                .into_iter()
                .map(|line| line.parse(units))
                .collect::<AppResult<_>>()?,
        })
    }
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

impl CreateBudgetInput {
    fn parse(self, units: Units) -> AppResult<NewBudget> {
        Ok(NewBudget {
            amount_minor: units.minor("amount", self.amount)?,
            cost_center: DepartmentId::parse("costCenterId", &self.cost_center_id)?.0,
            account_code: self.account_code.trim().to_owned(),
            period: self.period,
            policy: self.policy.into(),
        })
    }
}

/// What is left out is kept.
#[derive(InputObject)]
pub struct UpdateBudgetInput {
    amount: Option<Money>,
    policy: Option<BudgetPolicy>,
}

impl UpdateBudgetInput {
    fn parse(self, units: Units) -> AppResult<BudgetChanges> {
        Ok(BudgetChanges {
            amount_minor: self.amount.map(|a| units.minor("amount", a)).transpose()?,
            policy: self.policy.map(Into::into),
        })
    }
}

/// Dates are inclusive. An entry matches `accountCode`/`costCenterId` when one of its visible
/// lines does; an unknown `accountCode` is `BAD_USER_INPUT`.
#[derive(InputObject, Default)]
pub struct JournalEntryFilter {
    from: Option<Date>,
    to: Option<Date>,
    account_code: Option<String>,
    cost_center_id: Option<ID>,
    source: Option<JournalSource>,
}

impl TryFrom<JournalEntryFilter> for model::JournalLineFilter {
    type Error = AppError;

    fn try_from(input: JournalEntryFilter) -> AppResult<Self> {
        let filter = Self {
            from: input.from.map(|d| d.0),
            to: input.to.map(|d| d.0),
            account_code: input
                .account_code
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            cost_center_id: optional_id(
                "costCenterId",
                input.cost_center_id.as_ref(),
                DepartmentId::parse,
            )?
            .map(|d| d.0),
            source: input.source.map(Into::into),
        };
        filter.validate()?;
        Ok(filter)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PnlGroup {
    Department,
    Month,
}

/// Which groupings `profitAndLoss` was asked for: (by department, by month).
fn pnl_grouping(group_by: Option<Vec<PnlGroup>>) -> (bool, bool) {
    let groups = group_by.unwrap_or_default();
    (
        groups.contains(&PnlGroup::Department),
        groups.contains(&PnlGroup::Month),
    )
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

impl PnlRow {
    async fn all(
        ctx: &Context<'_>,
        units: Units,
        cells: Vec<service::PnlCell>,
    ) -> Result<Vec<Self>> {
        let mut rows = Vec::with_capacity(cells.len());
        for cell in cells {
            rows.push(Self {
                department: match cell.cost_center {
                    Some(id) => department_by_id(ctx, id).await?,
                    None => None,
                },
                month: cell.month,
                revenue: units.money(cell.revenue),
                expense: units.money(cell.expense),
                net: units.money(cell.revenue - cell.expense),
            });
        }
        Ok(rows)
    }
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

impl AccountLedger {
    /// One page, `offset` lines in.
    fn new(units: Units, page: service::LedgerPage, offset: u64) -> AppResult<Self> {
        let shown = page.lines.len() as u64;
        Ok(Self {
            opening_balance: units.money(page.opening),
            lines: page
                .lines
                .into_iter()
                .map(|l| LedgerEntryLine {
                    entry_id: ID(l.line.entry_id.to_string()),
                    memo: l.memo,
                    posting_date: Date(l.line.posting_date),
                    debit: units.money(l.line.debit_minor),
                    credit: units.money(l.line.credit_minor),
                    balance: units.money(l.balance),
                })
                .collect(),
            total_count: page.total,
            has_next_page: offset + shown < page.total,
            end_cursor: (shown > 0).then(|| encode_cursor(offset + shown - 1)),
            account: page.account.try_into()?,
        })
    }
}

#[derive(Default)]
pub struct FinanceQuery;

#[Object]
impl FinanceQuery {
    /// Needs `finance.read`.
    async fn accounts(&self, ctx: &Context<'_>) -> Result<Vec<Account>> {
        let caller = ctx.caller()?;
        let accounts = service::list_accounts(caller.db(), caller.viewer).await?;
        Ok(accounts
            .into_iter()
            .map(Account::try_from)
            .collect::<AppResult<_>>()?)
    }

    /// Needs `finance.read`.
    async fn journal_entry(&self, ctx: &Context<'_>, id: ID) -> Result<Option<JournalEntry>> {
        let caller = ctx.caller()?;
        let id = EntryId::parse("id", &id)?;
        let entry = found(service::find_entry(caller.db(), caller.viewer, id).await)?;
        Ok(entry.map(JournalEntry::from))
    }

    /// Entries with a line the viewer may read, ordered by posting date then id. Needs
    /// `finance.read`; a department-scoped grant reads its cost centres' lines.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn journal_entries(
        &self,
        ctx: &Context<'_>,
        filter: Option<JournalEntryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, JournalEntry, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let (first, offset) = (page_size(first)?, decode_cursor(after.as_deref())?);
        let filter = model::JournalLineFilter::try_from(filter.unwrap_or_default())?;
        let page =
            service::journal_entries(caller.db(), caller.viewer.user()?, &filter, offset, first)
                .await?;
        let entries = page.entries.into_iter().map(JournalEntry::from).collect();
        Ok(connection(entries, page.total, offset))
    }

    /// Debits and credits per account up to `asOf` (inclusive). Needs `finance.read`.
    async fn trial_balance(&self, ctx: &Context<'_>, as_of: Option<Date>) -> Result<TrialBalance> {
        let caller = ctx.caller()?;
        let rows = service::trial_balance(caller.db(), caller.viewer, as_of.map(|d| d.0)).await?;
        Ok(TrialBalance::new(Units::of(&caller), rows))
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
        let caller = ctx.caller()?;
        let (by_department, by_month) = pnl_grouping(group_by);
        let cells = service::profit_and_loss(
            caller.db(),
            caller.viewer,
            from.0,
            to.0,
            by_department,
            by_month,
        )
        .await?;
        PnlRow::all(ctx, Units::of(&caller), cells).await
    }

    /// One account's lines with the running balance. Needs `finance.read`.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn account_ledger(
        &self,
        ctx: &Context<'_>,
        account_code: String,
        from: Option<Date>,
        to: Option<Date>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AccountLedger> {
        let caller = ctx.caller()?;
        let (first, offset) = (page_size(first)?, decode_cursor(after.as_deref())?);
        let (from, to) = (from.map(|d| d.0), to.map(|d| d.0));
        let page = service::account_ledger(
            caller.db(),
            caller.viewer,
            account_code.trim(),
            from,
            to,
            offset,
            first,
        )
        .await?;
        Ok(AccountLedger::new(Units::of(&caller), page, offset)?)
    }

    /// Budgeted, actual and remaining per budget. Needs `finance.read`.
    async fn budget_usage(
        &self,
        ctx: &Context<'_>,
        cost_center_id: Option<ID>,
    ) -> Result<Vec<Budget>> {
        let caller = ctx.caller()?;
        let center =
            optional_id("costCenterId", cost_center_id.as_ref(), DepartmentId::parse)?.map(|d| d.0);
        let usage = service::budget_usage(caller.db(), caller.viewer, center).await?;
        Budget::all(ctx, Units::of(&caller), usage).await
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
        let (caller, new) = (ctx.caller()?, NewAccount::try_from(input)?);
        let account = caller
            .write(async |work| {
                service::create_account(work, caller.viewer, &new.code, &new.name, new.kind).await
            })
            .await?;
        Ok(account.try_into()?)
    }

    /// A balanced entry (debits equal credits, every amount positive). Needs `finance.post`.
    async fn post_journal_entry(
        &self,
        ctx: &Context<'_>,
        input: PostJournalEntryInput,
    ) -> Result<JournalEntry> {
        let caller = ctx.caller()?;
        let entry = input.parse(Units::of(&caller))?;
        let posted = caller
            .write(async |work| service::post_entry(work, caller.viewer, entry).await)
            .await?;
        Ok(posted.entry.into())
    }

    /// Posts the reversing entry of `id`. Needs `finance.post`.
    async fn reverse_journal_entry(
        &self,
        ctx: &Context<'_>,
        id: ID,
        memo: Option<String>,
    ) -> Result<JournalEntry> {
        let (caller, id) = (ctx.caller()?, EntryId::parse("id", &id)?);
        let entry = caller
            .write(async |work| {
                service::reverse_entry(work, caller.viewer, id, memo.as_deref()).await
            })
            .await?;
        Ok(entry.into())
    }

    /// Needs `finance.post`.
    async fn create_budget(&self, ctx: &Context<'_>, input: CreateBudgetInput) -> Result<Budget> {
        let caller = ctx.caller()?;
        let units = Units::of(&caller);
        let new = input.parse(units)?;
        let created = caller
            .write(async |work| service::create_budget(work, caller.viewer, new).await)
            .await?;
        // After commit: the usage view needs `finance.read`, which creating a budget does not.
        let usage = service::usage_of(caller.db(), caller.viewer, &created).await?;
        Budget::new(ctx, units, usage).await
    }

    /// Renames an account, or changes its type while nothing is posted to it. Needs
    /// `finance.post`.
    async fn update_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAccountInput,
    ) -> Result<Account> {
        let (caller, changes) = (ctx.caller()?, AccountChanges::try_from(input)?);
        let id = AccountId::parse("id", &id)?;
        let account = caller
            .write(async |work| service::update_account(work, caller.viewer, id, changes).await)
            .await?;
        Ok(account.try_into()?)
    }

    /// Closes an account: postings and new budgets naming it are `BAD_USER_INPUT`; reversals
    /// of its entries still post. `CONFLICT` while a transaction type's posting rule names it.
    /// Needs `finance.post`.
    async fn deactivate_account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let (caller, id) = (ctx.caller()?, AccountId::parse("id", &id)?);
        let account = caller
            .write(async |work| {
                crate::domains::business::service::deactivate_account(work, caller.viewer, id).await
            })
            .await?;
        Ok(account.try_into()?)
    }

    /// Opens a deactivated account again. Needs `finance.post`.
    async fn reactivate_account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let (caller, id) = (ctx.caller()?, AccountId::parse("id", &id)?);
        let account = caller
            .write(async |work| service::set_account_active(work, caller.viewer, id, true).await)
            .await?;
        Ok(account.try_into()?)
    }

    /// Changes a budget's amount or policy. Needs `finance.post`.
    async fn update_budget(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateBudgetInput,
    ) -> Result<Budget> {
        let caller = ctx.caller()?;
        let units = Units::of(&caller);
        let (id, changes) = (BudgetId::parse("id", &id)?, input.parse(units)?);
        let updated = caller
            .write(async |work| service::update_budget(work, caller.viewer, id, changes).await)
            .await?;
        let usage = service::usage_of(caller.db(), caller.viewer, &updated).await?;
        Budget::new(ctx, units, usage).await
    }
}
