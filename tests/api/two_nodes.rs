//! Scale-out: two nodes on one PostgreSQL and Redis serve one graph.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{unique_email, Backend, Deployment};
use crate::websocket::{connect, init, next, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_users_and_events() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    if !deployment.vars.contains_key("REDIS_URL") {
        // Without Redis each node only hears itself; the test needs both services.
        anyhow::ensure!(
            std::env::var("INTERLINK_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "two-node test needs TEST_REDIS_URL"
        );
        return Ok(());
    }
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;

    // A subscriber on B.
    let admin_on_b = b.admin().await?;
    let mut socket = connect(&b).await?;
    init(&mut socket, Some(&admin_on_b.access)).await?;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { identityEvents { kind subjectId } }" } })).await?;
    send(&mut socket, json!({ "type": "ping" })).await?;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await?["type"],
        "pong"
    );

    // A user created through A…
    let admin_on_a = a.admin().await?;
    let email = unique_email("twonode");
    let user_id = a
        .create_user(&admin_on_a.access, &email, "a good password")
        .await?;

    // …is announced on B…
    let event = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(
        event["payload"]["data"]["identityEvents"]["kind"], "USER_CREATED",
        "{event}"
    );
    assert_eq!(
        event["payload"]["data"]["identityEvents"]["subjectId"],
        user_id.as_str()
    );

    // …and logs in through B, with a token A accepts.
    let session = b.login(&email, "a good password").await?;
    let me = a
        .gql_ok(Some(&session.access), "{ me { id } }", json!({}))
        .await?;
    assert_eq!(me["me"]["id"], user_id.as_str());
    Ok(())
}
