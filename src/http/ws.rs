//! GraphQL over websocket (`graphql-transport-ws`): async-graphql runs the protocol, and a guard
//! in front of it enforces what its defaults do not, with the spec's exact close codes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{WebSocket as GraphqlWebSocket, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::client::client_addr;
use super::errors::error_response;
use super::operation::{screen_document, selected_operation};
use super::rate_limit::{charge, client_key, refused_subscription};
use super::HttpState;
use crate::api::request::{authenticate, insert_request_data, Lifetime};
use crate::auth::Viewer;
use crate::domains::identity::model::IdentityEvent;
use crate::error::AppError;
use crate::platform::events::follow::follow;
use crate::platform::live_slots::UserSlot;
use crate::platform::rate_limit::ClientAddr;

const PROTOCOL: &str = "graphql-transport-ws";
/// Client messages waiting for async-graphql; a client that outruns it is cut off, never buffered.
const INBOX: usize = 32;

/// Bytes read from a socket at a time; messages larger than this are assembled across reads.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Unsent bytes one socket may hold before writes to it fail.
const WS_MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

pub async fn upgrade(state: HttpState, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !offered {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "websocket clients must speak the graphql-transport-ws subprotocol",
        );
    }
    // The node's cap is checked before the upgrade, so a refused client gets a plain HTTP answer
    // it can retry on; the slot is held until the socket closes (or the upgrade fails).
    let Some(node_slot) = state.app.live.admit() else {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "this node holds as many websockets as it allows; try again shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, super::errors::RETRY_AFTER);
        return response;
    };
    let max_message = state.app.config.limits.max_body_bytes;
    let client = client_addr(
        &parts.extensions,
        &parts.headers,
        &state.app.config.trusted_proxies,
    );
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        // tungstenite's defaults hold 128 KiB of read and 128 KiB of write buffer per socket
        // and let the write buffer grow without bound: small buffers keep ten thousand idle
        // subscribers cheap. The cap bounds what a failing socket may hold; no single message
        // we send comes near it.
        Ok(ws) => ws
            .protocols([PROTOCOL])
            .max_message_size(max_message)
            .max_frame_size(max_message)
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(WS_MAX_WRITE_BUFFER)
            .on_upgrade(move |socket| async move {
                serve(state, client, socket).await;
                drop(node_slot);
            }),
        Err(rejection) => rejection.into_response(),
    }
}

/// What the guard decided about one client message.
enum Verdict {
    Forward(String),
    Reply(String),
    Close(u16, String),
    Ignore,
}

struct Guard {
    state: HttpState,
    initialised: bool,
    /// Ids with a live operation, including those the client completed whose server-side
    /// `complete` has not come back yet: reusing one of those is still a duplicate.
    active: HashSet<String>,
    max_subscriptions: usize,
    /// Handed to async-graphql's `on_connection_init`, which runs after the guard checked the token.
    session: Arc<Mutex<Option<async_graphql::Data>>>,
    user_id: Option<uuid::Uuid>,
    /// This socket's place under its user's cap, once the user is known.
    user_slot: Option<UserSlot>,
    expires_at: Option<i64>,
    client: ClientAddr,
    /// The bucket this connection's subscriptions draw on: its user's, or its address's.
    rate_key: String,
}

fn is_object_or_null(message: &serde_json::Map<String, Value>, key: &str) -> bool {
    message
        .get(key)
        .is_none_or(|v| v.is_null() || v.is_object())
}

impl Guard {
    async fn on_client_message(&mut self, text: &str) -> Verdict {
        let invalid = || Verdict::Close(4400, "Invalid message received".into());
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return invalid();
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return invalid();
        };
        match kind {
            "connection_init" => {
                if self.initialised {
                    return Verdict::Close(4429, "Too many initialisation requests".into());
                }
                self.initialised = true;
                if !is_object_or_null(&message, "payload") {
                    return invalid();
                }
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                let viewer = match bearer_token(&payload) {
                    None => Viewer::Anonymous,
                    Some(token) => match authenticate(&self.state.app, &token).await {
                        Ok(auth) => {
                            self.expires_at = Some(auth.expires_at);
                            auth.viewer
                        }
                        Err(AppError::Internal(cause)) => {
                            tracing::error!(error = ?cause, "websocket authentication failed");
                            return Verdict::Close(1011, "Internal error".into());
                        }
                        Err(_) => return Verdict::Close(4403, "Forbidden".into()),
                    },
                };
                if let Viewer::User(user) = &viewer {
                    // Known only now: the token comes in `connection_init`, not the upgrade.
                    let Some(slot) = self.state.app.live.admit_user(user.id) else {
                        return Verdict::Close(4429, "Too many connections for this user".into());
                    };
                    self.user_slot = Some(slot);
                    self.user_id = Some(user.id);
                }
                self.rate_key = client_key(&viewer, self.client);
                let mut data = async_graphql::Data::default();
                insert_request_data(&mut data, &self.state.app, viewer, Lifetime::Connection);
                data.insert(self.client);
                *self.session.lock() = Some(data);
                Verdict::Forward(json!({ "type": "connection_init" }).to_string())
            }
            "ping" | "pong" => {
                if !is_object_or_null(&message, "payload") {
                    return invalid();
                }
                Verdict::Forward(text.to_owned())
            }
            "subscribe" => match self.on_subscribe(&message, text) {
                Verdict::Forward(forward) => {
                    let id = message
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match charge(&self.state, &self.rate_key, 1).await {
                        Ok(()) => Verdict::Forward(forward),
                        Err(wait) => {
                            self.active.remove(id);
                            Verdict::Reply(refused_subscription(id, wait))
                        }
                    }
                }
                other => other,
            },
            "complete" => match message.get("id").and_then(Value::as_str) {
                // The id stays taken until async-graphql confirms with its own `complete`.
                Some(id) if self.active.contains(id) => Verdict::Forward(text.to_owned()),
                Some(_) => Verdict::Ignore,
                None => invalid(),
            },
            _ => invalid(),
        }
    }

    fn on_subscribe(&mut self, message: &serde_json::Map<String, Value>, text: &str) -> Verdict {
        let invalid = || Verdict::Close(4400, "Invalid message received".into());
        let id = message
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let Some(payload) = message.get("payload").and_then(Value::as_object) else {
            return invalid();
        };
        let well_formed = payload.get("query").is_some_and(Value::is_string)
            && is_object_or_null(payload, "variables")
            && is_object_or_null(payload, "extensions")
            && payload
                .get("operationName")
                .is_none_or(|v| v.is_null() || v.is_string());
        let Some(id) = id.filter(|_| well_formed) else {
            return invalid();
        };
        if !self.initialised {
            return Verdict::Close(4401, "Unauthorized".into());
        }
        if self.active.contains(id) {
            return Verdict::Close(4409, format!("Subscriber for {id} already exists"));
        }
        let refuse = |message: String, code: &str| {
            Verdict::Reply(
                json!({
                    "id": id,
                    "type": "error",
                    "payload": [{ "message": message, "extensions": { "code": code } }]
                })
                .to_string(),
            )
        };
        // Queries and mutations go over HTTP, where every request is authenticated afresh.
        let request = async_graphql::Request::new(
            payload
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let mut request = match payload.get("operationName").and_then(Value::as_str) {
            Some(name) => request.operation_name(name),
            None => request,
        };
        if let Err(error) = screen_document(&mut request, &self.state.app.config.limits) {
            return refuse(error.message, "BAD_USER_INPUT");
        }
        if let Some(OperationType::Query | OperationType::Mutation) =
            selected_operation(&mut request)
        {
            return refuse(
                "only subscriptions run over the websocket; send queries and mutations to POST /graphql".into(),
                "BAD_USER_INPUT",
            );
        }
        if self.active.len() >= self.max_subscriptions {
            return refuse(
                format!(
                    "at most {} subscriptions per connection",
                    self.max_subscriptions
                ),
                "RATE_LIMITED",
            );
        }
        self.active.insert(id.to_owned());
        Verdict::Forward(text.to_owned())
    }

    /// Server messages that end an operation free its id and its slot under the cap.
    fn on_server_message(&mut self, text: &str) {
        // async-graphql writes the type tag first: a "next" message (nearly every message of a
        // busy socket) ends nothing, and is not parsed again. Any other form is parsed.
        if text.starts_with(r#"{"type":"next","#) {
            return;
        }
        if let Ok(message) = serde_json::from_str::<Value>(text) {
            let ends = matches!(
                message.get("type").and_then(Value::as_str),
                Some("complete" | "error")
            );
            if let (true, Some(id)) = (ends, message.get("id").and_then(Value::as_str)) {
                self.active.remove(id);
            }
        }
    }

    /// An event that ends this user's sessions, or changes what they may see (a grant, or the
    /// permissions of a role they hold), ends this socket: the client reconnects with its
    /// permissions read afresh.
    fn ends_session(&self, event: &IdentityEvent) -> bool {
        self.user_id
            .is_some_and(|user| event.ends_sessions_of(user))
    }

    fn until_expiry(&self) -> Duration {
        match self.expires_at {
            Some(exp) => {
                let left = exp - chrono::Utc::now().timestamp();
                Duration::from_secs(u64::try_from(left).unwrap_or(0))
            }
            None => Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// The token may come as `Authorization: Bearer …`, `authorization`, or `token`.
fn bearer_token(payload: &Value) -> Option<String> {
    [
        "Authorization",
        "authorization",
        "apiKey",
        "token",
        "accessToken",
    ]
    .iter()
    .find_map(|key| payload.get(*key).and_then(Value::as_str))
    .map(|raw| raw.strip_prefix("Bearer ").unwrap_or(raw).trim().to_owned())
    .filter(|t| !t.is_empty())
}

fn close_message(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

enum Sent {
    Done,
    Gone,
    /// The client has not taken the message within the send timeout: it stopped reading.
    Stalled,
}

/// A send with a bound: a client that stops reading fills its TCP window and then every send to
/// it waits, holding its subscriptions (and what they would send) with it.
async fn send_within(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    wait: Duration,
) -> Sent {
    match tokio::time::timeout(wait, sink.send(message)).await {
        Ok(Ok(())) => Sent::Done,
        Ok(Err(_)) => Sent::Gone,
        Err(_) => Sent::Stalled,
    }
}

/// 1013 "try again later": the client may reconnect and resume from its last cursor.
fn stalled_close() -> Message {
    tracing::info!("closing a websocket whose client stopped reading");
    close_message(
        1013,
        "Try again later: messages were not read in time".into(),
    )
}

async fn serve(state: HttpState, client: ClientAddr, mut socket: WebSocket) {
    let gauge = state.app.metrics.websocket_connections.clone();
    gauge.inc();
    let limits = state.app.config.limits.clone();
    // Followed from before the token is checked, so no change committed after that check is
    // missed; a subscriber that falls behind reads what it missed from the log.
    let identity_events = match follow(&state.app.db.conn, state.app.bus.as_ref(), None).await {
        Ok(entries) => entries.filter_map(|entry| async move { entry.decode::<IdentityEvent>() }),
        Err(err) => {
            tracing::error!(error = %err, "following identity events for a websocket failed");
            let _ = tokio::time::timeout(
                limits.ws_send_timeout,
                socket.send(close_message(1011, "Internal error".into())),
            )
            .await;
            gauge.dec();
            return;
        }
    };
    let mut identity_events = Box::pin(identity_events);
    let (mut sink, mut source) = socket.split();
    let (to_graphql, from_guard) = mpsc::channel::<String>(INBOX);
    let session = Arc::new(Mutex::new(None));
    let init_session = session.clone();
    let mut graphql = GraphqlWebSocket::new(
        state.schema.clone(),
        ReceiverStream::new(from_guard),
        WebSocketProtocols::GraphQLWS,
    )
    .on_connection_init(move |_| async move {
        init_session
            .lock()
            .take()
            .ok_or_else(|| async_graphql::Error::new("Forbidden"))
    });
    let mut guard = Guard {
        state,
        initialised: false,
        active: HashSet::new(),
        max_subscriptions: limits.ws_max_subscriptions,
        session,
        user_id: None,
        user_slot: None,
        expires_at: None,
        client,
        rate_key: client.key(),
    };
    let send_timeout = limits.ws_send_timeout;
    let init_deadline = tokio::time::sleep(limits.ws_init_timeout);
    tokio::pin!(init_deadline);

    loop {
        let expiry = tokio::time::sleep(guard.until_expiry());
        let outcome = tokio::select! {
            _ = &mut init_deadline, if !guard.initialised => {
                Some(close_message(4408, "Connection initialisation timeout".into()))
            }
            _ = expiry, if guard.expires_at.is_some() => {
                Some(close_message(4403, "Forbidden: access token expired".into()))
            }
            Some(event) = identity_events.next(), if guard.user_id.is_some() => {
                guard.ends_session(&event).then(|| {
                    close_message(4403, "Forbidden: session or permissions changed".into())
                })
            }
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => match guard.on_client_message(text.as_str()).await {
                    Verdict::Forward(message) => match to_graphql.try_send(message) {
                        Ok(()) => None,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            Some(close_message(1008, "Too many messages".into()))
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    },
                    Verdict::Reply(message) => {
                        match send_within(&mut sink, Message::Text(message.into()), send_timeout).await {
                            Sent::Done => None,
                            Sent::Gone => break,
                            Sent::Stalled => Some(stalled_close()),
                        }
                    }
                    Verdict::Close(code, reason) => Some(close_message(code, reason)),
                    Verdict::Ignore => None,
                },
                Some(Ok(Message::Binary(_))) => Some(close_message(4400, "Invalid message received".into())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            outgoing = graphql.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    guard.on_server_message(&text);
                    match send_within(&mut sink, Message::Text(text.into()), send_timeout).await {
                        Sent::Done => None,
                        Sent::Gone => break,
                        Sent::Stalled => Some(stalled_close()),
                    }
                }
                Some(WsMessage::Close(code, reason)) => Some(close_message(code, reason)),
                None => break,
            },
        };
        if let Some(close) = outcome {
            // A client that stopped reading may never take the close frame either.
            let _ = send_within(&mut sink, close, send_timeout).await;
            break;
        }
    }
    let _ = tokio::time::timeout(send_timeout, sink.close()).await;
    gauge.dec();
}
