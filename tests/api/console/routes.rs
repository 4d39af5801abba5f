//! Every console route at once: signed out, each page sends the browser to sign in; every POST
//! without its form token is refused (403) before it can change anything; a person without the
//! permission a page needs gets 404; and every page a person may open speaks Chinese when asked.
//! Then the task actions and small pages the other modules leave to the browser tests.

use reqwest::StatusCode;
use serde_json::json;

use super::{location, signed_in, Browser};
use crate::helpers::{Backend, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;
use crate::tasks::company;

on_both_backends!(
    every_route_is_guarded,
    the_remaining_task_and_inbox_actions_work_from_their_forms,
);

const ANY: &str = "00000000-0000-7000-8000-000000000000";

/// `GET` pages, with `{id}` standing for some id (pages the viewer may not see answer 404 for
/// any id, a real one included).
const PAGES: &[&str] = &[
    "/work",
    "/tasks/new",
    "/tasks/{id}",
    "/tasks/{id}/edit",
    "/approvals",
    "/notifications",
    "/account/password",
    "/configuration",
    "/configuration/categories/{id}",
    "/configuration/accounts/new",
    "/configuration/accounts/{id}",
    "/configuration/budgets/new",
    "/configuration/budgets/{id}",
    "/configuration/organisation",
    "/configuration/departments/{id}",
    "/configuration/users/{id}",
    "/configuration/roles/{id}",
    "/configuration/flows/new",
    "/configuration/flows/{id}",
    "/configuration/types/new",
    "/configuration/types/{id}",
    "/finance",
    "/finance/ledger/1000",
    "/exports/{id}",
    "/exports/{id}/download",
    "/operations",
    "/integrations",
    "/integrations/apps/{id}",
    "/integrations/endpoints/{id}",
    "/people",
    "/people/{id}",
];

/// Pages only some may open: a person with no permission gets 404 from each.
const RESTRICTED: &[&str] = &[
    "/configuration",
    "/configuration/categories/{id}",
    "/configuration/accounts/new",
    "/configuration/budgets/new",
    "/configuration/organisation",
    "/configuration/departments/{id}",
    "/configuration/users/{id}",
    "/configuration/roles/{id}",
    "/configuration/flows/new",
    "/configuration/types/new",
    "/finance",
    "/finance/ledger/1000",
    "/exports/{id}",
    "/operations",
    "/integrations",
    "/integrations/apps/{id}",
    "/integrations/endpoints/{id}",
];

/// Every form's target.
const POSTS: &[&str] = &[
    "/sign-out",
    "/account/password",
    "/tasks/new",
    "/tasks/{id}/edit?version=1",
    "/tasks/{id}/submit",
    "/tasks/{id}/comment",
    "/approvals/{id}/decide",
    "/approvals/delegations",
    "/approvals/delegations/{id}/end",
    "/notifications/read",
    "/configuration/categories/{id}",
    "/configuration/categories/{id}/archive",
    "/configuration/accounts/new",
    "/configuration/accounts/{id}",
    "/configuration/accounts/{id}/active",
    "/configuration/budgets/new",
    "/configuration/budgets/{id}",
    "/configuration/departments",
    "/configuration/departments/{id}",
    "/configuration/users",
    "/configuration/users/{id}",
    "/configuration/users/{id}/active",
    "/configuration/users/{id}/grants",
    "/configuration/grants/{id}/revoke",
    "/configuration/roles",
    "/configuration/roles/{id}",
    "/configuration/flows/new",
    "/configuration/flows/{id}",
    "/configuration/types/new",
    "/configuration/types/{id}",
    "/finance/export/trial-balance.csv",
    "/operations/queues/exports/pause",
    "/operations/jobs/{id}/cancel",
    "/integrations/apps",
    "/integrations/apps/{id}/active",
    "/integrations/apps/{id}/keys",
    "/integrations/apps/{id}/endpoints",
    "/integrations/keys/{id}/revoke",
    "/integrations/endpoints/{id}/active",
    "/integrations/endpoints/{id}/replay",
    "/integrations/deliveries/{id}/redeliver",
];

async fn every_route_is_guarded(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c.approved(json!({})).await?;
    let with = |path: &str| path.replace("{id}", ANY);

    let mut visitor = Browser::new(&c.app)?;
    for page in PAGES {
        let path = with(page);
        let response = visitor.request(reqwest::Method::GET, &path).send().await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&response).starts_with("/sign-in"), "{path}");
    }

    let mut admin = Browser::new(&c.app)?;
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    for target in POSTS {
        let path = with(target);
        let forged = admin.post(&path, &[("name", "forged")]).await?;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        admin.get("/work").await?.0,
        StatusCode::OK,
        "still signed in: the forged sign-out did nothing"
    );

    let mut stranger = signed_in(&c.app, &c.stranger).await?;
    for page in RESTRICTED {
        let path = with(page);
        assert_eq!(
            stranger.get(&path).await?.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    admin.language = Some("zh-CN,zh;q=0.9");
    let real = |path: &str| path.replace("{id}", &task);
    for page in [
        "/work",
        "/tasks/new",
        "/tasks/{id}",
        "/approvals",
        "/notifications",
        "/account/password",
        "/configuration",
        "/configuration/organisation",
        "/configuration/accounts/new",
        "/configuration/budgets/new",
        "/configuration/flows/new",
        "/configuration/types/new",
        "/finance",
        "/operations",
        "/integrations",
        "/people",
    ] {
        let path = real(page);
        let (status, html) = admin.get(&path).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("lang=\"zh-CN\""), "{path} in Chinese");
        assert!(
            html.contains(">我的工作<"),
            "{path}: the navigation in Chinese"
        );
    }
    for asset in ["/console/assets/console.css", "/console/assets/console.js"] {
        assert_eq!(visitor.get(asset).await?.0, StatusCode::OK, "{asset}");
    }
    Ok(())
}

async fn the_remaining_task_and_inbox_actions_work_from_their_forms(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    // A draft is made and submitted from the console.
    let mut initiator = signed_in(&c.app, &c.initiator).await?;
    let new_page = format!("/tasks/new?category={}", c.quick_category);
    let (status, form) = initiator.get(&new_page).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("name=\"title\""));
    let executor = c.executor.user_id.clone();
    let confirmer = c.confirmer.user_id.clone();
    let created = initiator
        .post_from(
            &new_page,
            "/tasks/new",
            &[
                ("category", c.quick_category.as_str()),
                ("title", "Count the crates"),
                ("key_points", "Both sheds"),
                ("executor", executor.as_str()),
                ("confirmer", confirmer.as_str()),
                ("merit", "4"),
            ],
        )
        .await?;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let page = location(&created);
    let task = page.trim_start_matches("/tasks/").to_owned();
    let submitted = initiator
        .post_from(&page, &format!("{page}/submit"), &[])
        .await?;
    assert_eq!(submitted.status(), StatusCode::SEE_OTHER);
    let state = "query($id: ID!) { task(id: $id) { reviewStatus status reportedProgress progress comments { nodes { id body } } } }";
    let read = async || c.ok_as(&c.initiator, state, json!({ "id": task })).await;
    assert_eq!(read().await?["task"]["reviewStatus"], "APPROVED");

    // A comment is added, edited and deleted.
    initiator
        .post_from(
            &page,
            &format!("{page}/comment"),
            &[("body", "First count")],
        )
        .await?;
    let comment = crate::helpers::str_at(&read().await?, "/task/comments/nodes/0/id")?;
    let edited = initiator
        .post_from(
            &page,
            &format!("{page}/comment-edit"),
            &[("comment_id", comment.as_str()), ("body", "Second count")],
        )
        .await?;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        read().await?["task"]["comments"]["nodes"][0]["body"],
        "Second count"
    );
    let deleted = initiator
        .post_from(
            &page,
            &format!("{page}/comment-delete"),
            &[("comment_id", comment.as_str())],
        )
        .await?;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(read().await?["task"]["comments"]["nodes"], json!([]));

    // The executor reports; the confirmer confirms; the notifications are read.
    let mut executor_browser = signed_in(&c.app, &c.executor).await?;
    let reported = executor_browser
        .post_from(
            &page,
            &format!("{page}/progress"),
            &[("progress", "100"), ("note", "All counted")],
        )
        .await?;
    assert_eq!(reported.status(), StatusCode::SEE_OTHER);
    let mut confirmer_browser = signed_in(&c.app, &c.confirmer).await?;
    let confirmed = confirmer_browser
        .post_from(&page, &format!("{page}/confirm"), &[("progress", "100")])
        .await?;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let done = read().await?;
    assert_eq!(done["task"]["progress"], 100, "{done}");
    let (_, inbox) = executor_browser.get("/notifications").await?;
    assert!(inbox.contains("Count the crates"));
    let unread = "{ unreadNotificationCount }";
    assert!(
        c.ok_as(&c.executor, unread, json!({})).await?["unreadNotificationCount"].as_i64()
            > Some(0)
    );
    let read_all = executor_browser
        .post_from("/notifications", "/notifications/read", &[])
        .await?;
    assert_eq!(read_all.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.ok_as(&c.executor, unread, json!({})).await?["unreadNotificationCount"],
        0
    );

    // The executor's person page, and a category archived and restored by an admin.
    let (status, person) = executor_browser
        .get(&format!("/people/{}", c.executor.user_id))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert!(person.contains("id=\"merit-total\""));
    let mut admin = Browser::new(&c.app)?;
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let category = format!("/configuration/categories/{}", c.quick_category);
    let archived = admin
        .post_from(
            &category,
            &format!("{category}/archive"),
            &[("archived", "true")],
        )
        .await?;
    assert_eq!(archived.status(), StatusCode::SEE_OTHER);
    let flag = "query($id: ID!) { taskCategory(id: $id) { archived } }";
    let archived_now = c
        .ok_as(&c.admin, flag, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(archived_now["taskCategory"]["archived"], true);
    admin
        .post_from(
            &category,
            &format!("{category}/archive"),
            &[("archived", "false")],
        )
        .await?;
    let restored = c
        .ok_as(&c.admin, flag, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(restored["taskCategory"]["archived"], false);
    Ok(())
}
