//! Migrating from nothing. Every other test starts from a copy of a template migrated once per
//! run, so this is where the first start of a deployment is exercised: nodes on an empty
//! database migrate it (on PostgreSQL, together, taking turns) and create the first admin.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{empty_postgres_url, Backend, Deployment, TestApp, ADMIN_EMAIL};

async fn applied(node: &TestApp) -> anyhow::Result<usize> {
    let db = &node.state.db.conn;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    Ok(usize::try_from(row.try_get::<i64>("", "n")?)?)
}

async fn admin_signs_in(node: &TestApp) -> anyhow::Result<()> {
    let admin = node.admin().await?;
    let me = node
        .gql_ok(Some(&admin.access), "{ me { email } }", json!({}))
        .await?;
    assert_eq!(me["me"]["email"], ADMIN_EMAIL);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_an_empty_postgres_database_migrate_it_once(
) -> anyhow::Result<()> {
    let Some(url) = empty_postgres_url().await? else {
        return Ok(());
    };
    let Some(mut deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    deployment.vars.insert("DATABASE_URL".into(), url);
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;
    let all = Migrator::migrations().len();
    assert_eq!(applied(&a).await?, all);
    a.state.db.ensure_migrated().await?;
    b.state.db.ensure_migrated().await?;
    admin_signs_in(&a).await?;
    admin_signs_in(&b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_on_an_empty_sqlite_data_directory_migrates_it() -> anyhow::Result<()> {
    let Some(mut deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    // A data directory of the test's own: the harness leaves it empty (no template copy).
    deployment.vars.insert(
        "INTERLINK_DATA_DIR".into(),
        dir.path().to_string_lossy().into_owned(),
    );
    let first = deployment.node().await?;
    assert_eq!(applied(&first).await?, Migrator::migrations().len());
    admin_signs_in(&first).await?;
    drop(first);
    // A restart finds nothing to do.
    let again = deployment.node().await?;
    again.state.db.ensure_migrated().await?;
    admin_signs_in(&again).await
}
