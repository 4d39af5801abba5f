//! The response cache: a repeated query is answered without the database, and no read after a
//! write, on this node or another, returns the old answer.

use serde_json::{json, Value};

use crate::helpers::{str_at, Backend, Deployment, TestApp};
use crate::{on_both_backends, spawn_or_skip};

const CACHED: &[(&str, &str)] = &[("INTERLINK_RESPONSE_CACHE", "true")];
const BOARD: &str = "{ tasks(first: 10) { totalCount edges { node { id title } } } }";

async fn make_task(app: &TestApp, token: &str, title: &str) -> anyhow::Result<String> {
    let category = app
        .gql_ok(
            Some(token),
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }",
            json!({ "i": { "code": "CACHED", "name": "Cached" } }),
        )
        .await?;
    let category = str_at(&category, "/createTaskCategory/id")?;
    let task = app
        .gql_ok(
            Some(token),
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
            json!({ "i": { "categoryId": category, "title": title } }),
        )
        .await?;
    str_at(&task, "/createTask/id")
}

async fn titles(app: &TestApp, token: &str) -> anyhow::Result<(Value, u64)> {
    let before = app.state.db.statement_count();
    let data = app.gql_ok(Some(token), BOARD, json!({})).await?;
    Ok((data, app.state.db.statement_count() - before))
}

on_both_backends!(repeated_queries_are_cached_and_writes_are_seen_at_once);

async fn repeated_queries_are_cached_and_writes_are_seen_at_once(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, CACHED);
    let admin = app.admin().await?;
    let id = make_task(&app, &admin.access, "First title").await?;
    // The events of the writes above reach the cache through the relay, and each one moves the
    // data version: a repeat right after the first read may still miss. Once they are through,
    // a repeat is answered without the database.
    let (first, miss) = titles(&app, &admin.access).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (again, hit) = titles(&app, &admin.access).await?;
        assert_eq!(first, again);
        if hit < miss {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "repeats kept running {hit} statements, as many as the first ({miss})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A write through the API: the very next read sees it.
    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { updateTask(id: $id, version: 1, input: { title: \"Second title\" }) { version } }",
        json!({ "id": id }),
    )
    .await?;
    let (after, _) = titles(&app, &admin.access).await?;
    assert_eq!(
        after["tasks"]["edges"][0]["node"]["title"], "Second title",
        "{after}"
    );

    // A change announced by an event (as a job's would be) invalidates too.
    use sea_orm::ConnectionTrait;
    let db = &app.state.db.conn;
    db.execute(interlink::platform::db::sql(
        db.get_database_backend(),
        "UPDATE tasks SET title = 'Third title' WHERE id = $1",
        [uuid::Uuid::parse_str(&id)?.into()],
    ))
    .await?;
    let event = interlink::domains::notifications::model::NotificationEvent {
        id: uuid::Uuid::now_v7(),
        user_id: uuid::Uuid::now_v7(),
        kind: interlink::domains::notifications::model::NotificationKind::Commented,
        title: "x".into(),
        body: "x".into(),
        subject_type: None,
        subject_id: None,
        at: chrono::Utc::now(),
    };
    interlink::platform::work::write(&app.state.db, async |work| {
        work.emit(&event);
        Ok::<_, sea_orm::DbErr>(())
    })
    .await?;
    // The relay publishes it, and the cache hears it: poll until the new title shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (third, _) = titles(&app, &admin.access).await?;
        if third["tasks"]["edges"][0]["node"]["title"] == "Third title" {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "still cached: {third}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Another viewer never gets this one's cached answer.
    let email = crate::helpers::unique_email("cache");
    app.create_user(&admin.access, &email, "a good password")
        .await?;
    let other = app.login(&email, "a good password").await?;
    let (theirs, _) = titles(&app, &other.access).await?;
    assert_eq!(theirs["tasks"]["totalCount"], 0, "{theirs}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_seen_by_the_cache_of_another() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Postgres, CACHED).await? else {
        return Ok(());
    };
    if !deployment.vars.contains_key("REDIS_URL") {
        return Ok(());
    }
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;
    let admin = a.admin().await?;
    let id = make_task(&a, &admin.access, "Before").await?;
    // As above: once the setup's events are through the relay, a repeat is a hit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        titles(&a, &admin.access).await?;
        let (cached, hit) = titles(&a, &admin.access).await?;
        assert_eq!(cached["tasks"]["edges"][0]["node"]["title"], "Before");
        if hit <= 2 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "only the viewer is read on a hit, not {hit} statements"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    b.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { updateTask(id: $id, version: 1, input: { title: \"After\" }) { version } }",
        json!({ "id": id }),
    )
    .await?;
    let (fresh, _) = titles(&a, &admin.access).await?;
    assert_eq!(
        fresh["tasks"]["edges"][0]["node"]["title"], "After",
        "{fresh}"
    );
    Ok(())
}
