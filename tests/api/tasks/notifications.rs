//! Notifications reach the right inboxes.

use serde_json::{json, Value};

use crate::helpers::Backend;
use crate::on_both_backends;

on_both_backends!(notifications_reach_the_right_inboxes,);

async fn notifications_reach_the_right_inboxes(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.approved(json!({})).await?;
    let inbox = "{ notifications(first: 50) { totalCount edges { node { id kind subjectId read } } } unreadNotificationCount }";
    let kinds = |v: &Value| -> Vec<String> {
        v["notifications"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["node"]["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let executor = c.ok_as(&c.executor, inbox, json!({})).await?;
    assert!(
        kinds(&executor).contains(&"ASSIGNED".to_owned()),
        "{executor}"
    );
    assert!(
        kinds(&executor).contains(&"REVIEW_DECIDED".to_owned()),
        "{executor}"
    );
    assert!(kinds(&c.ok_as(&c.reviewer, inbox, json!({})).await?)
        .contains(&"REVIEW_REQUESTED".to_owned()));
    assert!(
        kinds(&c.ok_as(&c.head, inbox, json!({})).await?).contains(&"REVIEW_REQUESTED".to_owned())
    );
    c.ok_as(
        &c.executor,
        "mutation($id: ID!) { reportTaskProgress(taskId: $id, progress: 50) { id } }",
        json!({ "id": id }),
    )
    .await?;
    assert!(kinds(&c.ok_as(&c.confirmer, inbox, json!({})).await?)
        .contains(&"PROGRESS_REPORTED".to_owned()));
    c.ok_as(
        &c.confirmer,
        "mutation($id: ID!) { addTaskComment(taskId: $id, body: \"Looks good\") { id } }",
        json!({ "id": id }),
    )
    .await?;
    let initiator = c.ok_as(&c.initiator, inbox, json!({})).await?;
    assert!(
        kinds(&initiator).contains(&"COMMENTED".to_owned()),
        "{initiator}"
    );
    // The stranger's inbox stays empty, and one cannot mark another's notifications read.
    assert_eq!(
        c.ok_as(&c.stranger, inbox, json!({})).await?["notifications"]["totalCount"],
        0
    );
    let someone_elses = executor["notifications"]["edges"][0]["node"]["id"].clone();
    let changed = c
        .ok_as(
            &c.stranger,
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": [someone_elses] }),
        )
        .await?;
    assert_eq!(changed["markNotificationsRead"], 0);
    let unread = c.ok_as(&c.executor, inbox, json!({})).await?["unreadNotificationCount"]
        .as_u64()
        .unwrap_or_default();
    assert!(unread >= 3, "assigned, review decided, commented: {unread}");
    let all = c
        .ok_as(
            &c.executor,
            "mutation { markAllNotificationsRead }",
            json!({}),
        )
        .await?;
    assert_eq!(all["markAllNotificationsRead"].as_u64(), Some(unread));
    assert_eq!(
        c.ok_as(&c.executor, inbox, json!({})).await?["unreadNotificationCount"],
        0
    );
    Ok(())
}
