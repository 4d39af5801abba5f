//! GraphQL over HTTP: content negotiation, CSRF-safe content types, batching caps and status codes.

use async_graphql::parser::types::OperationType;
use async_graphql::BatchRequest;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::client::{client_addr, Client};
use super::errors::{error_response, unavailable_response};
use super::multipart;
use super::operation::{password_fields, screen_document, selected_operation};
use super::rate_limit::{charge, client_key, too_many_requests};
use super::HttpState;
use crate::api::request::{authenticate, insert_request_data, Lifetime};
use crate::auth::Viewer;
use crate::error::{unavailable_cause, AppError, DatabaseUnavailable};
use crate::platform::rate_limit::ClientAddr;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// Headers a browser cannot send cross-site without a CORS preflight; a multipart request
/// must carry one, so a plain HTML form on another site cannot post to us.
const PREFLIGHT_HEADERS: [&str; 2] = ["graphql-preflight", "apollo-require-preflight"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    GraphqlResponseJson,
    Json,
}

impl ResponseFormat {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the first media type we can produce, in the client's order. No `Accept` header
/// means `application/json`, as the spec allows for legacy clients.
fn negotiate(headers: &HeaderMap) -> Result<ResponseFormat, Box<Response>> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(ResponseFormat::Json);
    };
    let accept = accept.to_str().unwrap_or_default();
    if accept.trim().is_empty() {
        return Ok(ResponseFormat::Json);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        // `q=0` means "not acceptable" (RFC 9110).
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().chars().all(|c| c == '0' || c == '.'))
        });
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => return Ok(ResponseFormat::GraphqlResponseJson),
            "application/json" | "application/*" | "*/*" => return Ok(ResponseFormat::Json),
            _ => {}
        }
    }
    Err(Box::new(error_response(
        StatusCode::NOT_ACCEPTABLE,
        "BAD_USER_INPUT",
        "accept application/graphql-response+json or application/json",
    )))
}

enum BodyKind {
    Json,
    Multipart(String),
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Box<Response>> {
    let unsupported = || {
        Box::new(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send the request as application/json (multipart/form-data needs a graphql-preflight header)",
        ))
    };
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mime: mime::Mime = raw.parse().map_err(|_| unsupported())?;
    match (mime.type_(), mime.subtype()) {
        (mime::APPLICATION, mime::JSON) => match mime.get_param(mime::CHARSET) {
            Some(charset) if charset != mime::UTF_8 => Err(unsupported()),
            _ => Ok(BodyKind::Json),
        },
        (mime::MULTIPART, mime::FORM_DATA)
            if PREFLIGHT_HEADERS.iter().any(|h| headers.contains_key(*h)) =>
        {
            Ok(BodyKind::Multipart(raw.to_owned()))
        }
        _ => Err(unsupported()),
    }
}

fn too_large() -> Box<Response> {
    Box::new(error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BAD_USER_INPUT",
        "request body is larger than the limit",
    ))
}

/// Reads at most `limit` bytes. Past it, the rest is drained (within a cap) before the 413, so
/// the client is still reading when the answer comes.
async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, Box<Response>> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            if is_length_limit(&err) {
                too_large()
            } else {
                Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    "could not read the request body",
                ))
            }
        })?;
        if let Some(data) = frame.data_ref() {
            if collected.len() + data.len() > limit {
                super::errors::drain(body).await;
                return Err(too_large());
            }
            collected.extend_from_slice(data);
        }
    }
    Ok(collected.freeze())
}

pub(super) fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Files one multipart request may carry.
const MAX_FILES: usize = 16;

/// A JSON body (or a multipart `operations` field) as one request or a batch. Decided by the
/// first byte rather than serde's untagged guess, which would take `[]` for a single request
/// with an empty query.
fn parse_json_batch(bytes: &[u8]) -> Result<BatchRequest, String> {
    let parsed = if bytes.trim_ascii_start().first() == Some(&b'[') {
        serde_json::from_slice::<Vec<async_graphql::Request>>(bytes).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice::<async_graphql::Request>(bytes).map(BatchRequest::Single)
    };
    parsed.map_err(|err| format!("the body is not a GraphQL request: {err}"))
}

async fn read_batch(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BatchRequest, Box<Response>> {
    let limit = state.app.config.limits.max_body_bytes;
    let kind = match body_kind(headers) {
        Ok(kind) => kind,
        Err(response) => {
            super::errors::drain(body).await;
            return Err(response);
        }
    };
    let batch = match kind {
        BodyKind::Json => {
            let bytes = read_limited(body, limit).await?;
            parse_json_batch(&bytes).map_err(|message| {
                Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    &message,
                ))
            })?
        }
        BodyKind::Multipart(content_type) => {
            let limits = multipart::Limits {
                form_bytes: limit,
                file_bytes: state.app.config.limits.max_upload_bytes,
                max_files: MAX_FILES,
            };
            multipart::read(&content_type, body, &limits, parse_json_batch)
                .await
                .map_err(|refusal| match refusal {
                    multipart::Refusal::TooLarge => too_large(),
                    multipart::Refusal::Malformed(message) => Box::new(error_response(
                        StatusCode::BAD_REQUEST,
                        "BAD_USER_INPUT",
                        &format!("malformed multipart request: {message}"),
                    )),
                    multipart::Refusal::Internal => Box::new(error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL",
                        "internal error",
                    )),
                })?
        }
    };
    let size = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    let max = state.app.config.limits.max_batch;
    if size == 0 || size > max {
        return Err(Box::new(error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            &format!("a batch must hold between 1 and {max} operations"),
        )));
    }
    Ok(batch)
}

/// A partner app's key may come in this header instead of `Authorization: Bearer`.
const API_KEY_HEADER: &str = "x-api-key";

/// A bad token fails the whole request with 401 rather than quietly running it anonymously.
pub(super) async fn viewer(
    state: &HttpState,
    headers: &HeaderMap,
) -> Result<Viewer, Box<Response>> {
    let unauthorized = |err: AppError| {
        let mut response =
            error_response(StatusCode::UNAUTHORIZED, err.code(), err.public_message());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        Box::new(response)
    };
    let api_key = headers.get(API_KEY_HEADER);
    let token = match (headers.get(header::AUTHORIZATION), api_key) {
        (None, None) => return Ok(Viewer::Anonymous),
        (Some(_), Some(_)) => {
            return Err(unauthorized(AppError::Unauthenticated(
                "send one credential: Authorization or X-Api-Key, not both".into(),
            )))
        }
        (None, Some(key)) => key
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized(AppError::Unauthenticated("use X-Api-Key: <key>".into()))
            })?,
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized(AppError::Unauthenticated(
                    "use Authorization: Bearer <token>".into(),
                ))
            })?,
    };
    authenticate(&state.app, token)
        .await
        .map(|auth| auth.viewer)
        .map_err(|err| match err {
            AppError::Internal(cause) if unavailable_cause(&cause) => {
                tracing::warn!(error = ?cause, "database unavailable while authenticating");
                Box::new(unavailable_response())
            }
            AppError::Internal(_) => {
                let gql: async_graphql::Error = err.into();
                Box::new(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    &gql.message,
                ))
            }
            other => unauthorized(other),
        })
}

pub async fn post(
    State(state): State<HttpState>,
    Client(client): Client,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = match negotiate(&headers) {
        Ok(format) => format,
        Err(response) => {
            // Refused before the body is read: take in what the client is still sending (within
            // a cap), so it hears the answer instead of a connection reset mid-upload.
            super::errors::drain(body).await;
            return *response;
        }
    };
    let mut batch = match read_batch(&state, &headers, body).await {
        Ok(batch) => batch,
        Err(response) => return *response,
    };
    if let Err(response) = screen(&state, &mut batch, format) {
        return *response;
    }
    let has_subscription = match &mut batch {
        BatchRequest::Single(r) => selected_operation(r) == Some(OperationType::Subscription),
        BatchRequest::Batch(rs) => rs
            .iter_mut()
            .any(|r| selected_operation(r) == Some(OperationType::Subscription)),
    };
    if has_subscription {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "subscriptions run over the websocket (graphql-transport-ws), not POST",
        );
    }
    let hashing_fields = match &mut batch {
        BatchRequest::Single(r) => vec![password_fields(r)],
        BatchRequest::Batch(rs) => rs.iter_mut().map(password_fields).collect(),
    };
    if hashing_fields.iter().any(|n| *n > 1) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "an operation may sign in, or set or change a password, once at most",
        );
    }
    let viewer = match viewer(&state, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let operations = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(rs) => rs.len(),
    };
    if let Err(wait) = charge(&state, &client_key(&viewer, client), operations).await {
        return too_many_requests(wait);
    }
    execute(&state, viewer, client, batch, format).await
}

/// `GET /graphql` without a websocket upgrade: queries only.
pub async fn get(state: HttpState, request: Request) -> Response {
    let headers = request.headers().clone();
    let client = client_addr(
        request.extensions(),
        &headers,
        &state.app.config.trusted_proxies,
    );
    let format = match negotiate(&headers) {
        Ok(format) => format,
        Err(response) => return *response,
    };
    let query = request.uri().query().unwrap_or_default();
    let mut gql_request = match async_graphql::http::parse_query_string(query) {
        Ok(r) => r,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("malformed query string: {err}"),
            )
        }
    };
    if let Err(error) = screen_document(&mut gql_request, &state.app.config.limits) {
        return refused(&state, format, error);
    }
    if let Some(OperationType::Mutation | OperationType::Subscription) =
        selected_operation(&mut gql_request)
    {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "GET runs queries only; send mutations with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let viewer = match viewer(&state, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    if let Err(wait) = charge(&state, &client_key(&viewer, client), 1).await {
        return too_many_requests(wait);
    }
    let batch = BatchRequest::Single(gql_request);
    execute(&state, viewer, client, batch, format).await
}

async fn execute(
    state: &HttpState,
    viewer: Viewer,
    client: ClientAddr,
    batch: BatchRequest,
    format: ResponseFormat,
) -> Response {
    let is_batch = matches!(batch, BatchRequest::Batch(_));
    let mut requests = match batch {
        BatchRequest::Single(r) => vec![r],
        BatchRequest::Batch(rs) => rs,
    };
    let cache = &state.app.responses;
    // Only a lone query of a signed-in user is served from the response cache.
    let lone_query = match requests.as_mut_slice() {
        [request] => !is_batch && selected_operation(request) == Some(OperationType::Query),
        _ => false,
    };
    let cache_key = match (&viewer, requests.as_slice()) {
        (Viewer::User(user), [request]) if lone_query && cache.enabled() => {
            let asker = format!(
                "{}|{:?}|{:?}|{:?}",
                user.id, user.department_id, user.grants, user.app
            );
            cache.key(asker.as_bytes(), request).await
        }
        _ => None,
    };
    if let Some(key) = &cache_key {
        if let Some(body) = cache.get(key).await {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, format.content_type())],
                body,
            )
                .into_response();
        }
    }
    let writes = requests
        .iter_mut()
        .any(|r| selected_operation(r) == Some(OperationType::Mutation));
    let (schema, app) = (state.schema_for(&viewer).clone(), state.app.clone());
    let run = async move {
        let mut responses = Vec::with_capacity(requests.len());
        for mut request in requests {
            insert_request_data(&mut request.data, &app, viewer.clone(), Lifetime::Request);
            request.data.insert(client);
            let response = schema.execute(request).await;
            let executed = reached_execution(&response);
            responses.push(Shaped { response, executed });
        }
        responses
    };
    // A write runs to its end in its own task: a client hanging up (or the request timeout)
    // must not cut a mutation between its commit and the wake-ups and cache bump after it.
    // (So a timed-out write may still commit, as it always could once its commit was sent.)
    let mut responses = if writes {
        match tokio::spawn(run.in_current_span()).await {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(error = %err, "a GraphQL write task failed");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                );
            }
        }
    } else {
        run.await
    };
    for shaped in &mut responses {
        label_errors(state, &mut shaped.response.errors);
    }
    let clean = responses.iter().all(|r| r.response.errors.is_empty());
    // Every error is the database being out of reach: the client should come back, not give up.
    let unavailable = !clean
        && responses.iter().all(|r| {
            r.response
                .errors
                .iter()
                .all(|e| e.source::<DatabaseUnavailable>().is_some())
        });
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else if format == ResponseFormat::GraphqlResponseJson
        && !is_batch
        && responses.iter().all(|r| !r.executed)
    {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if is_batch {
        serde_json::to_vec(&responses)
    } else {
        serde_json::to_vec(&responses.pop())
    };
    if let (Some(key), Ok(body), true) = (&cache_key, &body, clean) {
        cache.put(key, body).await;
    }
    match body {
        Ok(body) => {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, format.content_type())],
                body,
            )
                .into_response();
            if unavailable {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, super::errors::RETRY_AFTER);
            }
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "serialising GraphQL response");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }
    }
}

/// One operation's answer as GraphQL over HTTP shapes it: a request that failed before
/// execution (parsing, validation, limits) has no `data` entry at all, where async-graphql's
/// `Response` would always write `"data": null`.
struct Shaped {
    response: async_graphql::Response,
    executed: bool,
}

impl serde::Serialize for Shaped {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Refused<'a> {
            errors: &'a [async_graphql::ServerError],
        }
        if self.executed {
            self.response.serialize(serializer)
        } else {
            Refused {
                errors: &self.response.errors,
            }
            .serialize(serializer)
        }
    }
}

/// Applies the document bounds to every operation, before anything parses one. A refused
/// lone operation is answered like any request that fails before execution; a refused batch
/// entry refuses the whole batch, as a malformed batch is.
fn screen(
    state: &HttpState,
    batch: &mut BatchRequest,
    format: ResponseFormat,
) -> Result<(), Box<Response>> {
    let limits = &state.app.config.limits;
    match batch {
        BatchRequest::Single(request) => screen_document(request, limits)
            .map_err(|error| Box::new(refused(state, format, error))),
        BatchRequest::Batch(requests) => {
            for (index, request) in requests.iter_mut().enumerate() {
                if let Err(error) = screen_document(request, limits) {
                    return Err(Box::new(error_response(
                        StatusCode::BAD_REQUEST,
                        "BAD_USER_INPUT",
                        &format!("operation {index} of the batch: {}", error.message),
                    )));
                }
            }
            Ok(())
        }
    }
}

/// The answer to a lone operation refused before execution: 400 where the client reads
/// `application/graphql-response+json`, 200 for legacy `application/json` clients.
fn refused(
    state: &HttpState,
    format: ResponseFormat,
    error: async_graphql::ServerError,
) -> Response {
    let mut response = async_graphql::Response::from_errors(vec![error]);
    label_errors(state, &mut response.errors);
    let status = match format {
        ResponseFormat::GraphqlResponseJson => StatusCode::BAD_REQUEST,
        ResponseFormat::Json => StatusCode::OK,
    };
    match serde_json::to_vec(&Shaped {
        response,
        executed: false,
    }) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "serialising a GraphQL error");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }
    }
}

/// Whether the operation began to execute, as GraphQL-over-HTTP's status code needs to know:
/// an executed operation has data, or field errors, which always carry their field's path;
/// parsing, validation and limit errors carry none. (An extension could mark it instead, but
/// any extension sends every field through async-graphql's slower, allocating resolve path.)
fn reached_execution(response: &async_graphql::Response) -> bool {
    !matches!(response.data, async_graphql::Value::Null)
        || response.errors.iter().any(|e| !e.path.is_empty())
}

/// Every error leaves with a code. Ours already carry one; those async-graphql raises itself
/// (syntax, validation, variable coercion, limits) are the client's to fix.
pub(super) fn label_errors(state: &HttpState, errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_USER_INPUT");
        }
        let code = match extensions.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => "UNKNOWN".to_owned(),
        };
        state
            .app
            .metrics
            .graphql_errors
            .with_label_values(&[&code])
            .inc();
    }
}
