//! The viewer cache: a repeated request is authenticated without the database, and a revoked
//! grant, a deactivation or a password change takes effect on the very next request, on the
//! node that made the change and on any other.

use serde_json::json;

use crate::helpers::{error_code, str_at, unique_email, Backend, Deployment, Session, TestApp};
use crate::{on_both_backends, spawn_or_skip};

/// Needs `scheduler.manage`, and reads nothing else about the viewer.
const QUEUES: &str = "{ queues { name } }";
const PASSWORD: &str = "a good password";

/// A new user holding a role with `scheduler.manage`: their session, email and grant's id.
async fn operator(app: &TestApp, admin: &str) -> anyhow::Result<(Session, String, String)> {
    let email = unique_email("operator");
    let user = app.create_user(admin, &email, PASSWORD).await?;
    let role = app
        .gql_ok(
            Some(admin),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": format!("Operator {}", uuid::Uuid::now_v7()), "permissions": ["scheduler.manage"] } }),
        )
        .await?;
    let grant = app
        .gql_ok(
            Some(admin),
            "mutation($u: ID!, $r: ID!) { grantRole(userId: $u, roleId: $r) { id } }",
            json!({ "u": user, "r": str_at(&role, "/createRole/id")? }),
        )
        .await?;
    let session = app.login(&email, PASSWORD).await?;
    Ok((session, email, str_at(&grant, "/grantRole/id")?))
}

/// Statements one request of `token` runs: with the viewer cached, `__typename` runs none.
async fn statements_of(app: &TestApp, token: &str) -> anyhow::Result<u64> {
    let before = app.state.db.statement_count();
    app.gql_ok(Some(token), "{ __typename }", json!({})).await?;
    Ok(app.state.db.statement_count() - before)
}

/// Waits until `token`'s viewer is served from the cache. The identity events of the set-up
/// reach each node's cache through the relay a moment later, and each empties it, so the
/// first requests may still read the viewer.
pub(crate) async fn until_cached(app: &TestApp, token: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let statements = statements_of(app, token).await?;
        if statements == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the viewer is still read: {statements} statements for __typename"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn allowed(app: &TestApp, token: &str) -> anyhow::Result<bool> {
    let body = app.gql(Some(token), QUEUES, json!({})).await?;
    match error_code(&body) {
        None => Ok(true),
        Some("FORBIDDEN") => Ok(false),
        Some(other) => anyhow::bail!("unexpected {other}: {body}"),
    }
}

/// The HTTP status of `token`'s next request.
async fn status_of(app: &TestApp, token: &str) -> anyhow::Result<u16> {
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

on_both_backends!(a_revoked_grant_a_deactivation_and_a_new_password_apply_to_the_next_request);

async fn a_revoked_grant_a_deactivation_and_a_new_password_apply_to_the_next_request(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let (operator, email, grant) = operator(&app, &admin.access).await?;

    assert!(allowed(&app, &operator.access).await?);
    until_cached(&app, &operator.access).await?;
    assert!(allowed(&app, &operator.access).await?);

    app.gql_ok(
        Some(&admin.access),
        "mutation($g: ID!) { revokeRole(grantId: $g) }",
        json!({ "g": grant }),
    )
    .await?;
    assert!(
        !allowed(&app, &operator.access).await?,
        "revoked, still allowed"
    );

    // A new password ends the old token at once, cached or not.
    assert_eq!(status_of(&app, &operator.access).await?, 200);
    app.gql_ok(
        Some(&operator.access),
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": PASSWORD, "n": "another good password" }),
    )
    .await?;
    assert_eq!(status_of(&app, &operator.access).await?, 401);

    // Deactivation ends a session whose viewer was cached a moment before.
    let renewed = app.login(&email, "another good password").await?;
    until_cached(&app, &renewed.access).await?;
    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": operator.user_id }),
    )
    .await?;
    assert_eq!(status_of(&app, &renewed.access).await?, 401);
    Ok(())
}

/// A change made on one node reaches the viewers cached on another at once: the epoch is shared
/// through Redis and bumped before the changing request answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_on_one_node_is_refused_at_once_on_another() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    if !deployment.vars.contains_key("REDIS_URL") {
        return Ok(());
    }
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;
    let admin = a.admin().await?;
    let (operator, _, grant) = operator(&a, &admin.access).await?;
    for node in [&a, &b] {
        assert!(allowed(node, &operator.access).await?);
        until_cached(node, &operator.access).await?;
    }

    b.gql_ok(
        Some(&admin.access),
        "mutation($g: ID!) { revokeRole(grantId: $g) }",
        json!({ "g": grant }),
    )
    .await?;
    assert!(
        !allowed(&a, &operator.access).await?,
        "node a served the revoked grant"
    );

    until_cached(&a, &operator.access).await?;
    until_cached(&b, &operator.access).await?;
    a.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": operator.user_id }),
    )
    .await?;
    assert_eq!(status_of(&b, &operator.access).await?, 401);
    assert_eq!(status_of(&a, &operator.access).await?, 401);
    Ok(())
}
