//! Reading tasks: one task, filtered and ordered pages, and per-parent pages of subtasks and
//! comments cut in SQL with window functions (never by loading all children).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{merit_record, task, task_activity, task_comment, task_executor, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, Func, NullOrdering, Order, Query, SelectStatement,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement,
};
use uuid::Uuid;

use super::visible_condition;
use crate::auth::{Viewer, ViewerUser};
use crate::domains::identity::model::UserRecord;
use crate::domains::identity::service as identity;
use crate::domains::tasks::model::{ReviewStatus, TaskId, WorkStatus, MAX_TASK_ORDERS};
use crate::error::{AppError, AppResult};
use crate::platform::db::{any_of, contains_pattern, uuid_array};

pub async fn find_task<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: TaskId,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    // The visibility rule as SQL, so reading one task is one statement; a task the viewer may
    // not see does not exist.
    task::Entity::find_by_id(id.0)
        .filter(visible_condition(me))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("task"))
}

/// `find_task` for readers to whom a task they may not see simply does not exist.
pub async fn find_visible_task<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: TaskId,
) -> AppResult<Option<task::Model>> {
    match find_task(db, viewer, id).await {
        Ok(task) => Ok(Some(task)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub category_id: Option<Uuid>,
    pub review_status: Option<ReviewStatus>,
    pub status: Option<WorkStatus>,
    pub executor_id: Option<Uuid>,
    pub initiator_id: Option<Uuid>,
    pub department_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub main_only: bool,
    pub deadline_from: Option<chrono::DateTime<Utc>>,
    pub deadline_to: Option<chrono::DateTime<Utc>>,
    pub overdue: Option<bool>,
    pub search: Option<String>,
    /// Tasks this person executes, confirms the progress of, or initiated (the console's "my
    /// work"; pending approvals are the approvals domain's to list).
    pub involving: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOrderField {
    Deadline,
    Priority,
    CreatedAt,
    Title,
    Progress,
}

impl TaskOrderField {
    /// The field by its SDL name (`DEADLINE`, `CREATED_AT`, ...).
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "DEADLINE" => Self::Deadline,
            "PRIORITY" => Self::Priority,
            "CREATED_AT" => Self::CreatedAt,
            "TITLE" => Self::Title,
            "PROGRESS" => Self::Progress,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TaskOrder {
    pub field: TaskOrderField,
    pub descending: bool,
}

impl TaskFilter {
    /// Every main task and nothing narrower: the set whose size `task_counts` maintains.
    fn is_every_main_task(&self) -> bool {
        // Destructured in full, so a new filter field must be considered here.
        let TaskFilter {
            category_id,
            review_status,
            status,
            executor_id,
            initiator_id,
            department_id,
            parent_id,
            main_only,
            deadline_from,
            deadline_to,
            overdue,
            search,
            involving,
        } = self;
        *main_only
            && category_id.is_none()
            && review_status.is_none()
            && status.is_none()
            && executor_id.is_none()
            && initiator_id.is_none()
            && department_id.is_none()
            && parent_id.is_none()
            && deadline_from.is_none()
            && deadline_to.is_none()
            && overdue.is_none()
            && involving.is_none()
            && search.as_deref().is_none_or(|s| s.trim().is_empty())
    }
}

/// The number of main tasks, from the counter the triggers of migration 000009 keep exact.
async fn count_main_tasks<C: ConnectionTrait>(db: &C) -> AppResult<u64> {
    let backend = db.get_database_backend();
    let sum = Query::select()
        // PostgreSQL sums BIGINT into NUMERIC; the cast keeps one type on both backends.
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(main_tasks), 0) AS BIGINT)"),
            Alias::new("n"),
        )
        .from(Alias::new("task_counts"))
        .to_owned();
    let row = db
        .query_one(backend.build(&sum))
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("task_counts returned no row")))?;
    let n: i64 = row.try_get("", "n")?;
    u64::try_from(n)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("task_counts went negative: {n}")))
}

pub struct TaskPage {
    pub tasks: Vec<task::Model>,
    pub total: u64,
    pub has_next: bool,
}

/// The viewer's visibility and `filter` as one condition over `tasks`: the list and the
/// statistics (`reports`) select the same rows through it, so their numbers cannot drift apart.
/// `now` decides what is overdue.
pub fn filter_condition(me: &ViewerUser, filter: &TaskFilter, now: DateTime<Utc>) -> Condition {
    let mut all = Condition::all().add(visible_condition(me));
    if let Some(id) = filter.category_id {
        all = all.add(task::Column::CategoryId.eq(id));
    }
    if let Some(status) = filter.review_status {
        all = all.add(task::Column::ReviewStatus.eq(status.as_str()));
    }
    if let Some(status) = filter.status {
        all = all.add(task::Column::Status.eq(status.as_str()));
    }
    if let Some(executor) = filter.executor_id {
        let executing = Query::select()
            .column(task_executor::Column::TaskId)
            .from(task_executor::Entity)
            .and_where(Expr::col(task_executor::Column::UserId).eq(executor))
            .to_owned();
        all = all.add(task::Column::Id.in_subquery(executing));
    }
    if let Some(initiator) = filter.initiator_id {
        all = all.add(task::Column::InitiatorId.eq(initiator));
    }
    if let Some(person) = filter.involving {
        let executing = Query::select()
            .column(task_executor::Column::TaskId)
            .from(task_executor::Entity)
            .and_where(Expr::col(task_executor::Column::UserId).eq(person))
            .to_owned();
        let confirms = Condition::any()
            .add(task::Column::ConfirmerId.eq(person))
            .add(
                Condition::all()
                    .add(task::Column::ConfirmerId.is_null())
                    .add(task::Column::InitiatorId.eq(person)),
            );
        all = all.add(
            Condition::any()
                .add(task::Column::Id.in_subquery(executing))
                .add(task::Column::InitiatorId.eq(person))
                .add(confirms),
        );
    }
    if let Some(department) = filter.department_id {
        all = all.add(task::Column::DepartmentId.eq(department));
    }
    if let Some(parent) = filter.parent_id {
        all = all.add(task::Column::ParentId.eq(parent));
    } else if filter.main_only {
        all = all.add(task::Column::ParentId.is_null());
    }
    if let Some(from) = filter.deadline_from {
        all = all.add(task::Column::Deadline.gte(from));
    }
    if let Some(to) = filter.deadline_to {
        all = all.add(task::Column::Deadline.lte(to));
    }
    if let Some(overdue) = filter.overdue {
        let late = overdue_condition(now);
        all = all.add(if overdue { late } else { late.not() });
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        all = all.add(
            Expr::expr(Func::lower(Expr::col((task::Entity, task::Column::Title))))
                .like(contains_pattern(&search.to_lowercase())),
        );
    }
    all
}

/// Overdue, as the list counts it: a deadline already past on a task not yet finished.
pub fn overdue_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(task::Column::Deadline.lt(now))
        .add(task::Column::Status.is_in(open_statuses()))
}

/// Work statuses of a task not yet finished.
pub fn open_statuses() -> [&'static str; 2] {
    [WorkStatus::Open.as_str(), WorkStatus::InProgress.as_str()]
}

/// The viewer's visible tasks matching `filter`, unordered: the one place the list's filters
/// and the visibility rule meet, shared by the list, its export and its count.
pub fn task_filter_query(viewer: &ViewerUser, filter: &TaskFilter) -> Select<task::Entity> {
    task::Entity::find().filter(filter_condition(viewer, filter, Utc::now()))
}

/// `query` ordered by the first `MAX_TASK_ORDERS` of `orders`, ties broken by id, so the order
/// is total (pages and exports cut it the same way every time).
fn ordered(query: Select<task::Entity>, orders: &[TaskOrder]) -> Select<task::Entity> {
    let mut query = query;
    for order in orders.iter().take(MAX_TASK_ORDERS) {
        let direction = if order.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        query = match order.field {
            // Tasks without a deadline sort after those with one, either way; written as
            // NULLS LAST so the board's index on (deadline, id) serves it.
            TaskOrderField::Deadline => {
                query.order_by_with_nulls(task::Column::Deadline, direction, NullOrdering::Last)
            }
            TaskOrderField::Priority => query.order_by(task::Column::Priority, direction),
            TaskOrderField::CreatedAt => query.order_by(task::Column::CreatedAt, direction),
            TaskOrderField::Title => query.order_by(task::Column::Title, direction),
            TaskOrderField::Progress => query.order_by(task::Column::Progress, direction),
        };
    }
    query.order_by_asc(task::Column::Id)
}

/// The viewer's visible tasks matching `filter`, in the list's order: what `tasks` pages
/// through, and what the CSV export streams.
pub fn filtered_tasks_query(
    viewer: &Viewer,
    filter: &TaskFilter,
    orders: &[TaskOrder],
) -> AppResult<Select<task::Entity>> {
    Ok(ordered(task_filter_query(viewer.user()?, filter), orders))
}

/// The viewer's visible tasks matching `filter`, ordered by the first `MAX_TASK_ORDERS` of
/// `orders` (ties broken by id), with the exact total.
/// The longest title search: a `LIKE` over every visible task costs with its pattern.
pub const SEARCH_MAX: usize = 200;

fn check_search(filter: &TaskFilter) -> AppResult<()> {
    match &filter.search {
        Some(search) if search.chars().count() > SEARCH_MAX => Err(AppError::bad_field(
            "search",
            format!("search is at most {SEARCH_MAX} characters"),
        )),
        _ => Ok(()),
    }
}

pub async fn list_tasks<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: TaskFilter,
    orders: &[TaskOrder],
    offset: u64,
    first: u64,
) -> AppResult<TaskPage> {
    let me = viewer.user()?;
    check_search(&filter)?;
    let counted = me.is_admin() && filter.is_every_main_task();
    let filtered = task_filter_query(me, &filter);
    // The page and the exact total are two statements: a window count over the whole filtered
    // set would make every page sort all of it.
    let mut tasks = ordered(filtered.clone(), orders)
        .offset(offset)
        .limit(first + 1)
        .all(db)
        .await?;
    let total = if counted {
        count_main_tasks(db).await?
    } else {
        filtered.count(db).await?
    };
    let has_next = tasks.len() as u64 > first;
    tasks.truncate(first as usize);
    Ok(TaskPage {
        tasks,
        total,
        has_next,
    })
}

/// One page of children for each parent, cut in SQL: `ROW_NUMBER()` per parent, and the
/// parent's total from `COUNT(*)` over the same partition.
async fn child_pages<C, M>(
    db: &C,
    inner: SelectStatement,
    partition: &str,
    order: &str,
    first: u64,
    offset: u64,
) -> AppResult<Vec<(M, i64)>>
where
    C: ConnectionTrait,
    M: FromQueryResult,
{
    let mut inner = inner;
    inner
        .expr_as(
            Expr::cust(format!(
                "ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order})"
            )),
            Alias::new("row_number"),
        )
        .expr_as(
            Expr::cust(format!("COUNT(*) OVER (PARTITION BY {partition})")),
            Alias::new("total_count"),
        );
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("row_number")).gt(offset as i64))
        .and_where(Expr::col(Alias::new("row_number")).lte((offset + first) as i64))
        .order_by(Alias::new("row_number"), Order::Asc)
        .to_owned();
    let statement = db.get_database_backend().build(&outer);
    let rows = db.query_all(statement).await?;
    with_totals(&rows)
}

/// Each row's model with its parent's child count, the `total_count` column.
fn with_totals<M: FromQueryResult>(rows: &[sea_orm::QueryResult]) -> AppResult<Vec<(M, i64)>> {
    rows.iter()
        .map(|row| {
            Ok((
                M::from_query_result(row, "")?,
                row.try_get::<i64>("", "total_count")?,
            ))
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()
        .map_err(AppError::from)
}

#[derive(Clone)]
pub struct ChildPage<M> {
    pub items: Vec<M>,
    pub total: u64,
}

/// Subtasks of each parent, oldest first. Whoever sees a main task sees its subtasks.
pub async fn subtask_pages<C: ConnectionTrait>(
    db: &C,
    parent_ids: &[Uuid],
    first: u64,
    offset: u64,
) -> AppResult<HashMap<Uuid, ChildPage<task::Model>>> {
    let inner = task::Entity::find()
        .filter(any_of(
            db.get_database_backend(),
            task::Column::ParentId,
            parent_ids,
        ))
        .into_query()
        .to_owned();
    let rows: Vec<(task::Model, i64)> =
        child_pages(db, inner, "parent_id", "created_at, id", first, offset).await?;
    let mut pages: HashMap<Uuid, ChildPage<task::Model>> = HashMap::new();
    for (child, total) in rows {
        if let Some(parent) = child.parent_id {
            let page = pages.entry(parent).or_insert(ChildPage {
                items: Vec::new(),
                total: total as u64,
            });
            page.items.push(child);
        }
    }
    fill_totals(
        db,
        parent_ids,
        &mut pages,
        first,
        offset,
        ChildKind::Subtasks,
    )
    .await?;
    Ok(pages)
}

/// Live (not deleted) comments of each task, oldest first.
pub async fn comment_pages<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
    first: u64,
    offset: u64,
) -> AppResult<HashMap<Uuid, ChildPage<task_comment::Model>>> {
    let rows: Vec<(task_comment::Model, i64)> = match db.get_database_backend() {
        DbBackend::Postgres => comment_pages_lateral(db, task_ids, first, offset).await?,
        _ => {
            let inner = task_comment::Entity::find()
                .filter(any_of(
                    db.get_database_backend(),
                    task_comment::Column::TaskId,
                    task_ids,
                ))
                .filter(task_comment::Column::DeletedAt.is_null())
                .into_query()
                .to_owned();
            child_pages(db, inner, "task_id", "created_at, id", first, offset).await?
        }
    };
    let mut pages: HashMap<Uuid, ChildPage<task_comment::Model>> = HashMap::new();
    for (comment, total) in rows {
        let page = pages.entry(comment.task_id).or_insert(ChildPage {
            items: Vec::new(),
            total: total as u64,
        });
        page.items.push(comment);
    }
    fill_totals(db, task_ids, &mut pages, first, offset, ChildKind::Comments).await?;
    Ok(pages)
}

/// PostgreSQL reads only each task's page (and counts its comments from the index) instead of
/// ranking every comment of every task: a task's page is a `LIMIT` on the partial index
/// `task_comments_live_in_order` (migration 000010).
async fn comment_pages_lateral<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
    first: u64,
    offset: u64,
) -> AppResult<Vec<(task_comment::Model, i64)>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    // One array parameter, so the statement's text (and its prepared plan) is the same for
    // any number of tasks.
    let sql = "SELECT c.*, n.total_count FROM unnest($1::uuid[]) AS p (task_id) \
         CROSS JOIN LATERAL (SELECT count(*) AS total_count FROM task_comments \
           WHERE task_id = p.task_id AND deleted_at IS NULL) AS n \
         CROSS JOIN LATERAL (SELECT * FROM task_comments \
           WHERE task_id = p.task_id AND deleted_at IS NULL \
           ORDER BY created_at, id LIMIT $2 OFFSET $3) AS c \
         ORDER BY c.task_id, c.created_at, c.id";
    let values: Vec<sea_orm::Value> = vec![
        uuid_array(task_ids),
        (first as i64).into(),
        (offset as i64).into(),
    ];
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    with_totals(&rows)
}

enum ChildKind {
    Subtasks,
    Comments,
    Activity,
}

/// A parent with no row in its window (no children, or a page past the end) still needs its
/// total; with `offset == 0` and `first > 0` no row simply means zero children.
async fn fill_totals<C: ConnectionTrait, M>(
    db: &C,
    parents: &[Uuid],
    pages: &mut HashMap<Uuid, ChildPage<M>>,
    first: u64,
    offset: u64,
    kind: ChildKind,
) -> AppResult<()> {
    let missing: Vec<Uuid> = parents
        .iter()
        .copied()
        .filter(|p| !pages.contains_key(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let counts: HashMap<Uuid, i64> = if offset == 0 && first > 0 {
        HashMap::new()
    } else {
        match kind {
            ChildKind::Subtasks => task::Entity::find()
                .select_only()
                .column(task::Column::ParentId)
                .column_as(task::Column::Id.count(), "n")
                .filter(task::Column::ParentId.is_in(missing.clone()))
                .group_by(task::Column::ParentId)
                .into_tuple::<(Uuid, i64)>()
                .all(db)
                .await?
                .into_iter()
                .collect(),
            ChildKind::Comments => task_comment::Entity::find()
                .select_only()
                .column(task_comment::Column::TaskId)
                .column_as(task_comment::Column::Id.count(), "n")
                .filter(task_comment::Column::TaskId.is_in(missing.clone()))
                .filter(task_comment::Column::DeletedAt.is_null())
                .group_by(task_comment::Column::TaskId)
                .into_tuple::<(Uuid, i64)>()
                .all(db)
                .await?
                .into_iter()
                .collect(),
            ChildKind::Activity => task_activity::Entity::find()
                .select_only()
                .column(task_activity::Column::TaskId)
                .column_as(task_activity::Column::Id.count(), "n")
                .filter(task_activity::Column::TaskId.is_in(missing.clone()))
                .group_by(task_activity::Column::TaskId)
                .into_tuple::<(Uuid, i64)>()
                .all(db)
                .await?
                .into_iter()
                .collect(),
        }
    };
    for parent in missing {
        pages.insert(
            parent,
            ChildPage {
                items: Vec::new(),
                total: counts.get(&parent).copied().unwrap_or(0) as u64,
            },
        );
    }
    Ok(())
}

/// Each task's executors as users, in their listed order, in one joined query.
pub async fn executors_by_task<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<UserRecord>>> {
    // The task's id, then a `UserRecord`'s columns.
    type ExecutorColumns = (
        Uuid,
        Uuid,
        String,
        String,
        Option<Uuid>,
        bool,
        DateTime<Utc>,
    );
    let rows: Vec<ExecutorColumns> = task_executor::Entity::find()
        .select_only()
        .column(task_executor::Column::TaskId)
        .columns(identity::USER_RECORD_COLUMNS)
        .inner_join(user::Entity)
        .filter(any_of(
            db.get_database_backend(),
            task_executor::Column::TaskId,
            task_ids,
        ))
        .order_by_asc(task_executor::Column::TaskId)
        .order_by_asc(task_executor::Column::Position)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_task: HashMap<Uuid, Vec<UserRecord>> = HashMap::new();
    for (task_id, id, email, name, department_id, is_active, created_at) in rows {
        let user = UserRecord::from((id, email, name, department_id, is_active, created_at));
        by_task.entry(task_id).or_default().push(user);
    }
    Ok(by_task)
}

/// One page of each task's activity, newest first (ids are time-ordered).
pub async fn activity_pages<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
    first: u64,
    offset: u64,
) -> AppResult<HashMap<Uuid, ChildPage<task_activity::Model>>> {
    let inner = task_activity::Entity::find()
        .filter(any_of(
            db.get_database_backend(),
            task_activity::Column::TaskId,
            task_ids,
        ))
        .into_query()
        .to_owned();
    let rows: Vec<(task_activity::Model, i64)> =
        child_pages(db, inner, "task_id", "id DESC", first, offset).await?;
    let mut pages: HashMap<Uuid, ChildPage<task_activity::Model>> = HashMap::new();
    for (entry, total) in rows {
        let page = pages.entry(entry.task_id).or_insert(ChildPage {
            items: Vec::new(),
            total: total as u64,
        });
        page.items.push(entry);
    }
    fill_totals(db, task_ids, &mut pages, first, offset, ChildKind::Activity).await?;
    Ok(pages)
}

pub async fn merit_of_task<C: ConnectionTrait>(
    db: &C,
    task_id: Uuid,
) -> AppResult<Vec<merit_record::Model>> {
    Ok(merit_record::Entity::find()
        .filter(merit_record::Column::TaskId.eq(task_id))
        .order_by_asc(merit_record::Column::Id)
        .all(db)
        .await?)
}

pub async fn tasks_by_id<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> AppResult<Vec<task::Model>> {
    Ok(task::Entity::find()
        .filter(any_of(db.get_database_backend(), task::Column::Id, ids))
        .all(db)
        .await?)
}

/// Those of `ids` that pass the viewer's visibility and `filter` (the console's board adds the
/// tasks waiting on the viewer's decision to the ones they work on).
pub async fn list_tasks_by_id<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: &TaskFilter,
    ids: &[Uuid],
) -> AppResult<Vec<task::Model>> {
    let me = viewer.user()?;
    check_search(filter)?;
    Ok(task::Entity::find()
        .filter(filter_condition(me, filter, Utc::now()))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(task::Column::Deadline)
        .all(db)
        .await?)
}
