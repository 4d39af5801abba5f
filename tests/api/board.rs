//! The benchmark's board query, and a fast direct seeding of the rows it reads.

use chrono::{Duration, Utc};
use entities::{department, task, task_category, task_comment, task_executor};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, Statement,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

pub const BOARD: &str =
    "{ tasks(first: 50, filter: { mainOnly: true }, orderBy: [{ field: DEADLINE }]) {
  totalCount
  edges { node {
    id title deadline
    executors { name }
    department { name }
    subtasks(first: 10) { totalCount edges { node { title executors { name } } } }
    comments(first: 5) { totalCount edges { node { body author { name } } } }
  } }
} }";

fn task_row(
    category: Uuid,
    parent: Option<Uuid>,
    department: Uuid,
    user: Uuid,
    n: usize,
) -> task::ActiveModel {
    let now = Utc::now();
    task::ActiveModel {
        id: Set(Uuid::now_v7()),
        category_id: Set(category),
        parent_id: Set(parent),
        title: Set(format!("task {n}")),
        key_points: Set(String::new()),
        initiator_id: Set(user),
        department_id: Set(Some(department)),
        is_team_task: Set(false),
        confirmer_id: Set(None),
        has_cash_output: Set(false),
        cash_output_minor: Set(None),
        currency: Set("CNY".into()),
        start_at: Set(None),
        deadline: Set(Some(now + Duration::days(n as i64 % 30))),
        priority: Set(3),
        progress: Set(0),
        reported_progress: Set(None),
        merit_points: Set(0),
        review_status: Set("APPROVED".into()),
        rejection_reason: Set(None),
        status: Set("OPEN".into()),
        custom_fields: Set(serde_json::json!({})),
        version: Set(1),
        approval_instance_id: Set(None),
        overdue: Set(false),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Adds `count` main tasks, each with one executor, 10 subtasks (each with an executor) and
/// 6 comments.
pub async fn seed_board(app: &TestApp, user: &str, count: usize) -> anyhow::Result<()> {
    let db = &app.state.db.conn;
    let user = Uuid::parse_str(user)?;
    let now = Utc::now();
    let department_id = Uuid::now_v7();
    department::ActiveModel {
        id: Set(department_id),
        name: Set(format!("Board {department_id}")),
        parent_id: Set(None),
        path: Set(format!("/{department_id}/")),
        head_user_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let category = Uuid::now_v7();
    task_category::ActiveModel {
        id: Set(category),
        code: Set(format!("B{}", &category.simple().to_string()[..12]).to_uppercase()),
        name: Set("Board".into()),
        default_priority: Set(3),
        custom_fields_schema: Set(None),
        approval_flow_id: Set(None),
        assignment_strategy: Set("MANUAL".into()),
        pool_department_id: Set(None),
        pool_role: Set(None),
        round_robin_counter: Set(0),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    for n in 0..count {
        let main = task_row(category, None, department_id, user, n);
        let main_id = main.id.clone().unwrap();
        let subtasks: Vec<task::ActiveModel> = (0..10)
            .map(|s| task_row(category, Some(main_id), department_id, user, s))
            .collect();
        let sub_ids: Vec<Uuid> = subtasks.iter().map(|t| t.id.clone().unwrap()).collect();
        task::Entity::insert(main).exec(db).await?;
        task::Entity::insert_many(subtasks).exec(db).await?;
        let executors =
            std::iter::once(main_id)
                .chain(sub_ids)
                .map(|task_id| task_executor::ActiveModel {
                    task_id: Set(task_id),
                    user_id: Set(user),
                    position: Set(0),
                });
        task_executor::Entity::insert_many(executors)
            .exec(db)
            .await?;
        let comments = (0..6).map(|c| task_comment::ActiveModel {
            id: Set(Uuid::now_v7()),
            task_id: Set(main_id),
            author_id: Set(user),
            body: Set(format!("comment {c}")),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        });
        task_comment::Entity::insert_many(comments).exec(db).await?;
    }
    Ok(())
}

async fn sql_count(app: &TestApp, sql: &str) -> anyhow::Result<i64> {
    let db = &app.state.db.conn;
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row from {sql}"))?;
    Ok(row.try_get("", "n")?)
}

/// The board's `totalCount` (served from the trigger-kept counter), the counter itself, and a
/// plain `COUNT(*)`, which must all agree.
async fn main_task_counts(app: &TestApp, admin: &str) -> anyhow::Result<[i64; 3]> {
    let data = app
        .gql_ok(
            Some(admin),
            "{ tasks(first: 1, filter: { mainOnly: true }) { totalCount } }",
            json!({}),
        )
        .await?;
    Ok([
        data["tasks"]["totalCount"].as_i64().unwrap_or(-1),
        sql_count(
            app,
            "SELECT CAST(COALESCE(SUM(main_tasks), 0) AS BIGINT) AS n FROM task_counts",
        )
        .await?,
        sql_count(
            app,
            "SELECT COUNT(*) AS n FROM tasks WHERE parent_id IS NULL",
        )
        .await?,
    ])
}

on_both_backends!(the_main_task_count_stays_exact_through_writes_behind_the_api);

async fn the_main_task_count_stays_exact_through_writes_behind_the_api(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    seed_board(&app, &admin.user_id, 3).await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [3; 3]);

    let db = &app.state.db.conn;
    let mains: Vec<Uuid> = task::Entity::find()
        .filter(task::Column::ParentId.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    // A main task moved under another stops counting, and counts again when moved back.
    let moved = |parent: Option<Uuid>| {
        task::Entity::update_many()
            .col_expr(task::Column::ParentId, Expr::value(parent))
            .filter(task::Column::Id.eq(mains[2]))
            .exec(db)
    };
    moved(Some(mains[0])).await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [2; 3]);
    moved(None).await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [3; 3]);
    // Other columns changing leave it alone; so do subtasks coming and going.
    task::Entity::update_many()
        .col_expr(task::Column::Title, Expr::value("renamed"))
        .exec(db)
        .await?;
    let category = task::Entity::find_by_id(mains[0])
        .one(db)
        .await?
        .map(|t| t.category_id)
        .ok_or_else(|| anyhow::anyhow!("main task vanished"))?;
    let user = Uuid::parse_str(&admin.user_id)?;
    let department = Uuid::now_v7();
    department::ActiveModel {
        id: Set(department),
        name: Set("Counted".into()),
        parent_id: Set(None),
        path: Set(format!("/{department}/")),
        head_user_id: Set(None),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    let extra_main = task_row(category, None, department, user, 1);
    let extra_main_id = extra_main.id.clone().unwrap();
    let extra_sub = task_row(category, Some(mains[1]), department, user, 2);
    let extra_sub_id = extra_sub.id.clone().unwrap();
    task::Entity::insert_many([extra_main, extra_sub])
        .exec(db)
        .await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [4; 3]);
    task::Entity::delete_by_id(extra_sub_id).exec(db).await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [4; 3]);
    task::Entity::delete_by_id(extra_main_id).exec(db).await?;
    assert_eq!(main_task_counts(&app, &admin.access).await?, [3; 3]);

    // A narrower filter is counted directly, not from the counter.
    let searched = app
        .gql_ok(
            Some(&admin.access),
            "{ tasks(first: 1, filter: { mainOnly: true, search: \"renamed\", departmentId: null }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(searched["tasks"]["totalCount"], 3);
    let none = app
        .gql_ok(
            Some(&admin.access),
            "{ tasks(first: 1, filter: { mainOnly: true, search: \"no such title\" }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(none["tasks"]["totalCount"], 0);
    Ok(())
}
