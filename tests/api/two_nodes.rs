//! Scale-out: two nodes on one PostgreSQL and one Redis (single server or cluster) serve one graph.

use std::time::Duration;

use futures_util::StreamExt;
use interlink::platform::cache::{Cache, RedisCache};
use interlink::platform::events::bus::{self, SignalKind};
use interlink::platform::events::{EventBus, RedisBus};
use interlink::platform::redis::{RedisLink, RedisTarget};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::helpers::{unique_email, Backend, Deployment};
use crate::websocket::{connect, init, next, send};

fn required() -> bool {
    std::env::var("INTERLINK_REQUIRE_SERVICES").as_deref() == Ok("1")
}

fn cluster_url() -> anyhow::Result<Option<String>> {
    match std::env::var("TEST_REDIS_CLUSTER_URL") {
        Ok(url) => Ok(Some(url)),
        Err(_) if required() => {
            anyhow::bail!("INTERLINK_REQUIRE_SERVICES=1 but TEST_REDIS_CLUSTER_URL is not set")
        }
        Err(_) => Ok(None),
    }
}

async fn two_nodes_share_users_and_events(redis_url: String) -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Postgres, &[("REDIS_URL", &redis_url)]).await?
    else {
        return Ok(());
    };
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;

    // A subscriber on B.
    let admin_on_b = b.admin().await?;
    let mut socket = connect(&b).await?;
    init(&mut socket, Some(&admin_on_b.access)).await?;
    // From the start of the log, so that nothing committed while the subscription is being set up
    // can slip past it; the test picks out its own user below.
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { identityEvents(after: \"00000000000000000000000000000000\") { kind subjectId } }" } })).await?;

    // A user created through A…
    let admin_on_a = a.admin().await?;
    let email = unique_email("twonode");
    let user_id = a
        .create_user(&admin_on_a.access, &email, "a good password")
        .await?;

    // …is announced on B…
    let event = loop {
        let event = next(&mut socket, Duration::from_secs(20)).await?;
        if event["payload"]["data"]["identityEvents"]["subjectId"] == user_id.as_str() {
            break event;
        }
    };
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

    // Failed sign-ins counted on one node throttle the other: the cache is shared.
    let login =
        "mutation($e: String!) { login(email: $e, password: \"wrong password!\") { accessToken } }";
    for _ in 0..10 {
        a.gql(None, login, json!({ "e": email })).await?;
    }
    let throttled = b
        .gql(None, "mutation($e: String!) { login(email: $e, password: \"a good password\") { accessToken } }", json!({ "e": email }))
        .await?;
    assert_eq!(
        crate::helpers::error_code(&throttled),
        Some("RATE_LIMITED"),
        "{throttled}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis() -> anyhow::Result<()> {
    match crate::helpers::redis_url()? {
        Some(url) => two_nodes_share_users_and_events(url).await,
        None => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_a_redis_cluster() -> anyhow::Result<()> {
    match cluster_url()? {
        Some(url) => two_nodes_share_users_and_events(url).await,
        None => Ok(()),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Probe {
    n: u32,
}

impl SignalKind for Probe {
    const TOPIC: &'static str = "test.probe";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_bus_work_on_a_redis_cluster() -> anyhow::Result<()> {
    let Some(url) = cluster_url()? else {
        return Ok(());
    };
    let target = RedisTarget::parse(&url)?;
    anyhow::ensure!(
        matches!(target, RedisTarget::Cluster(_)),
        "{url} is not a cluster URL"
    );
    let prefix = format!("test-{}", uuid::Uuid::now_v7().simple());
    let link = RedisLink::connect(&target).await?;
    link.ping().await?;

    let cache = RedisCache::new(link.clone(), &prefix);
    // Keys spread over the cluster's slots.
    for i in 0..20 {
        let key = format!("k{i}");
        cache
            .set(&key, key.as_bytes(), Duration::from_secs(30))
            .await?;
        assert_eq!(cache.get(&key).await?, Some(key.clone().into_bytes()));
        assert_eq!(
            cache
                .increment(&format!("c{i}"), Duration::from_secs(30))
                .await?,
            1
        );
        assert_eq!(
            cache
                .increment(&format!("c{i}"), Duration::from_secs(30))
                .await?,
            2
        );
        assert_eq!(cache.counter(&format!("c{i}")).await?, 2);
        cache.delete(&key).await?;
        assert_eq!(cache.get(&key).await?, None);
    }

    // Two buses on the cluster, each with one subscriber attached to some node.
    let publisher = RedisBus::connect(&target, link.clone(), &prefix).await?;
    let listener = RedisBus::connect(&target, RedisLink::connect(&target).await?, &prefix).await?;
    listener.ready().await?;
    let mut received = Box::pin(bus::signals::<Probe>(&listener));
    bus::signal(&publisher, &Probe { n: 42 }).await?;
    let probe = tokio::time::timeout(Duration::from_secs(2), received.next()).await?;
    assert_eq!(probe, Some(Probe { n: 42 }));
    Ok(())
}

/// The event path: a subscriber on node A hears, within a second, the progress reported
/// through node B; a user who may not see the task hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_progress_reaches_subscribers_on_another_node() -> anyhow::Result<()> {
    let Some(redis) = crate::helpers::redis_url()? else {
        return Ok(());
    };
    let Some(deployment) = Deployment::new(Backend::Postgres, &[("REDIS_URL", &redis)]).await?
    else {
        return Ok(());
    };
    let (a, b) = tokio::try_join!(deployment.node(), deployment.node())?;
    let company = crate::tasks::Company::new(b).await?;
    let task = company.approved(json!({})).await?;

    // From the start of the log (the task's earlier events come first and are passed over), so
    // that nothing committed while the subscription is being set up can slip past it.
    let subscribe = json!({ "id": "t", "type": "subscribe", "payload": {
        "query": "subscription($id: ID, $a: String) { taskEvents(taskId: $id, after: $a) { kind at actor { id } task { id progress reportedProgress status } } }",
        "variables": { "id": task, "a": "00000000000000000000000000000000" }
    } });
    let mut watcher = connect(&a).await?;
    init(&mut watcher, Some(&company.initiator.access)).await?;
    send(&mut watcher, subscribe.clone()).await?;
    let mut outsider = connect(&a).await?;
    init(&mut outsider, Some(&company.stranger.access)).await?;
    send(&mut outsider, subscribe).await?;

    company
        .ok_as(
            &company.executor,
            "mutation($id: ID!) { reportTaskProgress(taskId: $id, progress: 30) { id } }",
            json!({ "id": task }),
        )
        .await?;
    let event = loop {
        let event = next(&mut watcher, Duration::from_secs(20)).await?;
        if event["payload"]["data"]["taskEvents"]["kind"] == "PROGRESS_REPORTED" {
            break event;
        }
    };
    let payload = &event["payload"]["data"]["taskEvents"];
    assert_eq!(payload["kind"], "PROGRESS_REPORTED", "{event}");
    assert_eq!(payload["task"]["id"], task.as_str());
    assert_eq!(payload["task"]["reportedProgress"], 30);
    assert_eq!(payload["actor"]["id"], company.executor.user_id.as_str());
    let status = next(&mut watcher, Duration::from_secs(20)).await?;
    assert_eq!(
        status["payload"]["data"]["taskEvents"]["kind"], "STATUS_CHANGED",
        "{status}"
    );

    // The outsider's socket stays silent: after a round trip, nothing but the pong.
    send(&mut outsider, json!({ "type": "ping" })).await?;
    let reply = next(&mut outsider, Duration::from_secs(2)).await?;
    assert_eq!(
        reply["type"], "pong",
        "the outsider heard about an invisible task: {reply}"
    );
    Ok(())
}
