//! Signing in and out, changing one's password, and the language switch.

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::auth::tokens;
use crate::console::i18n::{Locale, LANGUAGE_COOKIE};
use crate::console::layout::{self, bare_page, field, token_field};
use crate::console::session::{
    clear_cookie, cookie_value, local_path, set_cookie, Client, Form, SignInForm, Signed, Visitor,
    SESSION_COOKIE, SIGN_IN_COOKIE,
};
use crate::domains::identity::service as identity;
use crate::error::AppError;

#[derive(Deserialize, Default)]
pub struct Next {
    next: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

/// `/`: the board for someone signed in, the sign-in page for anyone else.
pub async fn root(visitor: Visitor, headers: HeaderMap) -> Response {
    let signed_in = match cookie_value(&headers, SESSION_COOKIE) {
        Some(token) if !token.is_empty() => {
            matches!(
                identity::console_viewer(&visitor.app.db.conn, token).await,
                Ok(Some(_))
            )
        }
        _ => false,
    };
    Redirect::to(if signed_in { "/work" } else { "/sign-in" }).into_response()
}

fn sign_in_form(
    visitor: &Visitor,
    form_token: &str,
    next: &str,
    email: &str,
    notice: Option<&str>,
    err: Option<&AppError>,
) -> Response {
    let t = visitor.locale.text();
    let switch_to = visitor.locale.other();
    let switch = format!(
        "/language/{}?{}",
        switch_to.tag(),
        serde_urlencoded::to_string([("next", format!("/sign-in?next={next}"))])
            .unwrap_or_default()
    );
    let content = html! {
        @if let Some(notice) = notice {
            p class="notice" role="status" { (notice) }
        }
        @if let Some(err) = err {
            div class="alert" role="alert" { (layout::error_text(t, err)) }
        }
        form method="post" action="/sign-in" class="stack" {
            (token_field(form_token))
            input type="hidden" name="next" value=(next);
            (field(t.email, "email", "email", None, html! {
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
            }))
            (field(t.password, "password", "password", None, html! {
                input id="password" name="password" type="password" autocomplete="current-password" required;
            }))
            button type="submit" class="primary" { (t.sign_in) }
        }
        p { a href=(switch) lang=(switch_to.tag()) { (t.language_switch) } }
    };
    let status = match err {
        Some(AppError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
        Some(_) => StatusCode::UNAUTHORIZED,
        None => StatusCode::OK,
    };
    let page = bare_page(visitor.locale, t.sign_in, content);
    let mut response = (status, Html(page.into_string())).into_response();
    if let Ok(value) =
        set_cookie(SIGN_IN_COOKIE, form_token.to_owned(), visitor.secure, None).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn notice_text(locale: Locale, notice: Option<&str>) -> Option<&'static str> {
    let t = locale.text();
    match notice {
        Some("signed-out") => Some(t.signed_out),
        Some("password-changed") => Some(t.password_changed),
        _ => None,
    }
}

pub async fn sign_in_page(
    visitor: Visitor,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    let target = local_path(next.next.as_deref());
    if let Some(token) = cookie_value(&headers, SESSION_COOKIE).filter(|t| !t.is_empty()) {
        if let Ok(Some(_)) = identity::console_viewer(&visitor.app.db.conn, token).await {
            return Redirect::to(&target).into_response();
        }
    }
    // One form token per browser until it signs in: several open sign-in tabs all work.
    let form_token = cookie_value(&headers, SIGN_IN_COOKIE)
        .filter(|t| t.len() >= 32)
        .map_or_else(tokens::generate, str::to_owned);
    let notice = notice_text(visitor.locale, next.notice.as_deref());
    sign_in_form(&visitor, &form_token, &target, "", notice, None)
}

#[derive(Deserialize)]
pub struct SignInFields {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn sign_in(
    visitor: Visitor,
    Client(client): Client,
    headers: HeaderMap,
    SignInForm(fields): SignInForm<SignInFields>,
) -> Response {
    let app = &visitor.app;
    let target = local_path(fields.next.as_deref());
    let credentials = app.credentials();
    let ttl = credentials.policy.refresh_ttl;
    let verified = identity::verify_login(
        &app.db.conn,
        &credentials,
        client,
        &fields.email,
        &fields.password,
    )
    .await;
    let started = match verified {
        Ok(verified) => {
            app.write(async |work| identity::start_console_session(work, ttl, verified).await)
                .await
        }
        Err(err) => Err(err),
    };
    let session = match started {
        Ok(session) => session,
        Err(err) => {
            let form_token = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or_default();
            return sign_in_form(
                &visitor,
                form_token,
                &target,
                &fields.email,
                None,
                Some(&err),
            );
        }
    };
    let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let mut response = Redirect::to(&target).into_response();
    let cookies = [
        set_cookie(SESSION_COOKIE, session.token, visitor.secure, Some(max_age)),
        clear_cookie(SIGN_IN_COOKIE, visitor.secure),
    ];
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn sign_out(signed: Signed, headers: HeaderMap, Form(_): Form<Nothing>) -> Response {
    let token = cookie_value(&headers, SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if let Err(err) = signed
        .app
        .write(async |work| identity::end_console_session(work, &token).await)
        .await
    {
        return layout::error_response(signed.locale, &err);
    }
    let mut response = Redirect::to("/sign-in?notice=signed-out").into_response();
    if let Ok(value) = clear_cookie(SESSION_COOKIE, signed.secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn password_form(signed: &Signed, err: Option<&AppError>) -> maud::Markup {
    let t = signed.t();
    html! {
        (layout::alert(t, err))
        form method="post" action="/account/password" class="stack" {
            (token_field(&signed.form_token))
            (field(t.current_password, "current", "currentPassword", err, html! {
                input id="current" name="current_password" type="password" autocomplete="current-password" required;
            }))
            (field(t.new_password, "new", "newPassword", err, html! {
                input id="new" name="new_password" type="password" autocomplete="new-password" required;
            }))
            button type="submit" class="primary" { (t.change_password) }
        }
    }
}

pub async fn password_page(signed: Signed) -> Response {
    let content = password_form(&signed, None);
    layout::page(&signed, signed.t().change_password, content).await
}

#[derive(Deserialize)]
pub struct PasswordFields {
    current_password: String,
    new_password: String,
}

/// A changed password ends every session, this one too: the person signs in again with it.
pub async fn change_password(signed: Signed, Form(fields): Form<PasswordFields>) -> Response {
    let app = &signed.app;
    let credentials = app.credentials();
    let changed = app
        .write(async |work| {
            identity::change_own_password(
                work,
                &credentials,
                &signed.viewer,
                &fields.current_password,
                &fields.new_password,
            )
            .await
        })
        .await;
    match changed {
        Ok(_) => {
            let mut response = Redirect::to("/sign-in?notice=password-changed").into_response();
            if let Ok(value) = clear_cookie(SESSION_COOKIE, signed.secure).parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(err) => {
            let content = password_form(&signed, Some(&err));
            let mut response = layout::page(&signed, signed.t().change_password, content).await;
            *response.status_mut() = layout::status_of(&err);
            response
        }
    }
}

/// The switch: remembers the language for a year and goes back to the page.
pub async fn switch_language(
    visitor: Visitor,
    Path(tag): Path<String>,
    Query(next): Query<Next>,
) -> Response {
    let Some(locale) = Locale::parse_tag(&tag) else {
        return layout::not_found(visitor.locale);
    };
    let mut response = Redirect::to(&local_path(next.next.as_deref())).into_response();
    let year = cookie::time::Duration::days(365);
    let cookie = set_cookie(
        LANGUAGE_COOKIE,
        locale.tag().to_owned(),
        visitor.secure,
        Some(year),
    );
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
