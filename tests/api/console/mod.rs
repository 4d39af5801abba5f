//! The console over real HTTP: signing in with a cookie the API ignores, pages the viewer may
//! not see answering 404, forms refused without their token, Chinese pages, and live updates
//! from the event log over Server-Sent Events.

mod back_office;
mod routes;
mod task_extras;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, Backend, Session, TestApp};
use crate::on_both_backends;
use crate::tasks::{company, PASSWORD};

on_both_backends!(
    the_console_signs_in_with_a_cookie_the_api_ignores,
    pages_the_viewer_may_not_see_are_not_found,
    a_form_without_its_token_changes_nothing,
    pages_speak_chinese_by_accept_language_or_the_switch,
    signing_out_or_a_new_password_ends_the_console_session,
    an_approver_decides_from_the_inbox_and_the_board_follows_live,
);

/// A browser: its cookies, no redirects followed (the tests look at each answer).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    language: Option<&'static str>,
}

impl Browser {
    fn new(app: &TestApp) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: app.url(""),
            cookies: HashMap::new(),
            language: None,
        })
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header());
        if let Some(language) = self.language {
            request = request.header(header::ACCEPT_LANGUAGE, language);
        }
        request
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, String)> {
        let response = self.request(reqwest::Method::GET, path).send().await?;
        self.keep_cookies(&response);
        let status = response.status();
        Ok((status, response.text().await?))
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .request(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// Posts `form` with the form token the page at `page` carries.
    async fn post_from(
        &mut self,
        page: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let (_, html) = self.get(page).await?;
        let token = form_token(&html)?;
        let mut fields = vec![("_token", token.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> anyhow::Result<reqwest::Response> {
        self.post_from(
            "/sign-in",
            "/sign-in",
            &[("email", email), ("password", password), ("next", "/work")],
        )
        .await
    }
}

fn form_token(html: &str) -> anyhow::Result<String> {
    let marker = "name=\"_token\" value=\"";
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("no form token on the page"))?
        + marker.len();
    let end = html[start..]
        .find('"')
        .ok_or_else(|| anyhow::anyhow!("an unterminated form token"))?;
    Ok(html[start..start + end].to_owned())
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn email_of(app: &TestApp, who: &Session) -> anyhow::Result<String> {
    use sea_orm::EntityTrait;
    let id = uuid::Uuid::parse_str(&who.user_id)?;
    Ok(entities::user::Entity::find_by_id(id)
        .one(&app.state.db.conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the person exists"))?
        .email)
}

async fn signed_in(app: &TestApp, who: &Session) -> anyhow::Result<Browser> {
    let mut browser = Browser::new(app)?;
    let email = email_of(app, who).await?;
    let response = browser.sign_in(&email, PASSWORD).await?;
    anyhow::ensure!(
        response.status() == StatusCode::SEE_OTHER,
        "signing in answered {}",
        response.status()
    );
    Ok(browser)
}

async fn the_console_signs_in_with_a_cookie_the_api_ignores(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c
        .approved(json!({ "title": "Visit the harbour office" }))
        .await?;
    let mut browser = Browser::new(&c.app)?;

    let response = browser.request(reqwest::Method::GET, "/").send().await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sign-in");
    let response = browser
        .request(reqwest::Method::GET, "/work")
        .send()
        .await?;
    assert!(location(&response).starts_with("/sign-in?next="));

    let (status, page) = browser.get("/sign-in").await?;
    assert_eq!(status, StatusCode::OK);
    for text in [">Email<", ">Password<", ">Sign in<", "lang=\"en\""] {
        assert!(page.contains(text), "the sign-in page shows {text}");
    }
    let email = email_of(&c.app, &c.executor).await?;
    let wrong = browser.sign_in(&email, "not the password").await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!browser.cookies.contains_key("interlink_session"));

    let response = browser.sign_in(&email, PASSWORD).await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/work");
    let set_cookie: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("interlink_session="))
        .ok_or_else(|| anyhow::anyhow!("a session cookie"))?;
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain HTTP gets no Secure cookie: {session}"
    );

    let response = browser
        .request(reqwest::Method::GET, "/work")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(!policy.contains("unsafe-inline"));
    assert!(response.headers().contains_key(header::REFERRER_POLICY));
    let board = response.text().await?;
    assert!(
        board.contains("Visit the harbour office"),
        "the executor's board shows the task"
    );
    assert!(board.contains(&format!("/tasks/{task}")));
    assert!(
        !board.contains("http://") && !board.contains("https://"),
        "no outside URL"
    );

    // The API never reads the console's cookie.
    let api = c
        .app
        .http
        .post(c.app.url("/graphql"))
        .header(header::COOKIE, browser.cookie_header())
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(error_code(&api), Some("UNAUTHENTICATED"));
    // Nor does the refresh-token exchange take it.
    let cookie = browser
        .cookies
        .get("interlink_session")
        .cloned()
        .unwrap_or_default();
    let traded = c
        .app
        .gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": cookie }),
        )
        .await?;
    assert_eq!(error_code(&traded), Some("UNAUTHENTICATED"));
    // Nor with the console's own prefix: stored rows cannot be reached by any presented string.
    let prefixed = c
        .app
        .gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": format!("console:{cookie}") }),
        )
        .await?;
    assert_eq!(error_code(&prefixed), Some("UNAUTHENTICATED"));
    assert_eq!(
        browser.get("/work").await?.0,
        StatusCode::OK,
        "the session still stands"
    );

    let (status, detail) = browser.get(&format!("/tasks/{task}")).await?;
    assert_eq!(status, StatusCode::OK);
    for label in [
        "Key points",
        "Executors",
        "Progress confirmer",
        "Review records",
        "Activity",
        "Report progress",
    ] {
        assert!(detail.contains(label), "the task page labels {label}");
    }
    Ok(())
}

async fn pages_the_viewer_may_not_see_are_not_found(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c.draft(&c.category, json!({})).await?;
    let mut stranger = signed_in(&c.app, &c.stranger).await?;
    let (status, page) = stranger.get(&format!("/tasks/{task}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("Visit the customer"));
    assert_eq!(
        stranger.get(&format!("/tasks/{task}/edit")).await?.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger.get("/tasks/not-an-id").await?.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger.get("/configuration").await?.0,
        StatusCode::NOT_FOUND
    );
    let (_, work) = stranger.get("/work").await?;
    assert!(!work.contains("Visit the customer"));

    // The executor sees the task but may not edit it or configure anything.
    let mut executor = signed_in(&c.app, &c.executor).await?;
    assert_eq!(
        executor.get(&format!("/tasks/{task}")).await?.0,
        StatusCode::OK
    );
    assert_eq!(
        executor.get(&format!("/tasks/{task}/edit")).await?.0,
        StatusCode::NOT_FOUND
    );
    let categories = format!("/configuration/categories/{}", c.category);
    assert_eq!(executor.get(&categories).await?.0, StatusCode::NOT_FOUND);

    let mut admin = Browser::new(&c.app)?;
    admin
        .sign_in(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await?;
    assert_eq!(admin.get("/configuration").await?.0, StatusCode::OK);
    assert_eq!(admin.get(&categories).await?.0, StatusCode::OK);
    Ok(())
}

async fn comment_count(c: &crate::tasks::Company, task: &str) -> anyhow::Result<u64> {
    let data = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { comments { totalCount } } }",
            json!({ "id": task }),
        )
        .await?;
    Ok(data["task"]["comments"]["totalCount"]
        .as_u64()
        .unwrap_or(u64::MAX))
}

async fn a_form_without_its_token_changes_nothing(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c.approved(json!({})).await?;
    let mut executor = signed_in(&c.app, &c.executor).await?;
    let path = format!("/tasks/{task}/comment");
    let without = executor.post(&path, &[("body", "no token")]).await?;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let wrong = executor
        .post(
            &path,
            &[
                ("_token", "0123456789abcdef0123456789abcdef"),
                ("body", "forged"),
            ],
        )
        .await?;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Another session's token is no good either.
    let mut other = signed_in(&c.app, &c.executor).await?;
    let (_, page) = other.get(&format!("/tasks/{task}")).await?;
    let others_token = form_token(&page)?;
    let crossed = executor
        .post(
            &path,
            &[("_token", others_token.as_str()), ("body", "crossed")],
        )
        .await?;
    assert_eq!(crossed.status(), StatusCode::FORBIDDEN);
    let progress = executor
        .post(&format!("/tasks/{task}/progress"), &[("progress", "100")])
        .await?;
    assert_eq!(progress.status(), StatusCode::FORBIDDEN);
    assert_eq!(comment_count(&c, &task).await?, 0);
    let state = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { reportedProgress } }",
            json!({ "id": task }),
        )
        .await?;
    assert!(state["task"]["reportedProgress"].is_null());

    let page = format!("/tasks/{task}");
    let with = executor
        .post_from(&page, &path, &[("body", "With the token")])
        .await?;
    assert_eq!(with.status(), StatusCode::SEE_OTHER);
    assert_eq!(comment_count(&c, &task).await?, 1);
    // A refusal by the service shows on the page and changes nothing.
    let refused = executor
        .post_from(
            &page,
            &format!("/tasks/{task}/progress"),
            &[("progress", "250")],
        )
        .await?;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await?.contains("role=\"alert\""));
    Ok(())
}

async fn pages_speak_chinese_by_accept_language_or_the_switch(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut browser = Browser::new(&c.app)?;
    browser.language = Some("zh-CN,zh;q=0.9,en;q=0.5");
    let (_, page) = browser.get("/sign-in").await?;
    for text in ["lang=\"zh-CN\"", ">邮箱<", ">密码<", ">登录<"] {
        assert!(page.contains(text), "the Chinese sign-in page shows {text}");
    }
    let email = email_of(&c.app, &c.reviewer).await?;
    browser.sign_in(&email, PASSWORD).await?;
    let (status, approvals) = browser.get("/approvals").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(approvals.contains("待我审批") && approvals.contains("我的委托"));

    // The switch wins over the header, and is remembered.
    let response = browser
        .request(reqwest::Method::GET, "/language/en?next=/approvals")
        .send()
        .await?;
    browser.keep_cookies(&response);
    assert_eq!(location(&response), "/approvals");
    let (_, english) = browser.get("/approvals").await?;
    assert!(english.contains("Waiting for my decision") && english.contains("lang=\"en\""));
    // An outside address is never a place to go back to.
    let response = browser
        .request(reqwest::Method::GET, "/language/zh-CN?next=//evil.example/")
        .send()
        .await?;
    assert_eq!(location(&response), "/work");
    assert_eq!(browser.get("/language/fr").await?.0, StatusCode::NOT_FOUND);
    Ok(())
}

async fn signing_out_or_a_new_password_ends_the_console_session(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut browser = signed_in(&c.app, &c.observer).await?;
    let kept = browser.cookie_header();
    let out = browser.post_from("/work", "/sign-out", &[]).await?;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    // The old cookie, replayed, no longer opens anything.
    let replay = browser
        .http
        .get(c.app.url("/work"))
        .header(header::COOKIE, kept)
        .send()
        .await?;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert!(location(&replay).starts_with("/sign-in"));

    let mut browser = signed_in(&c.app, &c.observer).await?;
    assert_eq!(browser.get("/work").await?.0, StatusCode::OK);
    c.ok_as(
        &c.observer,
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": PASSWORD, "n": "another good password" }),
    )
    .await?;
    let response = browser
        .request(reqwest::Method::GET, "/work")
        .send()
        .await?;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "a new password ends the session"
    );
    Ok(())
}

/// Reads the stream until an event with an id arrives; returns (id, data).
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
) -> anyhow::Result<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                return Ok((id, data));
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| anyhow::anyhow!("no event within 20 s"))?
            .ok_or_else(|| anyhow::anyhow!("the stream ended"))??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn an_approver_decides_from_the_inbox_and_the_board_follows_live(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let task = c
        .draft(&c.category, json!({ "title": "Quote for the mill" }))
        .await?;
    let mut reviewer = signed_in(&c.app, &c.reviewer).await?;
    let (_, inbox) = reviewer.get("/approvals").await?;
    assert!(!inbox.contains("Quote for the mill"));

    // The reviewer's stream, opened from the page's own cursor, hears the submission.
    let (_, page) = reviewer.get("/approvals").await?;
    let marker = "data-events=\"";
    let start = page
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_default();
    let events_path = page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    assert!(
        events_path.starts_with("/console/events?after="),
        "{events_path}"
    );
    let response = reviewer
        .request(reqwest::Method::GET, &events_path)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": task }),
    )
    .await?;
    let (first_id, data) = next_event(&mut stream, &mut buffer).await?;
    assert!(data.contains("\"topic\""), "{data}");

    let (_, inbox) = reviewer.get("/approvals").await?;
    assert!(
        inbox.contains("Quote for the mill"),
        "the inbox names what the approval is about"
    );
    assert!(inbox.contains(&format!("/tasks/{task}")));
    let approval = c.approval_of(&task).await?;
    let decided = reviewer
        .post_from(
            "/approvals",
            &format!("/approvals/{approval}/decide"),
            &[("decision", "approve"), ("comment", "Fine")],
        )
        .await?;
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    let state = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { approval { progress { stepNumber } } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(state["task"]["approval"]["progress"]["stepNumber"], 2);
    let (_, inbox) = reviewer.get("/approvals").await?;
    assert!(
        !inbox.contains("Quote for the mill"),
        "decided, it leaves the inbox"
    );

    // Resuming with Last-Event-ID replays what came after it, with no gap.
    let resumed = reviewer
        .request(reqwest::Method::GET, "/console/events")
        .header("last-event-id", &first_id)
        .send()
        .await?;
    let mut stream = resumed.bytes_stream();
    let mut buffer = String::new();
    let (next_id, _) = next_event(&mut stream, &mut buffer).await?;
    assert!(next_id > first_id, "{next_id} follows {first_id}");
    let bad = reviewer
        .request(reqwest::Method::GET, "/console/events")
        .header("last-event-id", "not-a-cursor")
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}
