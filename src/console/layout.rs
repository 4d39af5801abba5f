//! The page shell every console page shares, its headers, and the pages for errors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::i18n::{Locale, Text};
use super::session::{Signed, FORM_TOKEN_FIELD};
use crate::auth::Permission;
use crate::error::AppError;

/// Only this server, no inline script and no inline style: the pages load their one style
/// sheet and one module, and talk to the hub alone.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    object-src 'none'; frame-ancestors 'none'";

/// Adds the console's headers to every response it sends (pages, assets, errors, redirects).
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages hold what one person may see: no shared cache may keep them.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The hidden field that proves a form came from this session's own page.
pub fn token_field(form_token: &str) -> Markup {
    html! { input type="hidden" name=(FORM_TOKEN_FIELD) value=(form_token); }
}

/// A form that posts to `action` with this session's token, and a single button.
pub fn button_form(signed: &Signed, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            (token_field(&signed.form_token))
            button type="submit" class=(class) { (label) }
        }
    }
}

struct NavItem {
    href: &'static str,
    label: &'static str,
    icon: &'static str,
}

fn navigation(signed: &Signed) -> Vec<NavItem> {
    let t = signed.t();
    let me = &signed.me;
    let mut items = vec![
        NavItem {
            href: "/work",
            label: t.my_work,
            icon: "▦",
        },
        NavItem {
            href: "/approvals",
            label: t.approvals,
            icon: "✓",
        },
        NavItem {
            href: "/people",
            label: t.people,
            icon: "☺",
        },
    ];
    if me.holds_anywhere(Permission::FinanceRead) {
        items.push(NavItem {
            href: "/finance",
            label: t.finance,
            icon: "¤",
        });
    }
    if me.has_global(Permission::SchedulerManage) {
        items.push(NavItem {
            href: "/operations",
            label: t.operations,
            icon: "⏱",
        });
    }
    if me.app.is_none() && me.has_global(Permission::IntegrationsManage) {
        items.push(NavItem {
            href: "/integrations",
            label: t.integrations,
            icon: "⇄",
        });
    }
    if me.holds_anywhere(Permission::TaskConfigure) || me.holds_anywhere(Permission::FinancePost) {
        items.push(NavItem {
            href: "/configuration",
            label: t.configuration,
            icon: "⚙",
        });
    }
    items
}

/// `page`, answering with the refusal's status when a form was refused (the page then shows the
/// form again with the refusal beside it).
pub async fn page_refusing(
    signed: &Signed,
    title: &str,
    content: Markup,
    refusal: Option<&AppError>,
) -> Response {
    let mut response = page(signed, title, content).await;
    if let Some(err) = refusal {
        *response.status_mut() = status_of(err);
    }
    response
}

/// A signed-in page: header with the unread count and the language switch, navigation (a
/// bottom bar within thumb reach on a phone, a side list on a PC) and `content`.
pub async fn page(signed: &Signed, title: &str, content: Markup) -> Response {
    let t = signed.t();
    let unread = match crate::domains::notifications::service::unread_count(
        &signed.app.db.conn,
        &signed.viewer,
    )
    .await
    {
        Ok(count) => count,
        Err(err) => return error_response(signed.locale, &err),
    };
    let cursor = &signed.cursor;
    let switch_to = signed.locale.other();
    let switch = format!(
        "/language/{}?{}",
        switch_to.tag(),
        serde_urlencoded::to_string([("next", signed.here.as_str())]).unwrap_or_default()
    );
    let current = signed.here.split('?').next().unwrap_or("/");
    let body = html! {
        (DOCTYPE)
        html lang=(signed.locale.tag()) {
            (head(title))
            body data-events=(format!("/console/events?after={cursor}")) {
                a class="skip" href="#main" { (t.skip_to_content) }
                header class="top" {
                    a class="brand" href="/work" { (t.product) }
                    div class="top-actions" {
                        a id="unread" data-live="" class="badge-link" href="/notifications" {
                            span { (t.notifications) }
                            span class=(if unread > 0 { "badge" } else { "badge zero" })
                                aria-label=(format!("{unread} {}", t.unread)) { (unread) }
                        }
                        a href=(switch) lang=(switch_to.tag()) hreflang=(switch_to.tag())
                            title=(t.language_switch_label) { (t.language_switch) }
                        a href="/account/password" { (t.account) }
                        @if signed.app.config.dev_tools_enabled() {
                            a href="/graphiql" { (t.query_page) }
                        }
                        (button_form(signed, "/sign-out", t.sign_out, "link"))
                    }
                }
                nav class="primary" aria-label=(t.main_navigation) {
                    ul {
                        @for item in navigation(signed) {
                            li {
                                a href=(item.href)
                                    aria-current=[current.starts_with(item.href).then_some("page")] {
                                    span class="icon" aria-hidden="true" { (item.icon) }
                                    span { (item.label) }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    Html(body.into_string()).into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Interlink" }
            link rel="stylesheet" href=(super::assets::STYLE_PATH);
            script type="module" src=(super::assets::SCRIPT_PATH) {}
        }
    }
}

/// A page for someone who is not signed in (sign-in, errors before a session).
pub fn bare_page(locale: Locale, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(locale.tag()) {
            (head(title))
            body class="bare" {
                main id="main" {
                    p class="brand" { (locale.text().product) }
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

pub fn message_response(locale: Locale, status: StatusCode, message: &str) -> Response {
    let page = bare_page(
        locale,
        message,
        html! { p { a href="/" { (locale.text().my_work) } } },
    );
    (status, Html(page.into_string())).into_response()
}

pub fn not_found(locale: Locale) -> Response {
    let t = locale.text();
    let page = bare_page(
        locale,
        t.not_found,
        html! { p { (t.not_found_text) } p { a href="/" { (t.my_work) } } },
    );
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

pub fn form_expired(locale: Locale) -> Response {
    message_response(locale, StatusCode::FORBIDDEN, locale.text().form_expired)
}

pub fn bad_form(locale: Locale) -> Response {
    message_response(
        locale,
        StatusCode::BAD_REQUEST,
        locale.text().error_bad_input,
    )
}

/// What a failed read shows: pages the viewer may not see do not exist for them.
pub fn error_response(locale: Locale, err: &AppError) -> Response {
    match err {
        AppError::NotFound(_) | AppError::Forbidden(_) => not_found(locale),
        AppError::Internal(cause) => {
            tracing::error!(error = ?cause, "console page failed");
            message_response(
                locale,
                StatusCode::INTERNAL_SERVER_ERROR,
                locale.text().error_internal,
            )
        }
        other => message_response(locale, status_of(other), &error_text(locale.text(), other)),
    }
}

pub fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) | AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::CursorExpired(_) => StatusCode::GONE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal in the viewer's language: the kind of problem translated, and the service's own
/// words (which name the rule) after it. Internal causes are never shown.
pub fn error_text(t: &Text, err: &AppError) -> String {
    let (summary, detail) = match err {
        AppError::BadUserInput { message, .. } => (t.error_bad_input, Some(message.as_str())),
        AppError::Conflict(message) => (t.error_conflict, Some(message.as_str())),
        AppError::Forbidden(message) => (t.error_forbidden, Some(message.as_str())),
        AppError::RateLimited { .. } => (t.error_rate_limited, None),
        AppError::NotFound(_) => (t.not_found_text, None),
        AppError::Unauthenticated(_) => (t.wrong_credentials, None),
        AppError::CursorExpired(_) | AppError::Internal(_) => (t.error_internal, None),
    };
    match detail {
        Some(detail) => format!("{summary}: {detail}"),
        None => summary.to_owned(),
    }
}

/// The field a refusal names, for showing it next to that field.
pub fn error_field(err: &AppError) -> Option<&str> {
    match err {
        AppError::BadUserInput { field, .. } => field.as_deref(),
        _ => None,
    }
}

/// A refusal shown above a form, tied to the field it names when there is one.
pub fn alert(t: &Text, err: Option<&AppError>) -> Markup {
    html! {
        @if let Some(err) = err {
            div class="alert" role="alert" { (error_text(t, err)) }
        }
    }
}

/// A labelled field with the refusal that names it (by its API name) beside it.
pub fn field(
    label: &str,
    id: &str,
    api_field: &str,
    err: Option<&AppError>,
    control: Markup,
) -> Markup {
    let message = err
        .filter(|e| error_field(e) == Some(api_field))
        .map(|e| match e {
            AppError::BadUserInput { message, .. } => message.clone(),
            _ => String::new(),
        });
    html! {
        div class=(if message.is_some() { "field invalid" } else { "field" }) {
            label for=(id) { (label) }
            (control)
            @if let Some(message) = message {
                p class="field-error" id=(format!("{id}-error")) { (message) }
            }
        }
    }
}
