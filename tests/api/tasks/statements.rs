//! The statement bound of the board query.

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
        let mut counts = Vec::new();
        let mut seeded = 0;
        for target in [5usize, 50] {
            crate::board::seed_board(&app, &admin.user_id, target - seeded).await?;
            seeded = target;
            let before = app.state.db.statement_count();
            let data = app
                .gql_ok(Some(&admin.access), crate::board::BOARD, json!({}))
                .await?;
            let statements = app.state.db.statement_count() - before;
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
        assert!(counts[1] <= 10, "{counts:?}");
    }
    Ok(())
}
