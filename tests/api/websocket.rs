//! GraphQL over websocket: graphql-transport-ws, its exact close codes, and the subscription cap.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{unique_email, Backend, TestApp};
use crate::{on_both_backends, spawn_or_skip};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(app: &TestApp) -> anyhow::Result<Socket> {
    let mut request = app.ws_url().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    Ok(socket)
}

pub async fn send(socket: &mut Socket, message: Value) -> anyhow::Result<()> {
    socket
        .send(Message::Text(message.to_string().into()))
        .await?;
    Ok(())
}

/// The next protocol message, skipping transport pings.
pub async fn next(socket: &mut Socket, within: Duration) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(within, socket.next()).await? {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => anyhow::bail!("expected a text message, got {other:?}"),
        }
    }
}

/// Waits for the server to close the socket and returns the close code.
pub async fn close_code(socket: &mut Socket) -> anyhow::Result<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await? {
            Some(Ok(Message::Close(Some(frame)))) => return Ok(u16::from(frame.code)),
            Some(Ok(Message::Close(None))) | None => anyhow::bail!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => anyhow::bail!("socket error before close: {err}"),
        }
    }
}

pub async fn init(socket: &mut Socket, token: Option<&str>) -> anyhow::Result<()> {
    let payload = match token {
        Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
        None => json!({}),
    };
    send(
        socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await?;
    let ack = next(socket, Duration::from_secs(5)).await?;
    anyhow::ensure!(ack["type"] == "connection_ack", "expected ack, got {ack}");
    Ok(())
}

const EVENTS: &str = "subscription { identityEvents { kind subjectId actorId } }";

on_both_backends!(
    admin_receives_identity_events,
    subscriptions_need_permission,
    close_codes_are_exact,
    subscriptions_per_connection_are_capped,
    sockets_end_with_their_session,
    sockets_of_a_roles_holders_end_when_the_role_changes,
);

/// A socket resolved its viewer's grants when it opened: changing a role it holds must not leave
/// it running on the old permissions.
async fn sockets_of_a_roles_holders_end_when_the_role_changes(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let role = app
        .gql_ok(
            token,
            "mutation { createRole(input: { name: \"Watcher\", permissions: [\"finance.read\"] }) { id } }",
            json!({}),
        )
        .await?;
    let role_id = crate::helpers::str_at(&role, "/createRole/id")?;
    let holder_email = unique_email("holder");
    let holder_id = app
        .create_user(&admin.access, &holder_email, "a good password")
        .await?;
    app.gql_ok(
        token,
        "mutation($u: ID!, $r: ID!) { grantRole(userId: $u, roleId: $r) { id } }",
        json!({ "u": holder_id, "r": role_id }),
    )
    .await?;
    let bystander_email = unique_email("bystander");
    app.create_user(&admin.access, &bystander_email, "a good password")
        .await?;
    let holder = app.login(&holder_email, "a good password").await?;
    let bystander = app.login(&bystander_email, "a good password").await?;
    let mut holding = connect(&app).await?;
    init(&mut holding, Some(&holder.access)).await?;
    let mut bystanding = connect(&app).await?;
    init(&mut bystanding, Some(&bystander.access)).await?;

    app.gql_ok(
        token,
        "mutation($id: ID!) { updateRole(id: $id, input: { permissions: [\"task.review\"] }) { id } }",
        json!({ "id": role_id }),
    )
    .await?;
    assert_eq!(close_code(&mut holding).await?, 4403);
    // The bystander's socket still answers: a ping round trip after the holder's close.
    send(&mut bystanding, json!({ "type": "ping" })).await?;
    assert_eq!(
        next(&mut bystanding, Duration::from_secs(5)).await?["type"],
        "pong"
    );
    Ok(())
}

async fn sockets_end_with_their_session(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("session");
    let user_id = app
        .create_user(&admin.access, &email, "a good password")
        .await?;
    let user = app.login(&email, "a good password").await?;

    // Only subscriptions run over the socket.
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&user.access)).await?;
    send(
        &mut socket,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ me { id } }" } }),
    )
    .await?;
    let refused = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );

    // Deactivation closes the open socket with 4403.
    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": user_id }),
    )
    .await?;
    assert_eq!(close_code(&mut socket).await?, 4403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closes_when_its_token_expires() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite, &[("INTERLINK_ACCESS_TOKEN_TTL_SECS", "1")]);
    let admin = app.admin().await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    assert_eq!(close_code(&mut socket).await?, 4403);
    Ok(())
}

async fn admin_receives_identity_events(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    // From the start of the log: a subscription without a cursor starts when its resolver runs,
    // which the client cannot see, so a change made right after subscribing could precede it.
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription($a: String) { identityEvents(after: $a) { kind subjectId actorId } }", "variables": { "a": "00000000000000000000000000000000" } } }),
    )
    .await?;

    let user_id = app
        .create_user(&admin.access, &unique_email("ws"), "a good password")
        .await?;
    let event = loop {
        let event = next(&mut socket, Duration::from_secs(20)).await?;
        if event["payload"]["data"]["identityEvents"]["subjectId"] == user_id.as_str() {
            break event;
        }
    };
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(event["id"], "1");
    assert_eq!(
        event["payload"]["data"]["identityEvents"]["kind"],
        "USER_CREATED"
    );
    assert_eq!(
        event["payload"]["data"]["identityEvents"]["subjectId"],
        user_id.as_str()
    );
    assert_eq!(
        event["payload"]["data"]["identityEvents"]["actorId"],
        admin.user_id.as_str()
    );

    send(&mut socket, json!({ "id": "1", "type": "complete" })).await?;
    Ok(())
}

async fn subscriptions_need_permission(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("plain");
    app.create_user(&admin.access, &email, "a good password")
        .await?;
    let plain = app.login(&email, "a good password").await?;

    for token in [Some(plain.access.as_str()), None] {
        let mut socket = connect(&app).await?;
        init(&mut socket, token).await?;
        send(
            &mut socket,
            json!({ "id": "a", "type": "subscribe", "payload": { "query": EVENTS } }),
        )
        .await?;
        let reply = next(&mut socket, Duration::from_secs(5)).await?;
        let expected = if token.is_some() {
            "FORBIDDEN"
        } else {
            "UNAUTHENTICATED"
        };
        let code = reply
            .pointer("/payload/0/extensions/code")
            .or_else(|| reply.pointer("/payload/errors/0/extensions/code"))
            .cloned();
        assert_eq!(code, Some(json!(expected)), "{reply}");
    }
    Ok(())
}

async fn close_codes_are_exact(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, &[("INTERLINK_WS_INIT_TIMEOUT_MS", "300")]);
    let admin = app.admin().await?;
    let subscribe =
        |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": EVENTS } });

    let mut socket = connect(&app).await?;
    socket
        .send(Message::Text("this is not json".into()))
        .await?;
    assert_eq!(close_code(&mut socket).await?, 4400);

    let mut socket = connect(&app).await?;
    send(&mut socket, json!({ "type": "no_such_type" })).await?;
    assert_eq!(close_code(&mut socket).await?, 4400);

    let mut socket = connect(&app).await?;
    send(&mut socket, subscribe("1")).await?;
    assert_eq!(close_code(&mut socket).await?, 4401);

    let mut socket = connect(&app).await?;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged.token.here" } })).await?;
    assert_eq!(close_code(&mut socket).await?, 4403);

    let mut socket = connect(&app).await?;
    assert_eq!(close_code(&mut socket).await?, 4408);

    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    send(&mut socket, subscribe("dup")).await?;
    send(&mut socket, subscribe("dup")).await?;
    assert_eq!(close_code(&mut socket).await?, 4409);

    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await?;
    assert_eq!(close_code(&mut socket).await?, 4429);

    // Without the subprotocol the upgrade is refused.
    let plain = tokio_tungstenite::connect_async(app.ws_url()).await;
    assert!(plain.is_err());
    Ok(())
}

async fn subscriptions_per_connection_are_capped(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, &[("INTERLINK_WS_MAX_SUBSCRIPTIONS", "2")]);
    let admin = app.admin().await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    for id in ["a", "b", "c"] {
        send(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": EVENTS } }),
        )
        .await?;
    }
    let refused = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["id"], "c");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");

    // Completing one frees a slot once the server confirms…
    send(&mut socket, json!({ "id": "a", "type": "complete" })).await?;
    let echo = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(
        (echo["type"].as_str(), echo["id"].as_str()),
        (Some("complete"), Some("a")),
        "{echo}"
    );
    send(
        &mut socket,
        json!({ "id": "d", "type": "subscribe", "payload": { "query": EVENTS } }),
    )
    .await?;
    send(&mut socket, json!({ "type": "ping" })).await?;
    let reply = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(reply["type"], "pong", "d was refused: {reply}");
    // …and the cap still holds after that.
    send(
        &mut socket,
        json!({ "id": "e", "type": "subscribe", "payload": { "query": EVENTS } }),
    )
    .await?;
    let refused = next(&mut socket, Duration::from_secs(5)).await?;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("e")),
        "{refused}"
    );

    Ok(())
}
