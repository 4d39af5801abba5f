//! The rest of a person's own work in the console: attaching files to a task (multipart, with
//! the form token first) and delegating one's approvals from the inbox.

use reqwest::StatusCode;
use serde_json::json;

use super::{form_token, signed_in, Browser};
use crate::helpers::Backend;
use crate::on_both_backends;
use crate::tasks::company;

on_both_backends!(
    files_are_attached_from_the_task_page,
    approvals_are_delegated_from_the_inbox,
);

async fn upload(
    browser: &Browser,
    path: &str,
    token: Option<&str>,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<reqwest::Response> {
    let mut form = reqwest::multipart::Form::new();
    if let Some(token) = token {
        form = form.text("_token", token.to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    Ok(browser
        .request(reqwest::Method::POST, path)
        .multipart(form)
        .send()
        .await?)
}

async fn attachment_names(c: &crate::tasks::Company, task: &str) -> anyhow::Result<Vec<String>> {
    let data = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { attachments { filename } } }",
            json!({ "id": task }),
        )
        .await?;
    Ok(data["task"]["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["filename"].as_str().map(str::to_owned))
        .collect())
}

async fn files_are_attached_from_the_task_page(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c.approved(json!({})).await?;
    let page = format!("/tasks/{task}");
    let path = format!("/tasks/{task}/attachments");
    let mut executor = signed_in(&c.app, &c.executor).await?;
    let (_, html) = executor.get(&page).await?;
    assert!(html.contains("enctype=\"multipart/form-data\""));
    let token = form_token(&html)?;

    let forged = upload(&executor, &path, None, "notes.txt", b"forged".to_vec()).await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = upload(
        &executor,
        &path,
        Some("0123456789abcdef0123456789abcdef"),
        "notes.txt",
        b"forged".to_vec(),
    )
    .await?;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // A binary nobody accepts is refused beside the field.
    let refused = upload(
        &executor,
        &path,
        Some(&token),
        "tool.exe",
        vec![0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00],
    )
    .await?;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await?.contains("file-error"));
    assert!(attachment_names(&c, &task).await?.is_empty());

    let stored = upload(
        &executor,
        &path,
        Some(&token),
        "visit notes.txt",
        b"Met the harbour master".to_vec(),
    )
    .await?;
    assert_eq!(stored.status(), StatusCode::SEE_OTHER);
    assert_eq!(attachment_names(&c, &task).await?, vec!["visit notes.txt"]);
    let (_, html) = executor.get(&page).await?;
    assert!(html.contains("visit notes.txt") && html.contains("/files/"));

    // Someone who is not on the task gets no form, and an upload changes nothing.
    let mut observer = signed_in(&c.app, &c.observer).await?;
    let (status, html) = observer.get(&page).await?;
    if status == StatusCode::OK {
        assert!(!html.contains("enctype=\"multipart/form-data\""));
    }
    let (_, work) = observer.get("/work").await?;
    let theirs = form_token(&work)?;
    let sneaked = upload(
        &observer,
        &path,
        Some(&theirs),
        "mine.txt",
        b"not yours".to_vec(),
    )
    .await?;
    assert_eq!(sneaked.status(), StatusCode::NOT_FOUND);
    assert_eq!(attachment_names(&c, &task).await?, vec!["visit notes.txt"]);
    Ok(())
}

async fn delegations(c: &crate::tasks::Company) -> anyhow::Result<serde_json::Value> {
    let data = c
        .ok_as(
            &c.reviewer,
            "{ myDelegations { toUser { id } startsAt endsAt } }",
            json!({}),
        )
        .await?;
    Ok(data["myDelegations"].clone())
}

async fn approvals_are_delegated_from_the_inbox(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut reviewer = signed_in(&c.app, &c.reviewer).await?;
    let (_, inbox) = reviewer.get("/approvals").await?;
    assert!(inbox.contains("action=\"/approvals/delegations\""));
    let to = c.head.user_id.as_str();
    let forged = reviewer
        .post(
            "/approvals/delegations",
            &[
                ("to", to),
                ("starts", "2026-12-01T09:00"),
                ("ends", "2026-12-08T18:00"),
            ],
        )
        .await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let backwards = reviewer
        .post_from(
            "/approvals",
            "/approvals/delegations",
            &[
                ("to", to),
                ("starts", "2026-12-08T09:00"),
                ("ends", "2026-12-01T18:00"),
            ],
        )
        .await?;
    assert_eq!(backwards.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards.text().await?.contains("delegate-until-error"));
    assert_eq!(delegations(&c).await?, json!([]));

    let made = reviewer
        .post_from(
            "/approvals",
            "/approvals/delegations",
            &[
                ("to", to),
                ("starts", "2026-12-01T09:00"),
                ("ends", "2026-12-08T18:00"),
            ],
        )
        .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        delegations(&c).await?,
        json!([{ "toUser": { "id": to }, "startsAt": "2026-12-01T09:00:00+00:00", "endsAt": "2026-12-08T18:00:00+00:00" }])
    );
    let (_, inbox) = reviewer.get("/approvals").await?;
    let end = inbox
        .split("action=\"")
        .filter_map(|part| part.split('"').next())
        .find(|action| action.ends_with("/end"))
        .ok_or_else(|| anyhow::anyhow!("no way to end the delegation"))?
        .to_owned();
    // The delegate sees it, but may not end someone else's delegation.
    let mut head = signed_in(&c.app, &c.head).await?;
    let (_, theirs) = head.get("/approvals").await?;
    assert!(!theirs.contains(&end));
    let token = form_token(&theirs)?;
    let sneaked = head.post(&end, &[("_token", token.as_str())]).await?;
    assert_eq!(sneaked.status(), StatusCode::NOT_FOUND);
    assert_eq!(delegations(&c).await?.as_array().map(Vec::len), Some(1));

    let ended = reviewer.post_from("/approvals", &end, &[]).await?;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(delegations(&c).await?, json!([]));
    Ok(())
}

on_both_backends!(a_task_configure_holder_restaffs_an_approved_task);

async fn a_task_configure_holder_restaffs_an_approved_task(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c.approved(json!({})).await?;
    let page = format!("/tasks/{task}");
    let edit = format!("/tasks/{task}/edit");
    let mut observer = signed_in(&c.app, &c.observer).await?;
    assert_eq!(observer.get(&edit).await?.0, StatusCode::NOT_FOUND);
    let (_, html) = observer.get(&page).await?;
    assert!(!html.contains(&format!("href=\"{edit}\"")));

    // task.configure over Sales covers North, the task's department.
    let role = c
        .ok_as(
            &c.admin,
            "mutation { createRole(input: { name: \"Task setup\", permissions: [\"task.configure\"] }) { id } }",
            json!({}),
        )
        .await?;
    c.ok_as(
        &c.admin,
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": c.observer.user_id, "r": crate::helpers::str_at(&role, "/createRole/id")?, "d": c._sales }),
    )
    .await?;
    let mut observer = signed_in(&c.app, &c.observer).await?;
    let (_, html) = observer.get(&page).await?;
    assert!(html.contains(&format!("href=\"{edit}\"")));
    let (status, form) = observer.get(&edit).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("name=\"executor\"") && form.contains("name=\"deadline\""));
    assert!(
        !form.contains("name=\"title\""),
        "only what may change is offered"
    );
    let action = form
        .split("action=\"")
        .filter_map(|part| part.split('"').next())
        .find(|a| a.starts_with(&edit))
        .ok_or_else(|| anyhow::anyhow!("no edit form"))?
        .replace("&amp;", "&");
    let fields = [
        ("executor", c.second_executor.user_id.as_str()),
        ("confirmer", c.confirmer.user_id.as_str()),
        ("deadline", "2027-01-15T17:00"),
    ];
    let saved = observer.post_from(&edit, &action, &fields).await?;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let data = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { deadline executors { id } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        data["task"]["executors"],
        json!([{ "id": c.second_executor.user_id }])
    );
    assert_eq!(data["task"]["deadline"], "2027-01-15T17:00:00+00:00");
    // The form's version is now stale: a second save is a conflict and changes nothing.
    let stale = observer
        .post_from(
            &edit,
            &action,
            &[
                ("executor", c.executor.user_id.as_str()),
                ("confirmer", ""),
                ("deadline", ""),
            ],
        )
        .await?;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let again = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { executors { id } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        again["task"]["executors"],
        json!([{ "id": c.second_executor.user_id }])
    );

    let mut executor = signed_in(&c.app, &c.second_executor).await?;
    assert_eq!(executor.get(&edit).await?.0, StatusCode::NOT_FOUND);
    Ok(())
}

on_both_backends!(one_person_cannot_take_every_live_stream);

/// The console's live streams count with websockets under the per-person cap.
async fn one_person_cannot_take_every_live_stream(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = crate::helpers::TestApp::spawn_with(
        backend,
        &[("INTERLINK_WS_MAX_CONNECTIONS_PER_USER", "2")],
    )
    .await?
    else {
        return Ok(());
    };
    let c = crate::tasks::Company::new(app).await?;
    let executor = signed_in(&c.app, &c.executor).await?;
    let mut open = Vec::new();
    for _ in 0..2 {
        let stream = executor
            .request(reqwest::Method::GET, "/console/events")
            .send()
            .await?;
        assert_eq!(stream.status(), StatusCode::OK);
        open.push(stream);
    }
    let third = executor
        .request(reqwest::Method::GET, "/console/events")
        .send()
        .await?;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nor may a websocket take a third place.
    let mut socket = crate::websocket::connect(&c.app).await?;
    crate::websocket::send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", c.executor.access) } }),
    )
    .await?;
    assert_eq!(crate::websocket::close_code(&mut socket).await?, 4429);
    // Someone else is not held back by it.
    let other = signed_in(&c.app, &c.confirmer).await?;
    let theirs = other
        .request(reqwest::Method::GET, "/console/events")
        .send()
        .await?;
    assert_eq!(theirs.status(), StatusCode::OK);
    drop(open);
    Ok(())
}

on_both_backends!(a_search_longer_than_the_cap_is_refused);

async fn a_search_longer_than_the_cap_is_refused(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let long = "x".repeat(201);
    let body = c
        .as_(
            &c.executor,
            "query($s: String) { tasks(filter: { search: $s }) { totalCount } }",
            json!({ "s": long }),
        )
        .await?;
    assert_eq!(
        crate::helpers::error_code(&body),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(
        body.pointer("/errors/0/extensions/field"),
        Some(&json!("search"))
    );
    let fine = c
        .ok_as(
            &c.executor,
            "query($s: String) { tasks(filter: { search: $s }) { totalCount } }",
            json!({ "s": "x".repeat(200) }),
        )
        .await?;
    assert_eq!(fine["tasks"]["totalCount"], 0);
    let mut executor = signed_in(&c.app, &c.executor).await?;
    let (status, page) = executor.get(&format!("/work?q={long}")).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("200"));
    Ok(())
}
