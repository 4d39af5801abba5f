//! Grouped statistics: equal to what the lists show each viewer, known approval decision
//! times, rollups equal to base rows, and refused input.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;
use crate::tasks::{company, person, Company};

mod approvals;

on_both_backends!(
    task_stats_match_the_list_for_each_viewer,
    rollups_equal_base_rows,
    bad_input_is_refused,
);

pub(super) const SUBMIT: &str = "mutation($id: ID!) { submitTask(id: $id) { id } }";
const REPORT: &str =
    "mutation($id: ID!, $p: Int!) { reportTaskProgress(taskId: $id, progress: $p) { id } }";
const CONFIRM: &str = "mutation($id: ID!) { confirmTaskProgress(taskId: $id) { status } }";

/// North tasks by the company's initiator (one done, one in progress, one overdue, one with
/// cash output) and two open tasks of a department the observer cannot see.
async fn seed(c: &Company) -> anyhow::Result<()> {
    let quick = c.quick_category.clone();
    let done = c
        .draft(&quick, json!({ "deadline": "2027-01-15T12:00:00Z" }))
        .await?;
    let working = c
        .draft(&quick, json!({ "deadline": "2027-02-10T12:00:00Z" }))
        .await?;
    let late = c
        .draft(&quick, json!({ "deadline": "2027-01-20T12:00:00Z" }))
        .await?;
    let cash = c
        .draft(
            &quick,
            json!({ "hasCashOutput": true, "cashOutputValue": "120.50" }),
        )
        .await?;
    for id in [&done, &working, &late, &cash] {
        c.ok_as(&c.initiator, SUBMIT, json!({ "id": id })).await?;
    }
    c.ok_as(&c.executor, REPORT, json!({ "id": done, "p": 100 }))
        .await?;
    c.ok_as(&c.confirmer, CONFIRM, json!({ "id": done }))
        .await?;
    c.ok_as(&c.executor, REPORT, json!({ "id": working, "p": 40 }))
        .await?;
    c.ok_as(&c.confirmer, CONFIRM, json!({ "id": working }))
        .await?;
    // A deadline already past: the API refuses to set one, so the row is moved.
    entities::task::Entity::update_many()
        .col_expr(
            entities::task::Column::Deadline,
            Expr::value(Utc::now() - Duration::days(3)),
        )
        .filter(entities::task::Column::Id.eq(uuid::Uuid::parse_str(&late)?))
        .exec(&c.app.state.db.conn)
        .await?;

    let admin = Some(c.admin.access.as_str());
    let east = str_at(
        &c.app
            .gql_ok(
                admin,
                "mutation { createDepartment(input: { name: \"East\" }) { id } }",
                json!({}),
            )
            .await?,
        "/createDepartment/id",
    )?;
    let creator = person(&c.app, &east).await?;
    let role = str_at(
        &c.app
            .gql_ok(
                admin,
                "mutation { createRole(input: { name: \"East creator\", permissions: [\"task.create_main\"] }) { id } }",
                json!({}),
            )
            .await?,
        "/createRole/id",
    )?;
    c.app
        .gql_ok(
            admin,
            "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
            json!({ "u": creator.user_id, "r": role, "d": east }),
        )
        .await?;
    for deadline in ["2027-01-05T00:00:00Z", "2027-03-01T00:00:00Z"] {
        c.ok_as(
            &creator,
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
            json!({ "i": { "categoryId": quick, "title": "East work", "executorIds": [creator.user_id],
                "deadline": deadline, "meritPoints": 5 } }),
        )
        .await?;
    }
    Ok(())
}

type Measures = BTreeMap<(Option<String>, Option<String>), [i64; 5]>;

/// (count, done, overdue, merit, cash in cents) per (department, deadline month), from the list.
async fn from_list(c: &Company, who: &crate::helpers::Session) -> anyhow::Result<Measures> {
    let list = c
        .ok_as(
            who,
            "{ tasks(filter: { mainOnly: true }, first: 100) { totalCount edges { node {
                department { id } deadline status cashOutputValue meritAwards { points } } } } }",
            json!({}),
        )
        .await?;
    let mut out = Measures::new();
    for edge in list["tasks"]["edges"].as_array().into_iter().flatten() {
        let node = &edge["node"];
        let department = node["department"]["id"].as_str().map(str::to_owned);
        let deadline = node["deadline"].as_str();
        let month = deadline.map(|d| d[..7].to_owned());
        let status = node["status"].as_str().unwrap_or_default();
        let overdue = deadline
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .is_some_and(|d| d < Utc::now() && (status == "OPEN" || status == "IN_PROGRESS"));
        let merit: i64 = node["meritAwards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["points"].as_i64())
            .sum();
        let cash = node["cashOutputValue"]
            .as_str()
            .map(|m| m.replace('.', "").parse::<i64>())
            .transpose()?
            .unwrap_or(0);
        let row = out.entry((department, month)).or_default();
        row[0] += 1;
        row[1] += i64::from(status == "DONE");
        row[2] += i64::from(overdue);
        row[3] += merit;
        row[4] += cash;
    }
    Ok(out)
}

const STATS: &str = "query($g: [TaskDimension!]!) { taskStats(filter: { mainOnly: true }, groupBy: $g) {
    rows { department { id } deadlineMonth count done overdue meritTotal cashOutputTotal avgProgress }
    total { count done overdue meritTotal cashOutputTotal }
    asOf } }";

fn cents(money: &Value) -> anyhow::Result<i64> {
    Ok(money.as_str().unwrap_or("0").replace('.', "").parse()?)
}

async fn from_stats(c: &Company, who: &crate::helpers::Session) -> anyhow::Result<Measures> {
    let stats = c
        .ok_as(who, STATS, json!({ "g": ["DEPARTMENT", "DEADLINE_MONTH"] }))
        .await?;
    let mut out = Measures::new();
    for row in stats["taskStats"]["rows"].as_array().into_iter().flatten() {
        let key = (
            row["department"]["id"].as_str().map(str::to_owned),
            row["deadlineMonth"].as_str().map(str::to_owned),
        );
        let measures = [
            row["count"].as_i64().unwrap_or(-1),
            row["done"].as_i64().unwrap_or(-1),
            row["overdue"].as_i64().unwrap_or(-1),
            row["meritTotal"].as_i64().unwrap_or(-1),
            cents(&row["cashOutputTotal"])?,
        ];
        assert!(out.insert(key, measures).is_none(), "a group listed twice");
    }
    let total = &stats["taskStats"]["total"];
    let summed: i64 = out.values().map(|m| m[0]).sum();
    assert_eq!(total["count"].as_i64(), Some(summed));
    Ok(out)
}

async fn task_stats_match_the_list_for_each_viewer(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    seed(&c).await?;
    let mut seen = Vec::new();
    for who in [&c.admin, &c.observer] {
        let listed = from_list(&c, who).await?;
        let stats = from_stats(&c, who).await?;
        assert_eq!(stats, listed, "taskStats against the list");
        seen.push(listed);
    }
    assert_ne!(seen[0], seen[1], "the two viewers see different numbers");

    // By executor: each executor's row counts the listed tasks they execute; the total counts
    // every task once.
    let listed = c
        .ok_as(
            &c.admin,
            "{ tasks(filter: { mainOnly: true }, first: 100) { edges { node { executors { id } } } } }",
            json!({}),
        )
        .await?;
    let mut per_executor: BTreeMap<String, i64> = BTreeMap::new();
    for edge in listed["tasks"]["edges"].as_array().into_iter().flatten() {
        for e in edge["node"]["executors"].as_array().into_iter().flatten() {
            *per_executor.entry(str_at(e, "/id")?).or_default() += 1;
        }
    }
    let by_executor = c
        .ok_as(
            &c.admin,
            "{ taskStats(filter: { mainOnly: true }, groupBy: [EXECUTOR]) { rows { executor { id } count } total { count } } }",
            json!({}),
        )
        .await?;
    let mut stats_executor: BTreeMap<String, i64> = BTreeMap::new();
    for row in by_executor["taskStats"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
    {
        stats_executor.insert(
            str_at(row, "/executor/id")?,
            row["count"].as_i64().unwrap_or(-1),
        );
    }
    assert_eq!(stats_executor, per_executor);
    assert_eq!(by_executor["taskStats"]["total"]["count"], 6);
    let admin_total: i64 = seen[0].values().map(|m| m[0]).sum();
    assert_eq!(admin_total, 6);
    let overdue: i64 = seen[1].values().map(|m| m[2]).sum();
    assert_eq!(overdue, 1);
    Ok(())
}

async fn bad_input_is_refused(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let admin = &c.admin;
    let twice = c
        .as_(admin, STATS, json!({ "g": ["STATUS", "STATUS"] }))
        .await?;
    assert_eq!(error_code(&twice), Some("BAD_USER_INPUT"));
    assert_eq!(twice["errors"][0]["extensions"]["field"], "groupBy");
    let five = c
        .as_(
            admin,
            STATS,
            json!({ "g": ["STATUS", "PRIORITY", "CATEGORY", "DEPARTMENT", "EXECUTOR"] }),
        )
        .await?;
    assert_eq!(error_code(&five), Some("BAD_USER_INPUT"));
    let backwards = c
        .as_(
            admin,
            "{ approvalStats(groupBy: [FLOW], from: \"2026-02-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { asOf } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&backwards), Some("BAD_USER_INPUT"));
    // An app with the tasks scope but not REPORTS_READ is refused the statistics.
    let (_, key) = crate::apps::app_with_key(&c.app, &admin.access, &["TASKS_READ"], None).await?;
    let refused = c
        .app
        .http
        .post(c.app.url("/graphql"))
        .header("x-api-key", key)
        .json(&json!({ "query": "{ taskStats(groupBy: [STATUS]) { total { count } } }" }))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"));
    Ok(())
}

async fn rollups_equal_base_rows(backend: Backend) -> anyhow::Result<()> {
    use interlink::domains::reports::model::{Source, TaskDimension as D, TaskStatsQuery};
    use interlink::domains::reports::service;
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    seed(&c).await?;
    let db = &c.app.state.db.conn;
    // Spread the tasks over past days (several months), last changed then, so that the
    // rollups hold them; every other one done, for percentiles over several values.
    let tasks = entities::task::Entity::find().all(db).await?;
    for (n, t) in tasks.iter().enumerate() {
        let created = Utc::now() - Duration::days(3 + n as i64 * 11);
        let mut update = entities::task::Entity::update_many()
            .col_expr(entities::task::Column::CreatedAt, Expr::value(created))
            .col_expr(entities::task::Column::UpdatedAt, Expr::value(created));
        if n % 2 == 1 {
            update = update
                .col_expr(entities::task::Column::Status, Expr::value("DONE"))
                .col_expr(
                    entities::task::Column::CompletedAt,
                    Expr::value(Utc::now() + Duration::minutes(7 * n as i64)),
                );
        }
        if n % 2 == 0 {
            // Open and overdue: past months' deadlines are counted from the rollups, this
            // month's from base rows.
            let deadline = Utc::now() - Duration::days(if n % 4 == 0 { 40 } else { 0 });
            update = update.col_expr(
                entities::task::Column::Deadline,
                Expr::value(deadline - Duration::minutes(5)),
            );
        }
        update
            .filter(entities::task::Column::Id.eq(t.id))
            .exec(db)
            .await?;
    }
    let refresh = async || {
        interlink::platform::work::write(&c.app.state.db, async |work| {
            service::refresh(work, Utc::now(), true).await
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    // A task with two executors (in two EXECUTOR groups, once in the total) and one with none
    // (the null executor's group).
    let second = uuid::Uuid::parse_str(&c.second_executor.user_id)?;
    let shared = tasks
        .get(2)
        .ok_or_else(|| anyhow::anyhow!("the seed has three tasks"))?;
    entities::task_executor::Entity::delete_many()
        .filter(entities::task_executor::Column::TaskId.eq(shared.id))
        .filter(entities::task_executor::Column::UserId.eq(second))
        .exec(db)
        .await?;
    entities::task_executor::Entity::insert(entities::task_executor::ActiveModel {
        task_id: sea_orm::Set(shared.id),
        user_id: sea_orm::Set(second),
        position: sea_orm::Set(9),
    })
    .exec(db)
    .await?;
    let unstaffed = tasks
        .get(3)
        .ok_or_else(|| anyhow::anyhow!("the seed has four tasks"))?;
    entities::task_executor::Entity::delete_many()
        .filter(entities::task_executor::Column::TaskId.eq(unstaffed.id))
        .exec(db)
        .await?;
    refresh().await?;
    let admin = interlink::domains::identity::service::viewer_for_user(
        db,
        uuid::Uuid::parse_str(&c.admin.user_id)?,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:?}"))?
    .ok_or_else(|| anyhow::anyhow!("no admin"))?;
    let viewer = interlink::auth::Viewer::User(std::sync::Arc::new(admin));
    let groupings: [&[D]; 7] = [
        &[],
        &[D::Department, D::DeadlineMonth],
        &[D::Status, D::Category],
        &[D::Priority, D::CompletedMonth, D::ReviewStatus],
        &[D::DeadlineMonth],
        &[D::Executor],
        &[D::Executor, D::Status],
    ];
    let mut from_rollups = 0;
    for group_by in groupings {
        let query = |source| TaskStatsQuery {
            group_by: group_by.to_vec(),
            source,
            ..Default::default()
        };
        let rolled = service::task_stats(db, &viewer, query(Source::Auto))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let base = service::task_stats(db, &viewer, query(Source::BaseRows))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(rolled.rows, base.rows, "{group_by:?}");
        assert_eq!(rolled.total, base.total, "{group_by:?}");
        from_rollups += i32::from(rolled.as_of < base.as_of);
        if group_by.is_empty() {
            assert!(rolled.total.overdue >= 2, "{:?}", rolled.total);
        }
        if group_by == [D::Executor] {
            let in_groups: i64 = rolled.rows.iter().map(|r| r.count).sum();
            assert_eq!(in_groups, rolled.total.count + 1, "the shared task twice");
            assert!(rolled.rows.iter().any(|r| r.key.executor.is_none()));
        }
    }
    assert_eq!(
        from_rollups, 7,
        "every grouping was answered from the rollups"
    );
    let rolled: i64 = sea_orm::ConnectionTrait::query_one(
        db,
        sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(\"count\") AS BIGINT) AS n FROM task_rollup_days",
        ),
    )
    .await?
    .map(|r| r.try_get::<i64>("", "n"))
    .transpose()?
    .unwrap_or(0);
    assert_eq!(rolled, tasks.len() as i64);
    let months: i64 = sea_orm::ConnectionTrait::query_one(
        db,
        sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(\"count\") AS BIGINT) AS n FROM task_rollup_months",
        ),
    )
    .await?
    .map(|r| r.try_get::<i64>("", "n"))
    .transpose()?
    .unwrap_or(0);
    assert_eq!(months, tasks.len() as i64, "every day is in its month");
    let pairs: i64 = sea_orm::ConnectionTrait::query_one(
        db,
        sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(\"count\") AS BIGINT) AS n FROM task_rollup_executor_months",
        ),
    )
    .await?
    .map(|r| r.try_get::<i64>("", "n"))
    .transpose()?
    .unwrap_or(0);
    let staffed = entities::task_executor::Entity::find().count(db).await? as i64;
    assert_eq!(
        pairs,
        staffed + 1,
        "each executor's rows, and the unstaffed task"
    );

    let compare = async |query: &dyn Fn(Source) -> TaskStatsQuery| -> anyhow::Result<bool> {
        let rolled = service::task_stats(db, &viewer, query(Source::Auto))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let base = service::task_stats(db, &viewer, query(Source::BaseRows))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert!(rolled.as_of < base.as_of, "answered from the rollups");
        Ok(rolled.rows == base.rows && rolled.total == base.total)
    };
    // Windows that start and end inside months: those months come from the daily rollups.
    let midnight = |days: i64| -> anyhow::Result<chrono::DateTime<Utc>> {
        Ok((Utc::now() - Duration::days(days))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| anyhow::anyhow!("midnight"))?
            .and_utc())
    };
    for (from, to) in [(45, 2), (70, 20), (16, 1)] {
        for group_by in [vec![], vec![D::Department, D::Status], vec![D::Executor]] {
            let window = interlink::domains::reports::model::Window {
                from: Some(midnight(from)?),
                to: Some(midnight(to)?),
            };
            let query = |source| TaskStatsQuery {
                group_by: group_by.clone(),
                window,
                source,
                ..Default::default()
            };
            assert!(compare(&query).await?, "window {from}..{to} {group_by:?}");
        }
    }
    let by_status = |source| TaskStatsQuery {
        group_by: vec![D::Status, D::Priority],
        source,
        ..Default::default()
    };
    // A change the refresh sees (it moves `updated_at`) is answered from base rows at once,
    // though its month is already rolled up.
    let old = tasks
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("the seed has two tasks"))?;
    entities::task::Entity::update_many()
        .col_expr(entities::task::Column::Priority, Expr::value(9))
        .col_expr(entities::task::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(entities::task::Column::Id.eq(old.id))
        .exec(db)
        .await?;
    assert!(compare(&by_status).await?, "a touched day reads base rows");
    // A change behind the refresh's back (what the nightly reconcile is for) shows that the
    // rollups, not base rows, answered: until the reconcile, the two differ. 58 days back is
    // always a whole past month, and never the touched day's.
    let older = tasks
        .get(5)
        .ok_or_else(|| anyhow::anyhow!("the seed has six tasks"))?;
    entities::task::Entity::update_many()
        .col_expr(entities::task::Column::Priority, Expr::value(8))
        .filter(entities::task::Column::Id.eq(older.id))
        .exec(db)
        .await?;
    assert!(
        !compare(&by_status).await?,
        "the month came from its rollup"
    );
    refresh().await?;
    assert!(
        compare(&by_status).await?,
        "the reconcile caught the change"
    );
    Ok(())
}
