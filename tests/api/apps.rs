//! Partner apps: keys made, used, expired and revoked; scopes and departments holding an app
//! to its categories and rows, over HTTP and the websocket; apps as transaction sources.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, unique_email, Backend, Deployment, TestApp};
use crate::websocket::{close_code, connect, next, send, Socket};
use crate::{on_both_backends, spawn_or_skip};

on_both_backends!(
    keys_are_shown_once_stored_hashed_and_refused_once_revoked_or_expired,
    scopes_decide_which_fields_an_app_may_use,
    a_department_app_sees_only_its_subtree,
    socket_events_carry_only_the_apps_categories,
    apps_submit_transactions_as_their_own_source,
    only_managers_manage_apps,
);

const CREATE_APP: &str = "mutation($i: CreateAppInput!) { createApp(input: $i) { id name scopes active departmentId serviceUserId } }";
const CREATE_KEY: &str = "mutation($a: ID!, $n: String!, $e: DateTime) { createApiKey(appId: $a, name: $n, expiresAt: $e) { key { id hint usable expiresAt } secret } }";

/// An app with `scopes` (over `department` when given) and one key: (app id, key secret).
pub async fn app_with_key(
    app: &TestApp,
    admin: &str,
    scopes: &[&str],
    department: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let created = app
        .gql_ok(
            Some(admin),
            CREATE_APP,
            json!({ "i": { "name": "Partner CRM", "scopes": scopes, "departmentId": department } }),
        )
        .await?;
    let app_id = str_at(&created, "/createApp/id")?;
    let key = app
        .gql_ok(
            Some(admin),
            CREATE_KEY,
            json!({ "a": app_id, "n": "production" }),
        )
        .await?;
    Ok((app_id, str_at(&key, "/createApiKey/secret")?))
}

async fn with_header(
    app: &TestApp,
    header: &str,
    value: &str,
    query: &str,
) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(header, value)
        .json(&json!({ "query": query }))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn keys_are_shown_once_stored_hashed_and_refused_once_revoked_or_expired(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(backend, &[]).await? else {
        return Ok(());
    };
    let a = deployment.node().await?;
    // On PostgreSQL (and Redis when configured) a second node shares the database: a key
    // revoked through one is refused by the other on the next request.
    let b = match backend {
        Backend::Postgres => Some(deployment.node().await?),
        Backend::Sqlite => None,
    };
    let other = b.as_ref().unwrap_or(&a);
    let admin = a.admin().await?;
    let (app_id, secret) = app_with_key(&a, &admin.access, &["TASKS_READ"], None).await?;
    assert!(secret.starts_with("ilk_"), "{secret}");

    // Both header forms work, on either node.
    let tasks = "{ tasks(first: 1) { totalCount } }";
    let (status, body) =
        with_header(&a, "authorization", &format!("Bearer {secret}"), tasks).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    let (status, body) = with_header(other, "x-api-key", &secret, tasks).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");

    // The database holds no usable secret: only a hash, and the key's last four characters.
    let row = entities::api_key::Entity::find()
        .all(&a.state.db.conn)
        .await?
        .into_iter()
        .find(|k| secret.contains(&k.id.simple().to_string()))
        .ok_or_else(|| anyhow::anyhow!("no row for the key"))?;
    let secret_part = &secret[secret.len() - 38..];
    for column in [&row.secret_hash, &row.hint, &row.name] {
        assert!(
            !column.contains(secret_part),
            "a column holds the secret: {column}"
        );
    }
    assert_eq!(row.secret_hash.len(), 64);
    assert_eq!(row.hint, secret[secret.len() - 4..]);
    // The hash is no key: presenting it is refused.
    let hashed = format!("ilk_{}_{}", row.id.simple(), row.secret_hash);
    let (status, _) = with_header(&a, "x-api-key", &hashed, tasks).await?;
    assert_eq!(status, 401);
    // last_used_at was recorded.
    assert!(row.last_used_at.is_some());

    // A changed character, a malformed key, or both headers at once: 401.
    let mut tampered = secret.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered)?;
    for bad in [tampered.as_str(), "ilk_nonsense", "not-a-key"] {
        let (status, body) = with_header(&a, "x-api-key", bad, tasks).await?;
        assert_eq!(status, 401, "{bad}: {body}");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    }
    let both = a
        .http
        .post(a.url("/graphql"))
        .header("x-api-key", &secret)
        .bearer_auth(&admin.access)
        .json(&json!({ "query": tasks }))
        .send()
        .await?;
    assert_eq!(both.status().as_u16(), 401);

    // An expiry in the past is refused when the key is made…
    let past = a
        .gql(
            Some(&admin.access),
            CREATE_KEY,
            json!({ "a": app_id, "n": "old", "e": "2020-01-01T00:00:00Z" }),
        )
        .await?;
    assert_eq!(error_code(&past), Some("BAD_USER_INPUT"), "{past}");
    // …and a key whose expiry passes is refused from then on (its expiry moved into the past
    // behind the API's back, as time would).
    let soon = a
        .gql_ok(
            Some(&admin.access),
            CREATE_KEY,
            json!({ "a": app_id, "n": "temporary", "e": "2099-01-01T00:00:00Z" }),
        )
        .await?;
    let soon_secret = str_at(&soon, "/createApiKey/secret")?;
    let soon_id = str_at(&soon, "/createApiKey/key/id")?;
    assert_eq!(
        with_header(&a, "x-api-key", &soon_secret, tasks).await?.0,
        200
    );
    entities::api_key::Entity::update_many()
        .col_expr(
            entities::api_key::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH),
        )
        .filter(entities::api_key::Column::Id.eq(uuid::Uuid::parse_str(&soon_id)?))
        .exec(&a.state.db.conn)
        .await?;
    let (status, body) = with_header(other, "x-api-key", &soon_secret, tasks).await?;
    assert_eq!(status, 401, "{body}");

    // Revoked through one node: refused by the other on the very next request.
    let key_id = row.id.to_string();
    let revoked = a
        .gql_ok(
            Some(&admin.access),
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt usable } }",
            json!({ "id": key_id }),
        )
        .await?;
    assert_eq!(revoked["revokeApiKey"]["usable"], false);
    let (status, body) = with_header(other, "x-api-key", &secret, tasks).await?;
    assert_eq!(status, 401, "{body}");
    let (status, _) = with_header(&a, "authorization", &format!("Bearer {secret}"), tasks).await?;
    assert_eq!(status, 401);

    // Listing shows the keys without their secrets.
    let listed = a
        .gql_ok(
            Some(&admin.access),
            "query($id: ID!) { app(id: $id) { keys { name hint usable } } }",
            json!({ "id": app_id }),
        )
        .await?;
    assert_eq!(
        listed["app"]["keys"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(!listed.to_string().contains(secret_part));
    Ok(())
}

async fn scopes_decide_which_fields_an_app_may_use(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let (_, secret) = app_with_key(&app, &admin.access, &["TASKS_READ"], None).await?;
    let key = Some(secret.as_str());

    let tasks = app
        .gql(key, "{ tasks(first: 5) { totalCount } }", json!({}))
        .await?;
    assert!(tasks["errors"].is_null(), "{tasks}");
    for closed in [
        "{ accounts { code } }",
        "{ me { id } }",
        "{ apps { id } }",
        "{ users(first: 1) { totalCount } }",
        "mutation { createAccount(input: { code: \"9\", name: \"x\", type: ASSET }) { code } }",
        "mutation { createApp(input: { name: \"x\", scopes: [] }) { id } }",
    ] {
        let body = app.gql(key, closed, json!({})).await?;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{closed}: {body}");
        assert!(
            body["data"].is_null()
                || body["data"]
                    .as_object()
                    .is_some_and(|d| d.values().all(Value::is_null)),
            "{body}"
        );
    }
    // An alias does not open a field, and a closed field fails alone.
    let mixed = app
        .gql(
            key,
            "{ t: tasks(first: 1) { totalCount } a: accounts { code } }",
            json!({}),
        )
        .await?;
    assert!(mixed["data"]["t"]["totalCount"].is_number(), "{mixed}");
    assert_eq!(mixed["errors"][0]["path"][0], "a", "{mixed}");
    assert_eq!(mixed["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // Scopes hold wherever a type is reached from: a person's email and a task's approval are
    // not task data, while who the executors are is.
    c_task(&app, &admin.access).await?;
    let nested = app
        .gql(
            key,
            "{ tasks(first: 5) { nodes { id executors { id name email } approval { id } } } }",
            json!({}),
        )
        .await?;
    let errors = nested["errors"].as_array().cloned().unwrap_or_default();
    assert!(!errors.is_empty(), "{nested}");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
        "{nested}"
    );
    let refused: Vec<String> = errors
        .iter()
        .filter_map(|e| e["path"].as_array()?.last()?.as_str().map(str::to_owned))
        .collect();
    assert!(refused.contains(&"email".to_owned()), "{nested}");
    assert!(refused.contains(&"approval".to_owned()), "{nested}");
    assert!(!refused.contains(&"name".to_owned()), "{nested}");
    assert!(
        nested["data"]["tasks"]["nodes"][0]["executors"][0]["name"].is_string(),
        "{nested}"
    );
    // A subscription outside the scopes is refused when it starts.
    let mut socket = connect(&app).await?;
    let ack = init_with(&mut socket, json!({ "apiKey": secret })).await?;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    send(&mut socket, json!({ "id": "n", "type": "subscribe", "payload": { "query": "subscription { notificationEvents { kind } }" } })).await?;
    let answer = next(&mut socket, Duration::from_secs(10)).await?;
    // The refusal comes before any event, as the operation's one result.
    assert_eq!(answer["type"], "next", "{answer}");
    assert!(answer["payload"]["data"].is_null(), "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );

    // Nothing was written by the refused mutations.
    let accounts = app
        .gql_ok(Some(&admin.access), "{ accounts { code } }", json!({}))
        .await?;
    assert_eq!(
        accounts["accounts"].as_array().map(Vec::len),
        Some(0),
        "{accounts}"
    );
    Ok(())
}

/// One main task by the administrator, with the administrator as its executor.
async fn c_task(app: &TestApp, admin: &str) -> anyhow::Result<()> {
    let category = app
        .gql_ok(
            Some(admin),
            "mutation { createTaskCategory(input: { code: \"OPS\", name: \"Ops\", defaultPriority: 2 }) { id } }",
            json!({}),
        )
        .await?;
    let me = app.gql_ok(Some(admin), "{ me { id } }", json!({})).await?;
    app.gql_ok(
        Some(admin),
        "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
        json!({ "i": { "categoryId": str_at(&category, "/createTaskCategory/id")?, "title": "Ops", "executorIds": [str_at(&me, "/me/id")?] } }),
    )
    .await?;
    Ok(())
}

const TASK: &str = "query($id: ID!) { task(id: $id) { id title } }";

/// A main task filed in `department` (main tasks live in their initiator's department), by a
/// new member of it allowed to start them there.
pub(crate) async fn task_in(
    app: &TestApp,
    admin: &str,
    category: &str,
    department: &str,
    title: &str,
) -> anyhow::Result<String> {
    let initiator = crate::tasks::person(app, department).await?;
    let role = app
        .gql_ok(
            Some(admin),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": format!("Starter {title} {}", uuid::Uuid::now_v7()), "permissions": ["task.create_main"] } }),
        )
        .await?;
    let role_id = str_at(&role, "/createRole/id")?;
    app.gql_ok(
        Some(admin),
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": initiator.user_id, "r": role_id, "d": department }),
    )
    .await?;
    let created = app
        .gql_ok(
            Some(&initiator.access),
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
            json!({ "i": { "categoryId": category, "title": title, "executorIds": [initiator.user_id] } }),
        )
        .await?;
    str_at(&created, "/createTask/id")
}

pub(crate) async fn far_department(app: &TestApp, admin: &str) -> anyhow::Result<String> {
    let far = app
        .gql_ok(
            Some(admin),
            "mutation { createDepartment(input: { name: \"Far away\" }) { id } }",
            json!({}),
        )
        .await?;
    str_at(&far, "/createDepartment/id")
}

async fn a_department_app_sees_only_its_subtree(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = crate::tasks::company(backend).await? else {
        return Ok(());
    };
    let admin = c.admin.access.as_str();
    let far = far_department(&c.app, admin).await?;
    let near_task = task_in(&c.app, admin, &c.quick_category, &c.north, "Near").await?;
    let far_task = task_in(&c.app, admin, &c.quick_category, &far, "Far").await?;
    let (_, scoped) = app_with_key(&c.app, admin, &["TASKS_READ"], Some(&c.north)).await?;
    let (_, global) = app_with_key(&c.app, admin, &["TASKS_READ"], None).await?;

    let seen = c
        .app
        .gql_ok(Some(&scoped), TASK, json!({ "id": near_task }))
        .await?;
    assert_eq!(seen["task"]["title"], "Near", "{seen}");
    let hidden = c
        .app
        .gql(Some(&scoped), TASK, json!({ "id": far_task }))
        .await?;
    // A task outside the department does not exist for the app: `task` is null, as for people.
    assert!(hidden["data"]["task"].is_null(), "{hidden}");
    assert!(hidden["errors"].is_null(), "{hidden}");
    let listed = c
        .app
        .gql_ok(
            Some(&scoped),
            "{ tasks(first: 100) { nodes { title } } }",
            json!({}),
        )
        .await?;
    let titles: Vec<&str> = listed["tasks"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert!(titles.contains(&"Near"), "{listed}");
    assert!(!titles.contains(&"Far"), "{listed}");
    // Without a department the same scope reads both.
    let both = c
        .app
        .gql_ok(Some(&global), TASK, json!({ "id": far_task }))
        .await?;
    assert_eq!(both["task"]["title"], "Far");

    // Events: the scoped app pages only its subtree's task events.
    let (_, scoped_events) = app_with_key(
        &c.app,
        admin,
        &["TASKS_READ", "EVENTS_SUBSCRIBE"],
        Some(&c.north),
    )
    .await?;
    // Readers see an entry once no older transaction on the server still runs (other tests
    // share it): poll until the near task's events are there.
    let mut events = Value::Null;
    for _ in 0..300 {
        events = c
            .app
            .gql_ok(
                Some(&scoped_events),
                "{ events(first: 100) { edges { node { topic subjectId } } } }",
                json!({}),
            )
            .await?;
        if events.to_string().contains(&near_task) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = events.to_string();
    assert!(page.contains(&near_task), "{events}");
    assert!(!page.contains(&far_task), "{events}");
    assert!(!page.contains("IDENTITY"), "{events}");
    let refused = c
        .app
        .gql(
            Some(&global),
            "{ events(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    Ok(())
}

async fn init_with(socket: &mut Socket, payload: Value) -> anyhow::Result<Value> {
    send(
        socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await?;
    next(socket, Duration::from_secs(5)).await
}

async fn socket_events_carry_only_the_apps_categories(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = crate::tasks::company(backend).await? else {
        return Ok(());
    };
    let admin = c.admin.access.as_str();
    for (code, kind) in [("1000", "ASSET"), ("6000", "EXPENSE")] {
        c.app
            .gql_ok(
                Some(admin),
                "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
                json!({ "i": { "code": code, "name": code, "type": kind } }),
            )
            .await?;
    }
    let far = far_department(&c.app, admin).await?;
    let (_, key) = app_with_key(
        &c.app,
        admin,
        &["TASKS_READ", "EVENTS_SUBSCRIBE"],
        Some(&c.north),
    )
    .await?;
    let (_, no_events) = app_with_key(&c.app, admin, &["TASKS_READ"], None).await?;

    // A bad key is refused with 4403.
    let mut refused = connect(&c.app).await?;
    send(
        &mut refused,
        json!({ "type": "connection_init", "payload": { "apiKey": "ilk_0000" } }),
    )
    .await?;
    assert_eq!(close_code(&mut refused).await?, 4403);

    // A key without EVENTS_SUBSCRIBE may not subscribe.
    let mut quiet = connect(&c.app).await?;
    let ack = init_with(&mut quiet, json!({ "apiKey": no_events })).await?;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    send(&mut quiet, json!({ "id": "q", "type": "subscribe", "payload": { "query": "subscription { events { kind } }" } })).await?;
    let answer = next(&mut quiet, Duration::from_secs(10)).await?;
    assert!(answer.to_string().contains("FORBIDDEN"), "{answer}");

    let mut socket = connect(&c.app).await?;
    let ack = init_with(&mut socket, json!({ "apiKey": key })).await?;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    // From the start of the log, so nothing committed while subscribing slips past.
    send(&mut socket, json!({ "id": "e", "type": "subscribe", "payload": {
        "query": "subscription { events(after: \"00000000000000000000000000000000\") { topic kind subjectId } }"
    } })).await?;

    // A finance entry, a task elsewhere, then a task in the app's department as the sentinel.
    c.app
        .gql_ok(
            Some(admin),
            "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id } }",
            json!({ "i": { "memo": "m", "postingDate": "2026-11-15", "lines": [
                { "accountCode": "6000", "debit": "10.00" }, { "accountCode": "1000", "credit": "10.00" } ] } }),
        )
        .await?;
    let far_task = task_in(&c.app, admin, &c.quick_category, &far, "Far").await?;
    let near_task = task_in(&c.app, admin, &c.quick_category, &c.north, "Near").await?;
    let mut seen = Vec::new();
    loop {
        let message = next(&mut socket, Duration::from_secs(20)).await?;
        assert_eq!(message["type"], "next", "{message}");
        let event = message["payload"]["data"]["events"].clone();
        let done = event["subjectId"] == near_task.as_str();
        seen.push(event);
        if done {
            break;
        }
    }
    for event in &seen {
        assert_eq!(
            event["topic"], "TASKS",
            "only task events reach the app: {event}"
        );
        assert_ne!(
            event["subjectId"],
            far_task.as_str(),
            "a task outside the department: {event}"
        );
    }
    Ok(())
}

async fn apps_submit_transactions_as_their_own_source(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    app.gql_ok(
        Some(&admin.access),
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }",
        json!({ "i": { "code": "LEAD", "name": "Lead", "route": "DATA_PROCESS",
            "payloadSchema": { "type": "object", "properties": { "customer": { "type": "string" } } } } }),
    )
    .await?;
    let (app_id, key) = app_with_key(&app, &admin.access, &["BUSINESS_SUBMIT"], None).await?;
    let (_, reader) = app_with_key(&app, &admin.access, &["TASKS_READ"], None).await?;
    let submit = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id source { kind appId userId } } }";
    let input = json!({ "i": { "type": "LEAD", "idempotencyKey": "lead-1", "payload": { "customer": "Acme" } } });
    let first = app.gql_ok(Some(&key), submit, input.clone()).await?;
    assert_eq!(
        first["submitTransaction"]["source"]["kind"], "APP",
        "{first}"
    );
    assert_eq!(
        first["submitTransaction"]["source"]["appId"],
        app_id.as_str()
    );
    // Idempotent per source: the same key from the same app is the same transaction…
    let again = app.gql_ok(Some(&key), submit, input.clone()).await?;
    assert_eq!(
        again["submitTransaction"]["id"],
        first["submitTransaction"]["id"]
    );
    // …while the same key from a person is a different source.
    let by_admin = app
        .gql_ok(Some(&admin.access), submit, input.clone())
        .await?;
    assert_ne!(
        by_admin["submitTransaction"]["id"],
        first["submitTransaction"]["id"]
    );
    assert_eq!(by_admin["submitTransaction"]["source"]["kind"], "USER");
    // The app reads its own transaction; an app without a business scope may not submit.
    let id = str_at(&first, "/submitTransaction/id")?;
    let read = app
        .gql_ok(
            Some(&key),
            "query($id: ID!) { transaction(id: $id) { source { kind } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(read["transaction"]["source"]["kind"], "APP");
    let refused = app.gql(Some(&reader), submit, input).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    Ok(())
}

async fn only_managers_manage_apps(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("plain");
    app.create_user(&admin.access, &email, "a good password")
        .await?;
    let plain = app.login(&email, "a good password").await?;
    let input = json!({ "i": { "name": "Mine", "scopes": ["TASKS_READ"] } });
    let refused = app
        .gql(Some(&plain.access), CREATE_APP, input.clone())
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");

    // A holder of integrations.manage may.
    let role = app
        .gql_ok(
            Some(&admin.access),
            "mutation { createRole(input: { name: \"Integrator\", permissions: [\"integrations.manage\"] }) { id } }",
            json!({}),
        )
        .await?;
    let role_id = str_at(&role, "/createRole/id")?;
    let manager_email = unique_email("integrator");
    let manager_id = app
        .create_user(&admin.access, &manager_email, "a good password")
        .await?;
    app.gql_ok(
        Some(&admin.access),
        "mutation($u: ID!, $r: ID!) { grantRole(userId: $u, roleId: $r) { id } }",
        json!({ "u": manager_id, "r": role_id }),
    )
    .await?;
    let manager = app.login(&manager_email, "a good password").await?;
    // A manager gives no more than they hold: integrations.manage alone reads no tasks, so it
    // cannot make an app that does.
    let wider = app
        .gql(Some(&manager.access), CREATE_APP, input.clone())
        .await?;
    assert_eq!(error_code(&wider), Some("FORBIDDEN"), "{wider}");
    let input = json!({ "i": { "name": "Mine", "scopes": ["EVENTS_SUBSCRIBE"] } });
    let created = app.gql_ok(Some(&manager.access), CREATE_APP, input).await?;
    let app_id = str_at(&created, "/createApp/id")?;
    let bad_name = app
        .gql(
            Some(&manager.access),
            CREATE_APP,
            json!({ "i": { "name": "  ", "scopes": [] } }),
        )
        .await?;
    assert_eq!(error_code(&bad_name), Some("BAD_USER_INPUT"), "{bad_name}");

    // A deactivated app's keys stop working.
    let key = app
        .gql_ok(
            Some(&manager.access),
            CREATE_KEY,
            json!({ "a": app_id, "n": "k" }),
        )
        .await?;
    let secret = str_at(&key, "/createApiKey/secret")?;
    assert!(app
        .gql(
            Some(&secret),
            "{ events(first: 1) { edges { cursor } } }",
            json!({})
        )
        .await?["errors"]
        .is_null());
    app.gql_ok(
        Some(&manager.access),
        "mutation($id: ID!) { updateApp(id: $id, input: { active: false }) { active } }",
        json!({ "id": app_id }),
    )
    .await?;
    let (status, _) = with_header(
        &app,
        "x-api-key",
        &secret,
        "{ events(first: 1) { edges { cursor } } }",
    )
    .await?;
    assert_eq!(status, 401);
    // Nobody signs in as the app's service account.
    let service_email = format!("app-{}@apps.interlink.invalid", app_id.replace('-', ""));
    let login = app
        .gql(None, "mutation($e: String!) { login(email: $e, password: \"anything at all\") { accessToken } }", json!({ "e": service_email }))
        .await?;
    assert!(login["data"]["login"].is_null(), "{login}");
    assert_eq!(error_code(&login), Some("UNAUTHENTICATED"), "{login}");
    Ok(())
}

on_both_backends!(
    an_apps_keys_share_one_rate_limit,
    revoking_a_key_closes_the_apps_sockets
);

async fn an_apps_keys_share_one_rate_limit(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_RATE_LIMIT_PER_SECOND", "1"),
            ("INTERLINK_RATE_LIMIT_BURST", "10")
        ]
    );
    let admin = app.admin().await?;
    let (app_id, first) = app_with_key(&app, &admin.access, &["TASKS_READ"], None).await?;
    let second = app
        .gql_ok(
            Some(&admin.access),
            CREATE_KEY,
            json!({ "a": app_id, "n": "second" }),
        )
        .await?;
    let second = str_at(&second, "/createApiKey/secret")?;
    let (_, other_app) = app_with_key(&app, &admin.access, &["TASKS_READ"], None).await?;
    let query = "{ tasks(first: 1) { totalCount } }";
    let mut refused = None;
    // The burst is 10 and refills one a second: well within 40 requests one is refused.
    for n in 0..40 {
        let key = if n % 2 == 0 { &first } else { &second };
        let response = app
            .http
            .post(app.url("/graphql"))
            .header("x-api-key", key)
            .json(&json!({ "query": query }))
            .send()
            .await?;
        if response.status().as_u16() == 429 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.ok_or_else(|| anyhow::anyhow!("no request was limited"))?;
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await?;
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    // The limit is the app's, not everyone's: another app, untouched so far, gets through.
    let other = app.gql(Some(&other_app), query, json!({})).await?;
    assert!(other["errors"].is_null(), "{other}");
    Ok(())
}

async fn revoking_a_key_closes_the_apps_sockets(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let (app_id, secret) = app_with_key(
        &app,
        &admin.access,
        &["TASKS_READ", "EVENTS_SUBSCRIBE"],
        None,
    )
    .await?;
    let mut socket = connect(&app).await?;
    let ack = init_with(
        &mut socket,
        json!({ "Authorization": format!("Bearer {secret}") }),
    )
    .await?;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let keys = app
        .gql_ok(
            Some(&admin.access),
            "query($id: ID!) { app(id: $id) { keys { id } } }",
            json!({ "id": app_id }),
        )
        .await?;
    let key_id = str_at(&keys, "/app/keys/0/id")?;
    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": key_id }),
    )
    .await?;
    assert_eq!(close_code(&mut socket).await?, 4403);
    Ok(())
}

on_both_backends!(approvals_read_covers_the_apps_subtree);

async fn approvals_read_covers_the_apps_subtree(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = crate::tasks::company(backend).await? else {
        return Ok(());
    };
    let admin = c.admin.access.as_str();
    let far = far_department(&c.app, admin).await?;
    let task = c.draft(&c.category, json!({})).await?;
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": task }),
    )
    .await?;
    let approval = c.approval_of(&task).await?;
    let (_, near) = app_with_key(&c.app, admin, &["APPROVALS_READ"], Some(&c.north)).await?;
    let (_, elsewhere) = app_with_key(&c.app, admin, &["APPROVALS_READ"], Some(&far)).await?;
    let (_, tasks_only) = app_with_key(&c.app, admin, &["TASKS_READ"], None).await?;
    let query = "query($id: ID!) { approval(id: $id) { id status } }";
    let seen = c
        .app
        .gql_ok(Some(&near), query, json!({ "id": approval }))
        .await?;
    assert_eq!(seen["approval"]["id"], approval.as_str(), "{seen}");
    let hidden = c
        .app
        .gql_ok(Some(&elsewhere), query, json!({ "id": approval }))
        .await?;
    assert!(hidden["approval"].is_null(), "{hidden}");
    let refused = c
        .app
        .gql(Some(&tasks_only), query, json!({ "id": approval }))
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    Ok(())
}
