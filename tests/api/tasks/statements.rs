//! The statements and round trips of the board and of one task, with the viewer cached (the
//! steady state of a client making requests); a round trip is a statement or a ping.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

/// The board: 50 main tasks with executors and department, 10 subtasks each with executors,
/// 5 comments each with authors, and the comment count, in a bounded number of statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_query_runs_a_bounded_number_of_statements() -> anyhow::Result<()> {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
            continue;
        };
        let admin = app.admin().await?;
        crate::viewer_cache::until_cached(&app, &admin.access).await?;
        let mut counts = Vec::new();
        let mut seeded = 0;
        for target in [5usize, 50] {
            crate::board::seed_board(&app, &admin.user_id, target - seeded).await?;
            seeded = target;
            let (before, trips_before, viewers_before) = (
                app.state.db.statement_count(),
                app.state.db.round_trip_count(),
                app.state.viewers.reads(),
            );
            let data = app
                .gql_ok(Some(&admin.access), crate::board::BOARD, json!({}))
                .await?;
            // The viewer is read again when an identity event of the set-up empties its cache
            // meanwhile: not the board's own cost.
            let viewer_reads = app.state.viewers.reads() - viewers_before;
            let statements = app.state.db.statement_count() - before - viewer_reads;
            let round_trips = app.state.db.round_trip_count() - trips_before - viewer_reads;
            assert_eq!(round_trips, statements, "a ping before a statement");
            assert_eq!(data["tasks"]["totalCount"], target as u64);
            let first = &data["tasks"]["edges"][0]["node"];
            assert_eq!(
                first["subtasks"]["edges"].as_array().map(Vec::len),
                Some(10)
            );
            assert_eq!(first["comments"]["edges"].as_array().map(Vec::len), Some(5));
            assert_eq!(first["comments"]["totalCount"], 6);
            assert!(first["executors"][0]["name"].is_string());
            assert!(first["department"]["name"].is_string());
            counts.push(statements);
        }
        println!("board statements on {backend:?}: {counts:?}");
        assert_eq!(
            counts[0], counts[1],
            "statement count grows with the page: {counts:?}"
        );
        // The page, the count, executors, departments, subtask pages, their executors, comment
        // pages and their authors: each relation once for the whole page.
        assert_eq!(counts[1], 8, "{counts:?}");
    }
    Ok(())
}

/// One task and its executors: the task (its visibility in the same statement) and the
/// executors, read at once rather than after the loaders' batching delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_and_its_executors_take_two_statements() -> anyhow::Result<()> {
    const POINT: &str = "query($id: ID!) { task(id: $id) { id title executors { name } } }";
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
            continue;
        };
        let admin = app.admin().await?;
        crate::board::seed_board(&app, &admin.user_id, 1).await?;
        let board = app
            .gql_ok(Some(&admin.access), crate::board::BOARD, json!({}))
            .await?;
        let id = board["tasks"]["edges"][0]["node"]["id"].clone();
        crate::viewer_cache::until_cached(&app, &admin.access).await?;
        let (before, trips_before, viewers_before) = (
            app.state.db.statement_count(),
            app.state.db.round_trip_count(),
            app.state.viewers.reads(),
        );
        let data = app
            .gql_ok(Some(&admin.access), POINT, json!({ "id": id }))
            .await?;
        let viewer_reads = app.state.viewers.reads() - viewers_before;
        let statements = app.state.db.statement_count() - before - viewer_reads;
        let round_trips = app.state.db.round_trip_count() - trips_before - viewer_reads;
        assert!(data["task"]["executors"][0]["name"].is_string(), "{data}");
        println!("point statements on {backend:?}: {statements}, round trips {round_trips}");
        assert_eq!(statements, 2, "{backend:?}");
        assert_eq!(round_trips, 2, "{backend:?}");
    }
    Ok(())
}
