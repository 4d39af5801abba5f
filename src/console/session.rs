//! Who is at the browser: the session cookie, its form token, and the language, as extractors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;

use super::i18n::{Locale, LANGUAGE_COOKIE};
use super::layout;
use crate::app::AppState;
use crate::auth::{Viewer, ViewerUser};
use crate::domains::identity::service as identity;

/// The console's session cookie; the API never reads it.
pub const SESSION_COOKIE: &str = "interlink_session";
/// The sign-in form's token before there is a session (double submit).
pub const SIGN_IN_COOKIE: &str = "interlink_sign_in";
/// The hidden field every console form carries.
pub const FORM_TOKEN_FIELD: &str = "_token";
/// A form body is small text: anything larger is refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether cookies must be `Secure`: configured so, or the request came over TLS through a
/// proxy that says so (a plain-HTTP request cannot send a `Secure` cookie back).
pub fn secure_cookies(app: &AppState, headers: &HeaderMap) -> bool {
    app.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A cookie the browser keeps from script (`HttpOnly`), sends on same-site navigation only
/// (`SameSite=Lax`) and, over TLS, only over TLS.
pub fn set_cookie(
    name: &str,
    value: String,
    secure: bool,
    max_age: Option<cookie::time::Duration>,
) -> String {
    let mut cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if let Some(age) = max_age {
        cookie = cookie.max_age(age);
    }
    cookie.build().to_string()
}

pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(
        name,
        String::new(),
        secure,
        Some(cookie::time::Duration::ZERO),
    )
}

pub fn locale_of(headers: &HeaderMap) -> Locale {
    Locale::choose(
        cookie_value(headers, LANGUAGE_COOKIE),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Anyone at the console, signed in or not: enough to render the sign-in page or an error.
pub struct Visitor {
    pub app: AppState,
    pub locale: Locale,
    pub secure: bool,
}

impl<S> FromRequestParts<S> for Visitor
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let secure = secure_cookies(&app, &parts.headers);
        Ok(Self {
            locale: locale_of(&parts.headers),
            secure,
            app,
        })
    }
}

/// A signed-in person at the console. Extracting it checks the session against the database
/// on every request, so a revoked session ends at once on every node.
pub struct Signed {
    pub app: AppState,
    pub viewer: Viewer,
    pub me: Arc<ViewerUser>,
    /// The token this session's forms must carry.
    pub form_token: String,
    pub locale: Locale,
    pub secure: bool,
    /// Where the request went (path and query), for links back.
    pub here: String,
    /// The event log's head before the page read anything: its live updates follow from here,
    /// so a change made while the page was being built is not missed.
    pub cursor: String,
}

impl Signed {
    pub fn t(&self) -> &'static super::i18n::Text {
        self.locale.text()
    }
}

/// Sends a visitor without a session to sign in, and back here afterwards.
fn to_sign_in(here: &str) -> Response {
    let next = serde_urlencoded::to_string([("next", here)]).unwrap_or_default();
    Redirect::to(&format!("/sign-in?{next}")).into_response()
}

impl<S> FromRequestParts<S> for Signed
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let locale = locale_of(&parts.headers);
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty())
        else {
            return Err(to_sign_in(&here));
        };
        let user = match identity::console_viewer(&app.db.conn, token).await {
            Ok(Some(user)) => Arc::new(user),
            Ok(None) => return Err(to_sign_in(&here)),
            Err(err) => return Err(layout::error_response(locale, &err)),
        };
        let cursor = match crate::platform::events::log::head(&app.db.conn).await {
            Ok(cursor) => cursor.to_string(),
            Err(err) => return Err(layout::error_response(locale, &err.into())),
        };
        Ok(Self {
            cursor,
            form_token: identity::console_form_token(token),
            viewer: Viewer::User(user.clone()),
            me: user,
            secure: secure_cookies(&app, &parts.headers),
            locale,
            here,
            app,
        })
    }
}

/// A console form, read only when it carries this session's form token. Without it the request
/// is refused (403) before anything is parsed into `T`, so nothing can change.
pub struct Form<T>(pub T);

impl<S, T> FromRequest<S> for Form<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let expected =
            cookie_value(request.headers(), SESSION_COOKIE).map(identity::console_form_token);
        read_checked(request, expected).await.map(Form)
    }
}

/// A form with one file (`multipart/form-data`): its `_token` must come first, and is checked
/// before the file is read, so a forged upload costs no more than its first field. The file is
/// held to the hub's upload limit (`INTERLINK_MAX_UPLOAD_BYTES`).
pub struct FileForm {
    pub filename: String,
    pub bytes: Bytes,
}

impl<S> FromRequest<S> for FileForm
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let locale = locale_of(request.headers());
        let expected =
            cookie_value(request.headers(), SESSION_COOKIE).map(identity::console_form_token);
        let boundary = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| multer::parse_boundary(v).ok())
            .ok_or_else(|| {
                layout::message_response(
                    locale,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    locale.text().error_bad_input,
                )
            })?;
        let max_file = app.config.limits.max_upload_bytes;
        let limits = multer::Constraints::new()
            .allowed_fields(vec![FORM_TOKEN_FIELD, "file"])
            .size_limit(
                multer::SizeLimit::new()
                    .whole_stream((max_file + MAX_FORM_BYTES) as u64)
                    .for_field(FORM_TOKEN_FIELD, 256)
                    .for_field("file", max_file as u64),
            );
        let mut parts = multer::Multipart::with_constraints(
            request.into_body().into_data_stream(),
            boundary,
            limits,
        );
        let refused = |_| layout::bad_form(locale);
        let unreadable = move |err: multer::Error| match err {
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
                layout::message_response(
                    locale,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    locale.text().error_bad_input,
                )
            }
            _ => layout::bad_form(locale),
        };
        let first = parts.next_field().await.map_err(refused)?;
        let presented = match first {
            Some(field) if field.name() == Some(FORM_TOKEN_FIELD) => {
                Some(field.text().await.map_err(refused)?)
            }
            _ => None,
        };
        let matches = match (expected.as_deref(), presented.as_deref()) {
            (Some(expected), Some(presented)) if !expected.is_empty() => {
                subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
            }
            _ => false,
        };
        if !matches {
            return Err(layout::form_expired(locale));
        }
        let Some(field) = parts.next_field().await.map_err(unreadable)? else {
            return Err(layout::bad_form(locale));
        };
        let filename = field.file_name().unwrap_or("file").to_owned();
        let bytes = field.bytes().await.map_err(unreadable)?;
        Ok(Self { filename, bytes })
    }
}

/// The sign-in form, checked against the token its page set in a cookie: a page elsewhere
/// cannot sign a browser into an account of its choosing.
pub struct SignInForm<T>(pub T);

impl<S, T> FromRequest<S> for SignInForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let expected = cookie_value(request.headers(), SIGN_IN_COOKIE).map(str::to_owned);
        read_checked(request, expected).await.map(SignInForm)
    }
}

async fn read_checked<T: DeserializeOwned>(
    request: Request,
    expected: Option<String>,
) -> Result<T, Response> {
    let locale = locale_of(request.headers());
    let body = read_form(request, locale).await?;
    let fields: HashMap<String, String> =
        serde_urlencoded::from_bytes(&body).map_err(|_| layout::bad_form(locale))?;
    let presented = fields.get(FORM_TOKEN_FIELD).map(String::as_str);
    let matches = match (expected.as_deref(), presented) {
        (Some(expected), Some(presented)) if !expected.is_empty() => {
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
        }
        _ => false,
    };
    if !matches {
        return Err(layout::form_expired(locale));
    }
    serde_urlencoded::from_bytes(&body).map_err(|_| layout::bad_form(locale))
}

async fn read_form(request: Request, locale: Locale) -> Result<Bytes, Response> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(layout::message_response(
            locale,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            locale.text().error_bad_input,
        ));
    }
    axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            layout::message_response(
                locale,
                StatusCode::PAYLOAD_TOO_LARGE,
                locale.text().error_bad_input,
            )
        })
}

/// The client's address, as the API's sign-in counts it.
pub struct Client(pub crate::platform::rate_limit::ClientAddr);

impl<S> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        Ok(Self(crate::http::client_addr(
            &parts.extensions,
            &parts.headers,
            &app.config.trusted_proxies,
        )))
    }
}

/// A page of this console to go back to: a local path only, never another site.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/work".to_owned(),
    }
}
