//! GraphQL over websocket (`graphql-transport-ws`): async-graphql runs the protocol, and a guard
//! in front of it enforces what its defaults do not, with the spec's exact close codes.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::http::{WebSocket as GraphqlWebSocket, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::errors::error_response;
use super::graphql::{insert_request_data, resolve_token};
use super::HttpState;
use crate::auth::Viewer;
use crate::error::AppError;

const PROTOCOL: &str = "graphql-transport-ws";

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
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws
            .protocols([PROTOCOL])
            .on_upgrade(move |socket| serve(state, socket)),
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
    active: HashSet<String>,
    max_subscriptions: usize,
    /// Handed to async-graphql's `on_connection_init`, which runs after the guard checked the token.
    session: Arc<Mutex<Option<async_graphql::Data>>>,
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
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                if !(payload.is_null() || payload.is_object()) {
                    return invalid();
                }
                let viewer = match bearer_token(&payload) {
                    None => Viewer::Anonymous,
                    Some(token) => match resolve_token(&self.state, &token).await {
                        Ok(viewer) => viewer,
                        Err(AppError::Internal(cause)) => {
                            tracing::error!(error = ?cause, "websocket authentication failed");
                            return Verdict::Close(1011, "Internal error".into());
                        }
                        Err(_) => return Verdict::Close(4403, "Forbidden".into()),
                    },
                };
                let mut data = async_graphql::Data::default();
                insert_request_data(&mut data, &self.state, viewer);
                *self.session.lock() = Some(data);
                Verdict::Forward(json!({ "type": "connection_init" }).to_string())
            }
            "ping" | "pong" => Verdict::Forward(text.to_owned()),
            "subscribe" => {
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty());
                let has_query = message
                    .get("payload")
                    .and_then(|p| p.get("query"))
                    .is_some_and(Value::is_string);
                let Some(id) = id.filter(|_| has_query) else {
                    return invalid();
                };
                if !self.initialised {
                    return Verdict::Close(4401, "Unauthorized".into());
                }
                if self.active.contains(id) {
                    return Verdict::Close(4409, format!("Subscriber for {id} already exists"));
                }
                if self.active.len() >= self.max_subscriptions {
                    return Verdict::Reply(
                        json!({
                            "id": id,
                            "type": "error",
                            "payload": [{
                                "message": format!("at most {} subscriptions per connection", self.max_subscriptions),
                                "extensions": { "code": "RATE_LIMITED" }
                            }]
                        })
                        .to_string(),
                    );
                }
                self.active.insert(id.to_owned());
                Verdict::Forward(text.to_owned())
            }
            "complete" => match message.get("id").and_then(Value::as_str) {
                Some(id) => {
                    if self.active.remove(id) {
                        Verdict::Forward(text.to_owned())
                    } else {
                        Verdict::Ignore
                    }
                }
                None => invalid(),
            },
            _ => invalid(),
        }
    }

    /// Server messages that end an operation free its id and its slot under the cap.
    fn on_server_message(&mut self, text: &str) {
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
}

/// The token may come as `Authorization: Bearer …`, `authorization`, or `token`.
fn bearer_token(payload: &Value) -> Option<String> {
    ["Authorization", "authorization", "token", "accessToken"]
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

async fn serve(state: HttpState, socket: WebSocket) {
    let gauge = state.app.metrics.websocket_connections.clone();
    gauge.inc();
    let limits = state.app.config.limits.clone();
    let (mut sink, mut source) = socket.split();
    let (to_graphql, from_guard) = mpsc::channel::<String>(32);
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
    };
    let init_deadline = tokio::time::sleep(limits.ws_init_timeout);
    tokio::pin!(init_deadline);

    loop {
        let outcome = tokio::select! {
            _ = &mut init_deadline, if !guard.initialised => {
                Some(close_message(4408, "Connection initialisation timeout".into()))
            }
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => match guard.on_client_message(text.as_str()).await {
                    Verdict::Forward(message) => {
                        if to_graphql.send(message).await.is_err() {
                            break;
                        }
                        None
                    }
                    Verdict::Reply(message) => {
                        if sink.send(Message::Text(message.into())).await.is_err() {
                            break;
                        }
                        None
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
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    None
                }
                Some(WsMessage::Close(code, reason)) => Some(close_message(code, reason)),
                None => break,
            },
        };
        if let Some(close) = outcome {
            let _ = sink.send(close).await;
            break;
        }
    }
    let _ = sink.close().await;
    gauge.dec();
}
