//! Which journal lines a viewer reads, in SQL, and the journal listed and streamed under it.

use std::collections::HashMap;

use entities::{account, journal_entry, journal_line};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use uuid::Uuid;

use crate::auth::{Permission, ViewerUser};
use crate::domains::finance::model::{JournalLineFilter, JournalSource, LedgerScope};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};

/// The viewer's share of the ledger; `FORBIDDEN` without `finance.read` anywhere.
pub fn ledger_scope(viewer: &ViewerUser) -> AppResult<LedgerScope> {
    LedgerScope::of(viewer).ok_or_else(|| {
        AppError::Forbidden(format!(
            "this needs the {} permission",
            Permission::FinanceRead
        ))
    })
}

/// `column` (a cost-centre id) lies inside `scope`. A NULL never passes `IN`, so lines without
/// a cost centre fall outside every subtree, as `LedgerScope::covers` says.
pub(super) fn within(scope: &LedgerScope, column: impl ColumnTrait) -> Condition {
    match scope {
        LedgerScope::All => Condition::all(),
        LedgerScope::Subtrees(paths) => {
            Condition::all().add(column.in_subquery(identity::departments_within(paths)))
        }
    }
}

/// The journal lines `viewer` may read, as a condition on `journal_lines`: every ledger read
/// (and the CSV export) filters by it, so GraphQL and CSV agree row for row.
pub fn visible_lines_condition(viewer: &ViewerUser) -> AppResult<Condition> {
    Ok(within(
        &ledger_scope(viewer)?,
        journal_line::Column::CostCenterId,
    ))
}

/// The lines `JournalEntry.lines` shows: the visible ones. Someone who may post but not read
/// (a global `finance.post` alone) still sees the lines of what they post, as before scoped
/// reads existed; anyone else sees none.
pub fn lines_shown_condition(viewer: &ViewerUser) -> Condition {
    match visible_lines_condition(viewer) {
        Ok(condition) => condition,
        Err(_) if viewer.has_global(Permission::FinancePost) => Condition::all(),
        Err(_) => Condition::all().add(Expr::cust("1 = 0")),
    }
}

fn entry_ids_of_lines(condition: Condition) -> SelectStatement {
    Query::select()
        .column(journal_line::Column::EntryId)
        .from(journal_line::Entity)
        .cond_where(condition)
        .to_owned()
}

/// Entries some line of which a business transaction posted (and, with `naming_task`, names a
/// task): the facts `JournalSource::derive` reads.
fn transaction_entries(naming_task: bool) -> SelectStatement {
    let mut condition = Condition::all().add(journal_line::Column::TransactionId.is_not_null());
    if naming_task {
        condition = condition.add(journal_line::Column::TaskId.is_not_null());
    }
    entry_ids_of_lines(condition)
}

/// `source` as a condition on `journal_entries`, the same rule as `JournalSource::derive`.
fn source_condition(source: JournalSource) -> Condition {
    let not_reversal = journal_entry::Column::ReversalOf.is_null();
    let id = journal_entry::Column::Id;
    match source {
        JournalSource::Reversal => {
            Condition::all().add(journal_entry::Column::ReversalOf.is_not_null())
        }
        JournalSource::Task => Condition::all()
            .add(not_reversal)
            .add(id.in_subquery(transaction_entries(true))),
        JournalSource::Transaction => Condition::all()
            .add(not_reversal)
            .add(id.in_subquery(transaction_entries(false)))
            .add(id.not_in_subquery(transaction_entries(true))),
        JournalSource::Manual => Condition::all()
            .add(not_reversal)
            .add(id.not_in_subquery(transaction_entries(false))),
    }
}

/// The line-level parts of `filter` (account, cost centre, dates) on top of visibility. An
/// unknown account code matches nothing here; `journal_entries` refuses it first.
fn line_condition(viewer: &ViewerUser, filter: &JournalLineFilter) -> AppResult<Condition> {
    let mut condition = visible_lines_condition(viewer)?;
    if let Some(code) = &filter.account_code {
        let accounts = Query::select()
            .column(account::Column::Id)
            .from(account::Entity)
            .and_where(account::Column::Code.eq(code.as_str()))
            .to_owned();
        condition = condition.add(journal_line::Column::AccountId.in_subquery(accounts));
    }
    if let Some(center) = filter.cost_center_id {
        condition = condition.add(journal_line::Column::CostCenterId.eq(center));
    }
    if let Some(from) = filter.from {
        condition = condition.add(journal_line::Column::PostingDate.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(journal_line::Column::PostingDate.lte(to));
    }
    Ok(condition)
}

/// The visible lines matching `filter`, ordered by posting date, entry and line: a query the
/// CSV export streams (`.stream(db)`), never loaded whole.
pub fn journal_lines_query(
    viewer: &ViewerUser,
    filter: &JournalLineFilter,
) -> AppResult<Select<journal_line::Entity>> {
    filter.validate()?;
    let mut query = journal_line::Entity::find().filter(line_condition(viewer, filter)?);
    if let Some(source) = filter.source {
        let entries = Query::select()
            .column(journal_entry::Column::Id)
            .from(journal_entry::Entity)
            .cond_where(source_condition(source))
            .to_owned();
        query = query.filter(journal_line::Column::EntryId.in_subquery(entries));
    }
    Ok(query
        .order_by_asc(journal_line::Column::PostingDate)
        .order_by_asc(journal_line::Column::EntryId)
        .order_by_asc(journal_line::Column::LineNo))
}

pub struct EntryPage {
    pub entries: Vec<journal_entry::Model>,
    pub total: u64,
}

/// Entries with at least one visible line matching `filter`'s line parts, and whose source
/// and posting date match, ordered by posting date then id; one page of `first` from `offset`.
pub async fn journal_entries<C: ConnectionTrait>(
    db: &C,
    viewer: &ViewerUser,
    filter: &JournalLineFilter,
    offset: u64,
    first: u64,
) -> AppResult<EntryPage> {
    filter.validate()?;
    if let Some(code) = &filter.account_code {
        if super::accounts_by_code(db, vec![code.clone()])
            .await?
            .is_empty()
        {
            return Err(AppError::bad_field(
                "accountCode",
                format!("no account with code {code:?}"),
            ));
        }
    }
    let mut query = journal_entry::Entity::find().filter(
        journal_entry::Column::Id.in_subquery(entry_ids_of_lines(line_condition(viewer, filter)?)),
    );
    // Every line carries its entry's date, so the dates bound the entries as well as lines.
    if let Some(from) = filter.from {
        query = query.filter(journal_entry::Column::PostingDate.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(journal_entry::Column::PostingDate.lte(to));
    }
    if let Some(source) = filter.source {
        query = query.filter(source_condition(source));
    }
    let total = query.clone().count(db).await?;
    let entries = query
        .order_by_asc(journal_entry::Column::PostingDate)
        .order_by_asc(journal_entry::Column::Id)
        .offset(offset)
        .limit(first)
        .all(db)
        .await?;
    Ok(EntryPage { entries, total })
}

/// Per entry, whether a business transaction posted its lines and whether those name a task:
/// with `reversal_of`, what `JournalSource::derive` needs. One grouped query.
pub async fn posting_facts_of<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, (bool, bool)>> {
    let facts: Vec<(Uuid, i64, i64)> = journal_line::Entity::find()
        .select_only()
        .column(journal_line::Column::EntryId)
        .expr_as(
            Expr::cust(
                "CAST(MAX(CASE WHEN journal_lines.transaction_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)",
            ),
            "from_transaction",
        )
        .expr_as(
            Expr::cust("CAST(MAX(CASE WHEN journal_lines.transaction_id IS NOT NULL AND journal_lines.task_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)"),
            "names_task",
        )
        .filter(journal_line::Column::EntryId.is_in(entry_ids.iter().copied()))
        .group_by(journal_line::Column::EntryId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(facts
        .into_iter()
        .map(|(id, transaction, task)| (id, (transaction > 0, task > 0)))
        .collect())
}
