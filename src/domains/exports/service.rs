//! Writing a report as CSV, streamed: rows are read in batches as the database returns them
//! and leave in chunks through a bounded channel, so memory stays flat whatever the size and a
//! slow reader slows the reading. The permissions are the domains' own: each report is read
//! through the same service query its GraphQL field uses.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use entities::{journal_line, task};
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QuerySelect, QueryTrait, Select,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::jobs::{rows_in_message, ExportJob, Requester};
use super::model::{Cell, Params, Report};
use super::summaries::{self, ApprovalStatsTable, ProfilesTable, TaskStatsTable};
use crate::auth::{Viewer, ViewerUser};
use crate::domains::finance::service::{self as finance, BalanceRow, LedgerLines, PnlCell};
use crate::domains::identity::service as identity;
use crate::domains::profiles::model::ProfileWindow;
use crate::domains::profiles::service as profiles;
use crate::domains::tasks::model::{is_overdue, WorkStatus};
use crate::domains::tasks::service as tasks;
use crate::error::{AppError, AppResult};
use crate::platform::money::{currency_exponent, Decimal};
use crate::platform::scheduler::{admin, enqueue, EnqueueError, JobKind, JobState, NewJob};

/// Bytes gathered before a chunk is handed on.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Rows read from the database at a time: one lookup of names per batch, never per row.
const BATCH_ROWS: usize = 500;
/// Chunks that may wait for a slow reader; past them the writer waits too.
pub const CHANNEL_CHUNKS: usize = 4;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the reading end receives: chunks, and an error item when the export failed part-way,
/// so the reader can tell a cut-off file from a finished one.
pub type Chunk = Result<Bytes, std::io::Error>;

#[derive(Debug)]
pub enum ExportError {
    /// The reader went away (the client hung up): nothing is wrong, the export just stops.
    Gone,
    Failed(AppError),
}

impl From<AppError> for ExportError {
    fn from(err: AppError) -> Self {
        Self::Failed(err)
    }
}

impl From<DbErr> for ExportError {
    fn from(err: DbErr) -> Self {
        Self::Failed(err.into())
    }
}

/// The CSV writer over the channel: RFC 4180 quoting (the `csv` crate's), CRLF line ends.
pub struct CsvOut {
    writer: Option<csv::Writer<Vec<u8>>>,
    tx: mpsc::Sender<Chunk>,
    rows: Arc<AtomicU64>,
}

fn new_writer(prefix: &[u8]) -> csv::Writer<Vec<u8>> {
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 8 * 1024);
    buffer.extend_from_slice(prefix);
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(buffer)
}

impl CsvOut {
    pub fn new(tx: mpsc::Sender<Chunk>, bom: bool) -> Self {
        Self {
            writer: Some(new_writer(if bom { UTF8_BOM } else { b"" })),
            tx,
            rows: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Data rows written so far (the header not counted), for progress reports.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.rows.clone()
    }

    async fn write(&mut self, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        let rendered: Vec<_> = cells.iter().map(Cell::render).collect();
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("CSV writer already finished")))?;
        writer
            .write_record(rendered.iter().map(|c| c.as_bytes()))
            .map_err(|e| AppError::internal(anyhow::anyhow!("writing CSV: {e}")))?;
        if writer.get_ref().len() >= CHUNK_BYTES {
            self.hand_on().await?;
        }
        Ok(())
    }

    pub(super) async fn header(&mut self, names: &[&str]) -> Result<(), ExportError> {
        let cells: Vec<Cell<'_>> = names.iter().map(|n| Cell::text(*n)).collect();
        self.write(&cells).await
    }

    pub(super) async fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.write(cells).await?;
        self.rows.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn hand_on(&mut self) -> Result<(), ExportError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let buffer = writer
            .into_inner()
            .map_err(|e| AppError::internal(anyhow::anyhow!("flushing CSV: {}", e.error())))?;
        self.writer = Some(new_writer(b""));
        if buffer.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Ok(Bytes::from(buffer)))
            .await
            .map_err(|_| ExportError::Gone)
    }

    async fn finish(mut self) -> Result<(), ExportError> {
        self.hand_on().await?;
        self.writer = None;
        Ok(())
    }
}

/// `query`'s rows in batches, as the database returns them. PostgreSQL streams one cursor
/// over one connection. SQLite has a single connection for everything (see `platform::db`),
/// which a cursor would hold for the whole export, so there each batch is its own short
/// statement (`LIMIT`/`OFFSET` over the query's total order): rows written concurrently may
/// then shift between batches, which an embedded deployment accepts.
pub(super) fn batches<'a, E>(
    db: &'a DatabaseConnection,
    query: Select<E>,
) -> BoxStream<'a, Result<Vec<E::Model>, DbErr>>
where
    E: EntityTrait,
    E::Model: Send + Sync + 'a,
{
    match db.get_database_backend() {
        DbBackend::Postgres => stream::once(query.stream(db))
            .try_flatten()
            .try_chunks(BATCH_ROWS)
            .map_err(|err| err.1)
            .boxed(),
        _ => stream::try_unfold(Some(0u64), move |offset| {
            let query = query.clone();
            async move {
                let Some(offset) = offset else {
                    return Ok(None);
                };
                let rows = query
                    .offset(offset)
                    .limit(BATCH_ROWS as u64)
                    .all(db)
                    .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let next = (rows.len() == BATCH_ROWS).then_some(offset + rows.len() as u64);
                Ok(Some((rows, next)))
            }
        })
        .boxed(),
    }
}

/// Rows in `query`, counting no further than `cap` (so deciding whether an export is large
/// costs at most `cap` rows of reading, however large it is).
async fn count_upto<E: EntityTrait>(
    db: &DatabaseConnection,
    query: &Select<E>,
    cap: Option<u64>,
) -> AppResult<u64>
where
    E::Model: Sync,
{
    let mut query = query.clone();
    QueryTrait::query(&mut query).clear_order_by();
    if let Some(cap) = cap {
        query = query.limit(cap.saturating_add(1));
    }
    Ok(query.count(db).await?)
}

fn when(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn amount(minor: impl Into<i128>, exponent: u32) -> Cell<'static> {
    Cell::Amount(Decimal::from_wide_minor(minor.into(), exponent).to_string())
}

/// A report checked and ready to write: permissions held, parameters valid, the query built.
/// Reports that are aggregates are small, and already computed here.
pub struct Prepared {
    pub report: Report,
    body: Body,
}

enum Body {
    Tasks {
        rows: Box<Select<task::Entity>>,
        count: Box<Select<task::Entity>>,
    },
    JournalLines(Select<journal_line::Entity>),
    Ledger(LedgerLines),
    TrialBalance(Vec<BalanceRow>),
    ProfitAndLoss {
        cells: Vec<PnlCell>,
        departments: HashMap<Uuid, String>,
    },
    TaskStats(Box<TaskStatsTable>),
    ApprovalStats(Box<ApprovalStatsTable>),
    Profiles(Box<ProfilesTable>),
}

/// The app scopes of the report's GraphQL field: an app reads through the export exactly
/// what it may read through GraphQL.
pub fn may_export(viewer: &ViewerUser, report: Report) -> AppResult<()> {
    crate::graphql::app_scopes::may_open_root(viewer, report.root_field())
}

/// Checks what the GraphQL field would check, with the same services and the same viewer,
/// before any byte is written (so a refusal is still a status code).
pub async fn prepare(
    db: &DatabaseConnection,
    viewer: &Viewer,
    params: Params,
) -> AppResult<Prepared> {
    let me = viewer.user()?;
    // An app's scopes first: nothing is read for an export it may not have.
    may_export(me, params.report())?;
    let (report, body) = match params {
        Params::Tasks { filter, orders } => (
            Report::Tasks,
            Body::Tasks {
                rows: Box::new(tasks::filtered_tasks_query(viewer, &filter, &orders)?),
                count: Box::new(tasks::task_filter_query(me, &filter)),
            },
        ),
        Params::JournalLines(filter) => (
            Report::JournalLines,
            Body::JournalLines(finance::journal_lines_query(me, &filter)?),
        ),
        Params::Ledger {
            account_code,
            from,
            to,
        } => (
            Report::Ledger,
            Body::Ledger(finance::ledger_lines_query(db, viewer, &account_code, from, to).await?),
        ),
        Params::TrialBalance { as_of } => (
            Report::TrialBalance,
            Body::TrialBalance(finance::trial_balance(db, viewer, as_of).await?),
        ),
        Params::ProfitAndLoss {
            from,
            to,
            by_department,
            by_month,
        } => {
            let cells =
                finance::profit_and_loss(db, viewer, from, to, by_department, by_month).await?;
            let ids: Vec<Uuid> = cells.iter().filter_map(|c| c.cost_center).collect();
            let departments = identity::departments_by_id(db, &ids)
                .await?
                .into_iter()
                .map(|d| (d.id, d.name))
                .collect();
            (
                Report::ProfitAndLoss,
                Body::ProfitAndLoss { cells, departments },
            )
        }
        Params::TaskStats(query) => (
            Report::TaskStats,
            Body::TaskStats(Box::new(summaries::task_stats(db, viewer, query).await?)),
        ),
        Params::ApprovalStats(query) => (
            Report::ApprovalStats,
            Body::ApprovalStats(Box::new(
                summaries::approval_stats(db, viewer, query).await?,
            )),
        ),
        Params::Profiles { from, to } => (
            Report::Profiles,
            Body::Profiles(Box::new(ProfilesTable {
                viewer: viewer.clone(),
                people: profiles::visible_people_query(viewer)?,
                window: ProfileWindow::new(from, to, Utc::now())?,
            })),
        ),
    };
    Ok(Prepared { report, body })
}

/// A portrait costs a handful of aggregate statements, not one row of a stream: more people
/// than this go to the background whatever `INTERLINK_EXPORT_MAX_SYNC_ROWS` says.
pub const MAX_SYNC_PORTRAITS: u64 = 500;

impl Prepared {
    /// Past how many rows this report runs in the background, given the configured limit.
    pub fn sync_row_limit(&self, configured: u64) -> u64 {
        match self.body {
            Body::Profiles(_) => configured.min(MAX_SYNC_PORTRAITS),
            _ => configured,
        }
    }

    /// The rows the file will have, counted no further than `cap`.
    pub async fn rows(&self, db: &DatabaseConnection, cap: Option<u64>) -> AppResult<u64> {
        match &self.body {
            Body::Tasks { count, .. } => count_upto(db, count, cap).await,
            Body::JournalLines(query) => count_upto(db, query, cap).await,
            Body::Ledger(ledger) => Ok(count_upto(db, &ledger.lines, cap).await? + 1),
            Body::TrialBalance(rows) => Ok(rows.len() as u64),
            Body::ProfitAndLoss { cells, .. } => Ok(cells.len() as u64),
            Body::TaskStats(table) => Ok(table.rows()),
            Body::ApprovalStats(table) => Ok(table.rows()),
            Body::Profiles(table) => count_upto(db, &table.people, cap).await,
        }
    }

    /// Writes the whole report into `out`. `currency` is the ledger's base currency.
    pub async fn write(
        self,
        db: &DatabaseConnection,
        currency: &str,
        out: &mut CsvOut,
    ) -> Result<(), ExportError> {
        let exponent = currency_exponent(currency);
        match self.body {
            Body::Tasks { rows, .. } => write_tasks(db, *rows, out).await,
            Body::JournalLines(query) => {
                write_journal_lines(db, query, currency, exponent, out).await
            }
            Body::Ledger(ledger) => write_ledger(db, ledger, currency, exponent, out).await,
            Body::TrialBalance(rows) => {
                out.header(&[
                    "accountCode",
                    "accountName",
                    "debit",
                    "credit",
                    "balance",
                    "currency",
                ])
                .await?;
                for row in rows {
                    out.row(&[
                        Cell::text(row.account.code.as_str()),
                        Cell::text(row.account.name.as_str()),
                        amount(row.debit, exponent),
                        amount(row.credit, exponent),
                        amount(row.debit - row.credit, exponent),
                        Cell::text(currency),
                    ])
                    .await?;
                }
                Ok(())
            }
            Body::ProfitAndLoss { cells, departments } => {
                out.header(&[
                    "departmentId",
                    "departmentName",
                    "month",
                    "revenue",
                    "expense",
                    "net",
                    "currency",
                ])
                .await?;
                for cell in cells {
                    let name = cell.cost_center.and_then(|id| departments.get(&id));
                    out.row(&[
                        Cell::opt(cell.cost_center),
                        Cell::opt(name),
                        Cell::opt(cell.month.as_deref()),
                        amount(cell.revenue, exponent),
                        amount(cell.expense, exponent),
                        amount(cell.revenue - cell.expense, exponent),
                        Cell::text(currency),
                    ])
                    .await?;
                }
                Ok(())
            }
            Body::TaskStats(table) => table.write(currency, exponent, out).await,
            Body::ApprovalStats(table) => table.write(out).await,
            Body::Profiles(table) => table.write(db, currency, exponent, out).await,
        }
    }
}

const TASK_COLUMNS: [&str; 20] = [
    "id",
    "parentId",
    "title",
    "status",
    "reviewStatus",
    "priority",
    "progress",
    "categoryId",
    "departmentId",
    "initiatorId",
    "executorIds",
    "executorNames",
    "startAt",
    "deadline",
    "completedAt",
    "createdAt",
    "overdue",
    "meritPoints",
    "cashOutput",
    "currency",
];

async fn write_tasks(
    db: &DatabaseConnection,
    query: Select<task::Entity>,
    out: &mut CsvOut,
) -> Result<(), ExportError> {
    out.header(&TASK_COLUMNS).await?;
    let mut batches = batches(db, query);
    while let Some(batch) = batches.try_next().await? {
        let ids: Vec<Uuid> = batch.iter().map(|t| t.id).collect();
        let executors = tasks::executors_by_task(db, &ids).await?;
        let now = Utc::now();
        for t in &batch {
            let people = executors.get(&t.id).map(Vec::as_slice).unwrap_or_default();
            let executor_ids: Vec<String> = people.iter().map(|u| u.id.to_string()).collect();
            let executor_names: Vec<&str> = people.iter().map(|u| u.name.as_str()).collect();
            let overdue = WorkStatus::parse(&t.status)
                .is_some_and(|status| is_overdue(t.overdue, t.deadline, status, now));
            out.row(&[
                Cell::display(t.id),
                Cell::opt(t.parent_id),
                Cell::text(t.title.as_str()),
                Cell::text(t.status.as_str()),
                Cell::text(t.review_status.as_str()),
                Cell::display(t.priority),
                Cell::display(t.progress),
                Cell::display(t.category_id),
                Cell::opt(t.department_id),
                Cell::display(t.initiator_id),
                Cell::text(executor_ids.join(";")),
                Cell::text(executor_names.join("; ")),
                Cell::opt(t.start_at.map(when)),
                Cell::opt(t.deadline.map(when)),
                Cell::opt(t.completed_at.map(when)),
                Cell::text(when(t.created_at)),
                Cell::display(overdue),
                Cell::display(t.merit_points),
                t.cash_output_minor.map_or(Cell::Empty, |minor| {
                    amount(minor, currency_exponent(&t.currency))
                }),
                Cell::text(t.currency.as_str()),
            ])
            .await?;
        }
    }
    Ok(())
}

/// Account codes and entry memos of one batch of lines, two queries for the whole batch.
async fn line_names(
    db: &DatabaseConnection,
    batch: &[journal_line::Model],
) -> AppResult<(HashMap<Uuid, String>, HashMap<Uuid, String>)> {
    let accounts: HashSet<Uuid> = batch.iter().map(|l| l.account_id).collect();
    let entries: HashSet<Uuid> = batch.iter().map(|l| l.entry_id).collect();
    let accounts: Vec<Uuid> = accounts.into_iter().collect();
    let entries: Vec<Uuid> = entries.into_iter().collect();
    let codes = finance::accounts_by_id(db, &accounts)
        .await?
        .into_iter()
        .map(|(id, a)| (id, a.code))
        .collect();
    Ok((codes, finance::entry_memos(db, &entries).await?))
}

async fn write_journal_lines(
    db: &DatabaseConnection,
    query: Select<journal_line::Entity>,
    currency: &str,
    exponent: u32,
    out: &mut CsvOut,
) -> Result<(), ExportError> {
    out.header(&[
        "entryId",
        "lineNo",
        "postingDate",
        "accountCode",
        "memo",
        "costCenterId",
        "taskId",
        "transactionId",
        "debit",
        "credit",
        "currency",
    ])
    .await?;
    let mut batches = batches(db, query);
    while let Some(batch) = batches.try_next().await? {
        let (codes, memos) = line_names(db, &batch).await?;
        for line in &batch {
            out.row(&[
                Cell::display(line.entry_id),
                Cell::display(line.line_no),
                Cell::display(line.posting_date),
                Cell::opt(codes.get(&line.account_id)),
                Cell::opt(memos.get(&line.entry_id)),
                Cell::opt(line.cost_center_id),
                Cell::opt(line.task_id),
                Cell::opt(line.transaction_id),
                amount(line.debit_minor, exponent),
                amount(line.credit_minor, exponent),
                Cell::text(currency),
            ])
            .await?;
        }
    }
    Ok(())
}

/// The ledger with its running balance added up as the lines go by, from the balance brought
/// forward: the same figures `accountLedger` computes in SQL page by page.
async fn write_ledger(
    db: &DatabaseConnection,
    ledger: LedgerLines,
    currency: &str,
    exponent: u32,
    out: &mut CsvOut,
) -> Result<(), ExportError> {
    out.header(&[
        "accountCode",
        "entryId",
        "lineNo",
        "postingDate",
        "memo",
        "debit",
        "credit",
        "balance",
        "currency",
    ])
    .await?;
    let code = ledger.account.code.as_str();
    let mut balance = ledger.opening;
    out.row(&[
        Cell::text(code),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::text("Opening balance"),
        Cell::Empty,
        Cell::Empty,
        amount(balance, exponent),
        Cell::text(currency),
    ])
    .await?;
    let mut batches = batches(db, ledger.lines);
    while let Some(batch) = batches.try_next().await? {
        let entries: Vec<Uuid> = batch.iter().map(|l| l.entry_id).collect();
        let memos = finance::entry_memos(db, &entries).await?;
        for line in &batch {
            balance += ledger
                .kind
                .natural(i128::from(line.debit_minor), i128::from(line.credit_minor));
            out.row(&[
                Cell::text(code),
                Cell::display(line.entry_id),
                Cell::display(line.line_no),
                Cell::display(line.posting_date),
                Cell::opt(memos.get(&line.entry_id)),
                amount(line.debit_minor, exponent),
                amount(line.credit_minor, exponent),
                amount(balance, exponent),
                Cell::text(currency),
            ])
            .await?;
        }
    }
    Ok(())
}

/// Runs `prepared` into `out` within `deadline`. A failure part-way (or the deadline) sends
/// an error item after what was written, so the reader cuts the file off rather than ending it
/// as if complete; the cause is logged here. A reader that went away just stops it.
pub async fn produce(
    db: DatabaseConnection,
    prepared: Prepared,
    currency: String,
    mut out: CsvOut,
    deadline: Duration,
) -> Result<u64, ExportError> {
    let report = prepared.report;
    let rows = out.counter();
    let tx = out.tx.clone();
    let written = tokio::time::timeout(deadline, async {
        prepared.write(&db, &currency, &mut out).await?;
        out.finish().await
    })
    .await;
    let failure = match written {
        Ok(Ok(())) => return Ok(rows.load(Ordering::Relaxed)),
        Ok(Err(ExportError::Gone)) => {
            tracing::info!(report = report.slug(), "export reader went away");
            return Err(ExportError::Gone);
        }
        Ok(Err(ExportError::Failed(err))) => err,
        Err(_) => AppError::internal(anyhow::anyhow!(
            "the export ran past its deadline of {}s",
            deadline.as_secs()
        )),
    };
    tracing::error!(
        report = report.slug(),
        rows = rows.load(Ordering::Relaxed),
        error = ?failure,
        "export failed part-way; the file is cut off"
    );
    let _ = tx
        .send(Err(std::io::Error::other("the export failed part-way")))
        .await;
    Err(ExportError::Failed(failure))
}

/// Queues the export as a `reports.export` job for `viewer`; its id.
pub async fn start_export(
    db: &DatabaseConnection,
    viewer: &ViewerUser,
    report: Report,
    query: &str,
    bom: bool,
) -> AppResult<Uuid> {
    let args = ExportJob {
        requester: Requester::of(viewer),
        report,
        query: query.to_owned(),
        bom,
    };
    let job = NewJob::of(&args).map_err(|e| match e {
        EnqueueError::ArgsTooLarge(_) => AppError::bad_input("the query string is too long"),
        other => AppError::internal(anyhow::anyhow!(other)),
    })?;
    let enqueued = enqueue(db, job).await.map_err(|e| match e {
        EnqueueError::ArgsTooLarge(_) => AppError::bad_input("the query string is too long"),
        other => AppError::internal(anyhow::anyhow!(other)),
    })?;
    Ok(enqueued.id())
}

/// A background export as its requester sees it.
pub struct ExportJobView {
    pub id: Uuid,
    pub report: Report,
    /// The scheduler's state (`AVAILABLE`, `RUNNING`, `COMPLETED`, `DISCARDED`, ...).
    pub state: String,
    pub progress: i32,
    pub rows_written: Option<u64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the file stops being served; set once it is written.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ExportJobView {
    /// Whether the file may be downloaded now.
    pub fn downloadable(&self, now: DateTime<Utc>) -> bool {
        self.state == JobState::Completed.as_str() && self.expires_at.is_some_and(|at| now < at)
    }
}

/// The export job `id`, for its requester or an administrator; to anyone else (and for any
/// job that is not an export) it does not exist.
pub async fn export_job(
    db: &DatabaseConnection,
    viewer: &ViewerUser,
    id: Uuid,
    file_ttl: Duration,
) -> AppResult<ExportJobView> {
    let missing = || AppError::not_found("export job");
    let found = match admin::job(db, id).await {
        Ok(found) => found,
        Err(admin::AdminError::NotFound(_)) => return Err(missing()),
        Err(other) => return Err(AppError::internal(anyhow::anyhow!("{other}"))),
    };
    if found.kind != ExportJob::KIND {
        return Err(missing());
    }
    let args: ExportJob = serde_json::from_value(found.args.clone()).map_err(|_| missing())?;
    // An app's job belongs to the app (any of its keys); an administrator acting through an
    // app is still the app.
    let own = args.requester == Requester::of(viewer);
    let admin = viewer.app.is_none() && viewer.is_admin();
    if !(own || admin) {
        return Err(missing());
    }
    let succeeded = found.state == JobState::Completed.as_str();
    let ttl = chrono::Duration::from_std(file_ttl).unwrap_or(chrono::Duration::MAX);
    Ok(ExportJobView {
        id,
        report: args.report,
        rows_written: found.progress_message.as_deref().and_then(rows_in_message),
        progress: found.progress,
        error: found.last_error.filter(|_| !succeeded),
        created_at: found.created_at,
        finished_at: found.finished_at,
        expires_at: found
            .finished_at
            .filter(|_| succeeded)
            .and_then(|at| at.checked_add_signed(ttl)),
        state: found.state,
    })
}
