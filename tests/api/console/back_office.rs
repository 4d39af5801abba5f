//! The console's back office over real HTTP: finance (with its CSV downloads), the ledger's
//! configuration, operations and integrations; each closed to those without the permission,
//! and each form refused without its token.

use reqwest::header;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{form_token, location, signed_in, Browser};
use crate::helpers::{str_at, Backend, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;
use crate::tasks::{company, Company};

on_both_backends!(
    finance_pages_show_the_books_to_finance_readers_only,
    accounts_and_budgets_are_configured_from_the_console,
    operators_steer_queues_and_jobs_from_the_console,
    integrations_show_a_key_once_and_replay_deliveries,
);

async fn admin_browser(c: &Company) -> anyhow::Result<Browser> {
    let mut admin = Browser::new(&c.app)?;
    let response = admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    anyhow::ensure!(response.status() == StatusCode::SEE_OTHER);
    Ok(admin)
}

/// Two accounts and one posting of 125.50 to the company's north department.
async fn books(c: &Company) -> anyhow::Result<()> {
    for (code, kind) in [("1000", "ASSET"), ("6000", "EXPENSE")] {
        c.ok_as(
            &c.admin,
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { id } }",
            json!({ "i": { "code": code, "name": format!("Account {code}"), "type": kind } }),
        )
        .await?;
    }
    c.ok_as(
        &c.admin,
        "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id } }",
        json!({ "i": { "memo": "Harbour fees", "postingDate": "2026-11-15", "lines": [
            { "accountCode": "6000", "debit": "125.50", "costCenterId": c.north },
            { "accountCode": "1000", "credit": "125.50" }
        ] } }),
    )
    .await?;
    Ok(())
}

async fn finance_pages_show_the_books_to_finance_readers_only(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    books(&c).await?;
    let period = "from=2026-01-01&to=2026-12-31";
    let mut admin = admin_browser(&c).await?;
    let (status, page) = admin.get(&format!("/finance?{period}")).await?;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "Trial balance",
        "125.50",
        "<svg class=\"chart pnl\"",
        "2026-11",
        "href=\"/finance/ledger/6000\"",
        "action=\"/finance/export/trial-balance.csv\"",
        "name=\"asOf\" value=\"2026-12-31\"",
    ] {
        assert!(page.contains(shown), "the finance page shows {shown}");
    }
    let (status, ledger) = admin.get(&format!("/finance/ledger/6000?{period}")).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(ledger.contains("Harbour fees") && ledger.contains("125.50"));
    assert_eq!(
        admin.get("/finance/ledger/9999").await?.0,
        StatusCode::NOT_FOUND
    );
    let (status, refused) = admin.get("/finance?from=2026-13-01").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("role=\"alert\"") && refused.contains("from-error"));

    // A download is a form with its token: a bare request (a link on another site) starts nothing.
    let trial = "/finance/export/trial-balance.csv";
    assert_eq!(admin.get(trial).await?.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        admin.post(trial, &[("asOf", "2026-12-31")]).await?.status(),
        StatusCode::FORBIDDEN
    );
    let csv = admin
        .post_from("/finance", trial, &[("asOf", "2026-12-31")])
        .await?;
    assert_eq!(csv.status(), StatusCode::OK);
    let kind = csv
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/csv"), "{kind}");
    let body = csv.text().await?;
    assert!(body.contains("6000") && body.contains("125.50"), "{body}");
    assert_eq!(
        admin
            .post_from("/finance", "/finance/export/nothing.csv", &[])
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );
    let bad_date = admin
        .post_from("/finance", trial, &[("asOf", "someday")])
        .await?;
    assert_eq!(bad_date.status(), StatusCode::UNPROCESSABLE_ENTITY);

    admin.language = Some("zh-CN");
    let (_, chinese) = admin.get("/finance").await?;
    assert!(chinese.contains("试算平衡表") && chinese.contains("预算"));

    // Someone without finance.read finds nothing there, nor in the navigation.
    let mut executor = signed_in(&c.app, &c.executor).await?;
    for path in ["/finance", "/finance/ledger/6000"] {
        assert_eq!(executor.get(path).await?.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, work) = executor.get("/work").await?;
    assert!(!work.contains("href=\"/finance\""));
    let token = form_token(&work)?;
    let theirs = executor
        .post(trial, &[("_token", token.as_str()), ("asOf", "2026-12-31")])
        .await?;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn accounts(c: &Company) -> anyhow::Result<Value> {
    Ok(c.ok_as(
        &c.admin,
        "{ accounts { id code name type active } }",
        json!({}),
    )
    .await?["accounts"]
        .clone())
}

async fn accounts_and_budgets_are_configured_from_the_console(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut admin = admin_browser(&c).await?;
    let new_account = [
        ("code", "7000"),
        ("name", "Travel"),
        ("account_type", "EXPENSE"),
    ];
    let forged = admin
        .post("/configuration/accounts/new", &new_account)
        .await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(accounts(&c).await?, json!([]));
    let bad_code = admin
        .post_from(
            "/configuration/accounts/new",
            "/configuration/accounts/new",
            &[
                ("code", "no spaces"),
                ("name", "Travel"),
                ("account_type", "EXPENSE"),
            ],
        )
        .await?;
    assert_eq!(bad_code.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_code.text().await?.contains("code-error"));
    let created = admin
        .post_from(
            "/configuration/accounts/new",
            "/configuration/accounts/new",
            &new_account,
        )
        .await?;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let id = str_at(&accounts(&c).await?, "/0/id")?;
    let page = format!("/configuration/accounts/{id}");
    let renamed = admin
        .post_from(
            &page,
            &page,
            &[
                ("code", "7000"),
                ("name", "Travel and lodging"),
                ("account_type", "EXPENSE"),
            ],
        )
        .await?;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    let closed = admin
        .post_from(&page, &format!("{page}/active"), &[("active", "false")])
        .await?;
    assert_eq!(closed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        accounts(&c).await?,
        json!([{ "id": id, "code": "7000", "name": "Travel and lodging", "type": "EXPENSE", "active": false }])
    );
    let (_, overview) = admin.get("/configuration").await?;
    assert!(overview.contains("Travel and lodging") && overview.contains("Deactivated"));

    // A budget on a closed account is refused beside its field; reopened, it is made.
    let north = c.north.as_str();
    let budget = [
        ("cost_center", north),
        ("account_code", "7000"),
        ("period", "2026-11"),
        ("amount", "300.00"),
        ("policy", "STOP"),
    ];
    let refused = admin
        .post_from(
            "/configuration/budgets/new",
            "/configuration/budgets/new",
            &budget,
        )
        .await?;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await?.contains("account-code-error"));
    admin
        .post_from(&page, &format!("{page}/active"), &[("active", "true")])
        .await?;
    let made = admin
        .post_from(
            "/configuration/budgets/new",
            "/configuration/budgets/new",
            &budget,
        )
        .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let usage = "{ budgetUsage { id budgeted policy } }";
    let budgets = c.ok_as(&c.admin, usage, json!({})).await?;
    let budget_id = str_at(&budgets, "/budgetUsage/0/id")?;
    let budget_page = format!("/configuration/budgets/{budget_id}");
    let bad_amount = admin
        .post_from(
            &budget_page,
            &budget_page,
            &[("amount", "-5"), ("policy", "WARN")],
        )
        .await?;
    assert_eq!(bad_amount.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let edited = admin
        .post_from(
            &budget_page,
            &budget_page,
            &[("amount", "450.00"), ("policy", "WARN")],
        )
        .await?;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.ok_as(&c.admin, usage, json!({})).await?["budgetUsage"],
        json!([{ "id": budget_id, "budgeted": "450.00", "policy": "WARN" }])
    );

    let mut executor = signed_in(&c.app, &c.executor).await?;
    for path in [
        "/configuration/accounts/new".to_owned(),
        page.clone(),
        "/configuration/budgets/new".to_owned(),
        budget_page.clone(),
    ] {
        assert_eq!(
            executor.get(&path).await?.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (_, token_page) = executor.get("/work").await?;
    let token = form_token(&token_page)?;
    let sneaked = executor
        .post(
            &page,
            &[
                ("_token", token.as_str()),
                ("code", "7000"),
                ("name", "Mine"),
                ("account_type", "ASSET"),
            ],
        )
        .await?;
    assert_eq!(sneaked.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        accounts(&c).await?[0]["name"],
        "Travel and lodging",
        "nothing changed"
    );
    Ok(())
}

async fn job_state(c: &Company, id: &str) -> anyhow::Result<String> {
    let data = c
        .ok_as(
            &c.admin,
            "query($id: ID!) { job(id: $id) { state } }",
            json!({ "id": id }),
        )
        .await?;
    str_at(&data, "/job/state")
}

async fn queue_paused(c: &Company, name: &str) -> anyhow::Result<bool> {
    let queues = c
        .ok_as(&c.admin, "{ queues { name paused } }", json!({}))
        .await?;
    queues["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["name"] == name)
        .and_then(|q| q["paused"].as_bool())
        .ok_or_else(|| anyhow::anyhow!("no queue {name}: {queues}"))
}

async fn operators_steer_queues_and_jobs_from_the_console(backend: Backend) -> anyhow::Result<()> {
    // The scheduler runs here, so its queues exist; the exports queue is held while the test
    // steers a job in it, as `export::` does.
    let Some(app) =
        crate::helpers::TestApp::spawn_with(backend, &[("INTERLINK_SCHEDULER", "true")]).await?
    else {
        return Ok(());
    };
    let c = Company::new(app).await?;
    books(&c).await?;
    let mut admin = admin_browser(&c).await?;
    let (status, page) = admin.get("/operations").await?;
    assert_eq!(status, StatusCode::OK);
    let pause = "/operations/queues/exports/pause";
    assert!(page.contains(pause), "the exports queue can be paused");
    assert_eq!(
        admin.post(pause, &[]).await?.status(),
        StatusCode::FORBIDDEN
    );
    assert!(!queue_paused(&c, "exports").await?, "nothing changed");
    let paused = admin.post_from("/operations", pause, &[]).await?;
    assert_eq!(paused.status(), StatusCode::SEE_OTHER);
    assert!(queue_paused(&c, "exports").await?);
    assert_eq!(
        admin
            .post_from("/operations", "/operations/queues/nowhere/pause", &[])
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );

    let started = admin
        .post_from(
            "/finance",
            "/finance/export/trial-balance.csv",
            &[("async", "1")],
        )
        .await?;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let job_page = location(&started);
    let job = job_page
        .strip_prefix("/exports/")
        .ok_or_else(|| anyhow::anyhow!("went to {job_page}"))?
        .to_owned();
    let (status, waiting) = admin.get(&job_page).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(waiting.contains("AVAILABLE") && !waiting.contains("/download\""));

    let (_, page) = admin.get("/operations").await?;
    assert!(
        page.contains(&format!("id=\"job-{job}\"")),
        "the job is listed"
    );
    assert!(page.contains("/operations/queues/exports/resume"));
    let (_, filtered) = admin.get("/operations?state=COMPLETED").await?;
    assert!(!filtered.contains(&format!("id=\"job-{job}\"")));
    assert_eq!(
        admin.get("/operations?state=NOPE").await?.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let cancel = format!("/operations/jobs/{job}/cancel");
    assert_eq!(
        admin.post_from("/operations", &cancel, &[]).await?.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(job_state(&c, &job).await?, "CANCELLED");
    assert_eq!(
        admin.post_from("/operations", &cancel, &[]).await?.status(),
        StatusCode::CONFLICT
    );
    let retry = admin
        .post_from("/operations", &format!("/operations/jobs/{job}/retry"), &[])
        .await?;
    assert_eq!(retry.status(), StatusCode::SEE_OTHER);
    assert_eq!(job_state(&c, &job).await?, "AVAILABLE");

    let mut executor = signed_in(&c.app, &c.executor).await?;
    assert_eq!(executor.get("/operations").await?.0, StatusCode::NOT_FOUND);
    let (_, work) = executor.get("/work").await?;
    assert!(!work.contains("href=\"/operations\""));
    let token = form_token(&work)?;
    let sneaked = executor
        .post(&cancel, &[("_token", token.as_str())])
        .await?;
    assert_eq!(sneaked.status(), StatusCode::NOT_FOUND);
    assert_eq!(job_state(&c, &job).await?, "AVAILABLE");
    // Someone else's export is not theirs to see.
    assert_eq!(executor.get(&job_page).await?.0, StatusCode::NOT_FOUND);

    let resumed = admin
        .post_from("/operations", "/operations/queues/exports/resume", &[])
        .await?;
    assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
    assert!(!queue_paused(&c, "exports").await?);

    // Resumed, the export runs; its page then offers the file, which downloads as CSV.
    let mut ready = String::new();
    for _ in 0..300 {
        let (_, html) = admin.get(&job_page).await?;
        if html.contains(&format!("{job_page}/download")) {
            ready = html;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready.contains("COMPLETED"), "the export finished: {ready}");
    let file = admin
        .request(reqwest::Method::GET, &format!("{job_page}/download"))
        .send()
        .await?;
    assert_eq!(file.status(), StatusCode::OK);
    assert!(file
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv")));
    assert!(file.text().await?.contains("125.50"));
    assert_eq!(
        executor.get(&format!("{job_page}/download")).await?.0,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

fn between<'h>(html: &'h str, start: &str, end: &str) -> anyhow::Result<&'h str> {
    let from = html
        .find(start)
        .ok_or_else(|| anyhow::anyhow!("no {start} on the page"))?
        + start.len();
    let to = html[from..]
        .find(end)
        .ok_or_else(|| anyhow::anyhow!("{start} is not closed"))?;
    Ok(&html[from..from + to])
}

async fn integrations_show_a_key_once_and_replay_deliveries(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut admin = admin_browser(&c).await?;
    let made = admin
        .post_from(
            "/integrations",
            "/integrations/apps",
            &[
                ("name", "Harbour partner"),
                ("department", ""),
                ("scope.TASKS_READ", "on"),
                ("scope.EVENTS_SUBSCRIBE", "on"),
            ],
        )
        .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let app_page = location(&made);
    assert!(app_page.starts_with("/integrations/apps/"), "{app_page}");
    let (_, page) = admin.get(&app_page).await?;
    assert!(page.contains("TASKS_READ, EVENTS_SUBSCRIBE") || page.contains("EVENTS_SUBSCRIBE"));

    let key_page = admin
        .post_from(&app_page, &format!("{app_page}/keys"), &[("name", "ci")])
        .await?;
    assert_eq!(key_page.status(), StatusCode::OK);
    let html = key_page.text().await?;
    let key = between(&html, "<code id=\"revealed-key\">", "</code>")?.to_owned();
    let me = "{ tasks(first: 1) { totalCount } }";
    let as_key = async |key: &str| -> anyhow::Result<Value> {
        Ok(c.app
            .http
            .post(c.app.url("/graphql"))
            .header("x-api-key", key)
            .json(&json!({ "query": me }))
            .send()
            .await?
            .json()
            .await?)
    };
    let works = as_key(&key).await?;
    assert!(works.get("errors").is_none(), "the key works: {works}");
    let (_, later) = admin.get(&app_page).await?;
    assert!(!later.contains(&key), "the key is shown once");
    let key_id = between(&later, "/integrations/keys/", "/revoke")?.to_owned();
    let revoked = admin
        .post_from(
            &app_page,
            &format!("/integrations/keys/{key_id}/revoke"),
            &[],
        )
        .await?;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let refused = as_key(&key).await?;
    assert_eq!(
        crate::helpers::error_code(&refused),
        Some("UNAUTHENTICATED"),
        "revoked: {refused}"
    );

    let bad_url = admin
        .post_from(
            &app_page,
            &format!("{app_page}/endpoints"),
            &[
                ("url", "ftp://partner.internal/hook"),
                ("topic.tasks", "on"),
            ],
        )
        .await?;
    assert_eq!(bad_url.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_url.text().await?.contains("endpoint-url-error"));
    let endpoint = admin
        .post_from(
            &app_page,
            &format!("{app_page}/endpoints"),
            &[("url", "http://127.0.0.1:9/hook"), ("topic.tasks", "on")],
        )
        .await?;
    assert_eq!(endpoint.status(), StatusCode::OK);
    let html = endpoint.text().await?;
    assert!(between(&html, "<code id=\"revealed-secret\">", "</code>")?.starts_with("whsec_"));
    let endpoint_page = format!(
        "/integrations/endpoints/{}",
        between(&html, "href=\"/integrations/endpoints/", "\"")?
    );

    // What the log holds after this page was drawn is replayed to the endpoint.
    let (_, before) = admin.get(&endpoint_page).await?;
    let cursor = between(&before, "data-events=\"/console/events?after=", "\"")?.to_owned();
    c.draft(&c.category, json!({ "title": "Replayed to the partner" }))
        .await?;
    let bad = admin
        .post_from(
            &endpoint_page,
            &format!("{endpoint_page}/replay"),
            &[("after", "not a cursor")],
        )
        .await?;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await?.contains("after-error"));
    // On PostgreSQL an entry is readable once every older transaction on the server has
    // finished (see `log::head`); other tests' transactions may hold it back for a moment.
    let mut html = String::new();
    for _ in 0..100 {
        let replayed = admin
            .post_from(
                &endpoint_page,
                &format!("{endpoint_page}/replay"),
                &[("after", cursor.as_str())],
            )
            .await?;
        assert_eq!(replayed.status(), StatusCode::OK);
        html = replayed.text().await?;
        let notice = between(&html, "<div class=\"notice\" role=\"status\">", "</div>")?;
        assert!(notice.ends_with("deliveries queued again"), "{notice}");
        if !notice.starts_with("0 ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivery = between(&html, "/integrations/deliveries/", "/redeliver")?.to_owned();
    let redelivered = admin
        .post_from(
            &endpoint_page,
            &format!("/integrations/deliveries/{delivery}/redeliver"),
            &[],
        )
        .await?;
    assert_eq!(redelivered.status(), StatusCode::SEE_OTHER);

    // An endpoint and an app are switched off and on from their pages.
    let off = admin
        .post_from(
            &endpoint_page,
            &format!("{endpoint_page}/active"),
            &[("active", "false")],
        )
        .await?;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let endpoints = c
        .ok_as(
            &c.admin,
            "query($a: ID!) { webhookEndpoints(appId: $a) { active } }",
            json!({ "a": app_page.trim_start_matches("/integrations/apps/") }),
        )
        .await?;
    assert_eq!(endpoints["webhookEndpoints"][0]["active"], false);
    let refused = admin
        .post_from(
            &endpoint_page,
            &format!("{endpoint_page}/replay"),
            &[("after", cursor.as_str())],
        )
        .await?;
    assert_eq!(
        refused.status(),
        StatusCode::CONFLICT,
        "a disabled endpoint replays nothing"
    );
    let app_off = admin
        .post_from(
            &app_page,
            &format!("{app_page}/active"),
            &[("active", "false")],
        )
        .await?;
    assert_eq!(app_off.status(), StatusCode::SEE_OTHER);
    let apps = c.ok_as(&c.admin, "{ apps { active } }", json!({})).await?;
    assert_eq!(apps["apps"][0]["active"], false);

    let mut executor = signed_in(&c.app, &c.executor).await?;
    for path in ["/integrations", app_page.as_str(), endpoint_page.as_str()] {
        assert_eq!(executor.get(path).await?.0, StatusCode::NOT_FOUND, "{path}");
    }
    Ok(())
}

on_both_backends!(the_organisation_is_managed_from_the_console);

async fn person(c: &Company, id: &str) -> anyhow::Result<Value> {
    let data = c
        .ok_as(
            &c.admin,
            "query($id: ID!) { user(id: $id) { name email isActive department { id } roles { role { name } department { id } } } }",
            json!({ "id": id }),
        )
        .await?;
    Ok(data["user"].clone())
}

async fn departments(c: &Company) -> anyhow::Result<Value> {
    Ok(c.ok_as(
        &c.admin,
        "{ departments { id name parent { id } head { id } } }",
        json!({}),
    )
    .await?["departments"]
        .clone())
}

async fn the_organisation_is_managed_from_the_console(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut admin = admin_browser(&c).await?;
    let org = "/configuration/organisation";
    let (status, page) = admin.get(org).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("action=\"/configuration/users\""));

    // A department under North.
    let before = departments(&c).await?;
    let forged = admin
        .post(
            "/configuration/departments",
            &[("name", "Harbour"), ("parent", c.north.as_str())],
        )
        .await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let blank = admin
        .post_from(
            org,
            "/configuration/departments",
            &[("form", "department"), ("name", " "), ("parent", "")],
        )
        .await?;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.text().await?.contains("department-name-error"));
    assert_eq!(departments(&c).await?, before);
    let made = admin
        .post_from(
            org,
            "/configuration/departments",
            &[
                ("form", "department"),
                ("name", "Harbour"),
                ("parent", c.north.as_str()),
            ],
        )
        .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let harbour = departments(&c)
        .await?
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == "Harbour")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the department was made"))?;
    assert_eq!(harbour["parent"]["id"], c.north.as_str());
    let harbour_id = str_at(&harbour, "/id")?;

    // A person in it; a bad address is refused beside its field and the password never echoed.
    let person_fields = |email: &'static str| {
        [
            ("form", "user"),
            ("name", "Hana Harbour"),
            ("email", email),
            ("password", "a long enough password"),
            ("department", ""),
        ]
    };
    let bad = admin
        .post_from(org, "/configuration/users", &person_fields("not-an-email"))
        .await?;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await?;
    assert!(html.contains("user-email-error") && !html.contains("a long enough password"));
    let mut fields = person_fields("hana@harbour.example").to_vec();
    fields[4] = ("department", harbour_id.as_str());
    let created = admin
        .post_from(org, "/configuration/users", &fields)
        .await?;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let user_page = location(&created);
    let user_id = user_page
        .strip_prefix("/configuration/users/")
        .ok_or_else(|| anyhow::anyhow!("went to {user_page}"))?
        .to_owned();
    let hana = person(&c, &user_id).await?;
    assert_eq!(hana["email"], "hana@harbour.example");
    assert_eq!(hana["department"]["id"], harbour_id.as_str());
    c.app
        .login("hana@harbour.example", "a long enough password")
        .await?;

    // A role with two permissions, granted over the new department, then revoked.
    let role = admin
        .post_from(
            org,
            "/configuration/roles",
            &[
                ("form", "role"),
                ("name", "Dock reviewer"),
                ("permission.task.review", "on"),
                ("permission.task.read", "on"),
            ],
        )
        .await?;
    assert_eq!(role.status(), StatusCode::SEE_OTHER);
    let roles = c
        .ok_as(&c.admin, "{ roles { id name permissions } }", json!({}))
        .await?;
    let dock = roles["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "Dock reviewer")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the role was made: {roles}"))?;
    let mut permissions: Vec<&str> = dock["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    permissions.sort_unstable();
    assert_eq!(permissions, ["task.read", "task.review"]);
    let role_id = str_at(&dock, "/id")?;
    let granted = admin
        .post_from(
            &user_page,
            &format!("{user_page}/grants"),
            &[
                ("form", "grant"),
                ("role", role_id.as_str()),
                ("department", harbour_id.as_str()),
            ],
        )
        .await?;
    assert_eq!(granted.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        person(&c, &user_id).await?["roles"],
        json!([{ "role": { "name": "Dock reviewer" }, "department": { "id": harbour_id } }])
    );
    let (_, page) = admin.get(&user_page).await?;
    let revoke = format!(
        "/configuration/grants/{}/revoke",
        between(&page, "/configuration/grants/", "/revoke")?
    );
    let revoked = admin.post_from(&user_page, &revoke, &[]).await?;
    assert_eq!(location(&revoked), user_page);
    assert_eq!(person(&c, &user_id).await?["roles"], json!([]));

    // The role's own page renames it and changes its permissions.
    let role_page = format!("/configuration/roles/{role_id}");
    assert_eq!(admin.get(&role_page).await?.0, StatusCode::OK);
    let renamed = admin
        .post_from(
            &role_page,
            &role_page,
            &[
                ("form", "role"),
                ("name", "Dock lead"),
                ("permission.task.configure", "on"),
            ],
        )
        .await?;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    let roles = c
        .ok_as(&c.admin, "{ roles { id name permissions } }", json!({}))
        .await?;
    let dock = roles["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == role_id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(dock["name"], "Dock lead");
    assert_eq!(dock["permissions"], json!(["task.configure"]));

    // Rename the department and make Hana its head; then deactivate her.
    let department_page = format!("/configuration/departments/{harbour_id}");
    let edited = admin
        .post_from(
            &department_page,
            &department_page,
            &[
                ("name", "Harbour office"),
                ("parent", c.north.as_str()),
                ("head", user_id.as_str()),
            ],
        )
        .await?;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    let harbour = departments(&c)
        .await?
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == harbour_id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(harbour["name"], "Harbour office");
    assert_eq!(harbour["head"]["id"], user_id.as_str());
    let off = admin
        .post_from(
            &user_page,
            &format!("{user_page}/active"),
            &[("active", "false")],
        )
        .await?;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert_eq!(person(&c, &user_id).await?["isActive"], false);
    // A second "deactivate" (a page loaded before, a double click) is not an undo.
    let again = admin
        .post_from(
            &user_page,
            &format!("{user_page}/active"),
            &[("active", "false")],
        )
        .await?;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(person(&c, &user_id).await?["isActive"], false);
    assert!(c
        .app
        .login("hana@harbour.example", "a long enough password")
        .await
        .is_err());

    // None of it is open to anyone else.
    let mut executor = signed_in(&c.app, &c.executor).await?;
    for path in [
        org,
        user_page.as_str(),
        department_page.as_str(),
        role_page.as_str(),
    ] {
        assert_eq!(executor.get(path).await?.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, work) = executor.get("/work").await?;
    let token = form_token(&work)?;
    let sneaked = executor
        .post(
            "/configuration/departments",
            &[("_token", token.as_str()), ("name", "Mine"), ("parent", "")],
        )
        .await?;
    assert_eq!(sneaked.status(), StatusCode::NOT_FOUND);
    assert!(!departments(&c).await?.to_string().contains("\"Mine\""));
    Ok(())
}

on_both_backends!(flows_and_transaction_types_are_edited_from_the_console);

async fn flows(c: &Company) -> anyhow::Result<Value> {
    Ok(c.ok_as(
        &c.admin,
        "{ approvalFlows { id name version steps { name departmentHead approverRole requiredApprovals slaHours condition { field op value } } } }",
        json!({}),
    )
    .await?["approvalFlows"]
        .clone())
}

async fn flows_and_transaction_types_are_edited_from_the_console(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let mut admin = admin_browser(&c).await?;
    let before = flows(&c).await?;
    let flow_id = str_at(&before, "/0/id")?;
    let page = format!("/configuration/flows/{flow_id}");
    let (status, html) = admin.get(&page).await?;
    assert_eq!(status, StatusCode::OK);
    let first_step = str_at(&before, "/0/steps/0/name")?;
    assert!(
        html.contains(&format!("value=\"{first_step}\"")),
        "the form holds the steps"
    );

    let mut form: Vec<(String, String)> = vec![("name".into(), "Reviewed twice".into())];
    let steps = before[0]["steps"].as_array().cloned().unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        let rule = if step["departmentHead"] == true {
            ("DEPARTMENT_HEAD", String::new())
        } else {
            (
                "ROLE",
                step["approverRole"].as_str().unwrap_or_default().to_owned(),
            )
        };
        form.push((
            format!("step.{i}.name"),
            step["name"].as_str().unwrap_or_default().into(),
        ));
        form.push((format!("step.{i}.rule"), rule.0.into()));
        form.push((format!("step.{i}.rule_value"), rule.1));
        form.push((format!("step.{i}.required"), "1".into()));
        form.push((format!("step.{i}.sla"), "12".into()));
    }
    let added = steps.len();
    form.extend([
        (format!("step.{added}.name"), "Large amounts".into()),
        (format!("step.{added}.rule"), "DEPARTMENT_HEAD".into()),
        (format!("step.{added}.condition_field"), "cashOutput".into()),
        (format!("step.{added}.condition_op"), "GTE".into()),
        (format!("step.{added}.condition_value"), "10000".into()),
    ]);
    let mut bad = form.clone();
    bad.push((format!("step.{}.name", added + 1), "Nobody".into()));
    bad.push((format!("step.{}.rule", added + 1), "USER".into()));
    bad.push((
        format!("step.{}.rule_value", added + 1),
        "not-a-user".into(),
    ));
    let bad_fields: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = admin.post_from(&page, &page, &bad_fields).await?;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await?.contains("steps-error"));
    assert_eq!(flows(&c).await?, before, "nothing changed");

    let good: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = admin.post_from(&page, &page, &good).await?;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let after = flows(&c).await?;
    assert_eq!(after[0]["name"], "Reviewed twice");
    assert_eq!(
        after[0]["version"],
        before[0]["version"].as_i64().unwrap_or(0) + 1
    );
    let new_steps = after[0]["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(new_steps.len(), added + 1);
    assert!(new_steps[..added].iter().all(|s| s["slaHours"] == 12));
    assert_eq!(
        new_steps[added]["condition"],
        json!({ "field": "cashOutput", "op": "GTE", "value": "10000" })
    );

    let created = admin
        .post_from(
            "/configuration/flows/new",
            "/configuration/flows/new",
            &[
                ("name", "Head only"),
                ("step.0.name", "Head"),
                ("step.0.rule", "DEPARTMENT_HEAD"),
                ("step.0.required", "1"),
            ],
        )
        .await?;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let made = flows(&c).await?;
    let head_only = made
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "Head only")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the flow was made: {made}"))?;
    assert_eq!(head_only["version"], 1);
    assert_eq!(head_only["steps"][0]["departmentHead"], true);
    let empty = admin
        .post_from(
            "/configuration/flows/new",
            "/configuration/flows/new",
            &[("name", "No steps")],
        )
        .await?;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A transaction type, made and edited; bad JSON is refused beside its field.
    let types = "/configuration/types/new";
    let made = admin
        .post_from(
            types,
            types,
            &[
                ("code", "NOTE"),
                ("name", "Note"),
                ("route", "DATA_PROCESS"),
                ("approval_flow", ""),
                ("payload_schema", "{ \"type\": \"object\" }"),
                ("posting_rule", ""),
                ("forward_url", ""),
            ],
        )
        .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let listed = c
        .ok_as(
            &c.admin,
            "{ transactionTypes { id code name payloadSchema } }",
            json!({}),
        )
        .await?;
    let note = listed["transactionTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["code"] == "NOTE")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the type was made: {listed}"))?;
    let type_page = format!("/configuration/types/{}", str_at(&note, "/id")?);
    let edit = |schema: &'static str| {
        [
            ("code", "NOTE"),
            ("name", "Expense note"),
            ("route", "DATA_PROCESS"),
            ("approval_flow", ""),
            ("payload_schema", schema),
            ("posting_rule", ""),
            ("forward_url", ""),
        ]
    };
    let broken = admin
        .post_from(&type_page, &type_page, &edit("{ not json"))
        .await?;
    assert_eq!(broken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.text().await?.contains("payload-schema-error"));
    let edited = admin
        .post_from(
            &type_page,
            &type_page,
            &edit("{ \"type\": \"object\", \"required\": [\"amount\"] }"),
        )
        .await?;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    let listed = c
        .ok_as(
            &c.admin,
            "{ transactionTypes { code name payloadSchema } }",
            json!({}),
        )
        .await?;
    let note = listed["transactionTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["code"] == "NOTE")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(note["name"], "Expense note");
    assert_eq!(note["payloadSchema"]["required"], json!(["amount"]));

    let mut executor = signed_in(&c.app, &c.executor).await?;
    for path in [
        page.as_str(),
        type_page.as_str(),
        "/configuration/flows/new",
        types,
    ] {
        assert_eq!(executor.get(path).await?.0, StatusCode::NOT_FOUND, "{path}");
    }
    Ok(())
}
