//! The one error type every service returns, and its single mapping to GraphQL errors.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

/// What went wrong, as the client is allowed to know it.
///
/// `AppError` deliberately has no `Display`: async-graphql converts any `Display` type into a
/// bare error with no code, so keeping `Display` off forces every conversion through
/// [`From<AppError> for async_graphql::Error`] below, which attaches `extensions.code`.
#[derive(Debug)]
pub enum AppError {
    /// `UNAUTHENTICATED`: no credentials, or credentials that are expired, forged or revoked.
    Unauthenticated(String),
    /// `FORBIDDEN`: the caller is known but lacks the permission.
    Forbidden(String),
    /// `NOT_FOUND`: absent, or present but invisible to the caller (the two are not told apart).
    NotFound(String),
    /// `BAD_USER_INPUT`: the input is malformed or breaks a rule; `field` names the offender.
    BadUserInput {
        message: String,
        field: Option<String>,
    },
    /// `CONFLICT`: a uniqueness rule, a stale version or a state that no longer allows the change.
    Conflict(String),
    /// `RATE_LIMITED`: too many attempts; try again later. With `retry_after`, the client also
    /// sees `extensions.retryAfter`: whole seconds, rounded up, until a retry can succeed.
    RateLimited {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// `CURSOR_EXPIRED`: the events after this cursor were pruned; resync, then follow from a
    /// newer cursor.
    CursorExpired(String),
    /// `INTERNAL`: the cause is logged with the request id; the client sees only the code.
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// `Retry-After` and `extensions.retryAfter` are whole seconds: rounded up, at least 1.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    pub fn rate_limited(
        message: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        Self::RateLimited {
            message: message.into(),
            retry_after,
        }
    }

    /// Whole seconds until a retry can succeed, rounded up (never 0: "now" would invite a spin).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after: Some(wait),
                ..
            } => Some(retry_after_secs(*wait)),
            _ => None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::CursorExpired(_) => "CURSOR_EXPIRED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The text a client may see.
    pub fn public_message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::BadUserInput { message: m, .. }
            | Self::Conflict(m)
            | Self::RateLimited { message: m, .. }
            | Self::CursorExpired(m) => m,
            Self::Internal(_) => "internal error",
        }
    }

    /// Turns a unique-constraint violation into `CONFLICT` with `message`; anything else is internal.
    pub fn from_unique_violation(err: DbErr, message: impl Into<String>) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Conflict(message.into()),
            _ => Self::from(err),
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// A service error inside a job: internal failures are worth a retry, refusals are not.
impl From<AppError> for crate::platform::scheduler::JobError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Internal(cause) => Self::Retry(format!("{cause:#}")),
            other => Self::Discard(format!("{}: {}", other.code(), other.public_message())),
        }
    }
}

/// Marks an `INTERNAL` error whose cause is that the database cannot be reached (pool timeout,
/// connection refused or cut, the server shutting down or starting up). The body still says
/// `INTERNAL`; the HTTP edge answers 503 with `Retry-After` when every error of a request is one.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnavailable;

impl AppError {
    /// Whether this is an internal error caused by the database being out of reach.
    pub fn is_database_unavailable(&self) -> bool {
        match self {
            Self::Internal(cause) => unavailable_cause(cause),
            _ => false,
        }
    }
}

/// Whether an internal error's cause is the database being out of reach.
/// A service error as a DataLoader error, which its waiters share (hence the `Arc`).
pub fn loader_db_error(err: AppError) -> std::sync::Arc<DbErr> {
    std::sync::Arc::new(DbErr::Custom(format!("{err:?}")))
}

pub fn unavailable_cause(cause: &anyhow::Error) -> bool {
    cause.chain().any(unavailable_link)
}

fn unavailable_link(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(err) = err.downcast_ref::<DbErr>() {
        return match err {
            DbErr::ConnectionAcquire(_) => true,
            DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))
            | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
            | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => sqlx_unavailable(e),
            _ => false,
        };
    }
    err.downcast_ref::<sqlx::Error>()
        .is_some_and(sqlx_unavailable)
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down, starting up).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let unavailable = err.is_database_unavailable();
        if let AppError::Internal(cause) = &err {
            if unavailable {
                tracing::warn!(error = ?cause, "database unavailable");
            } else {
                tracing::error!(error = ?cause, "internal error");
            }
        }
        let mut error = async_graphql::Error::new(err.public_message());
        if unavailable {
            error.source = Some(std::sync::Arc::new(DatabaseUnavailable));
        }
        error.extend_with(|_, ext| {
            ext.set("code", err.code());
            if let AppError::BadUserInput {
                field: Some(field), ..
            } = &err
            {
                ext.set("field", field.as_str());
            }
            if let Some(secs) = err.retry_after_secs() {
                ext.set("retryAfter", secs);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_tell_whole_seconds_rounded_up() {
        use std::time::Duration;
        let retry = |wait: Duration| {
            let err: async_graphql::Error = AppError::rate_limited("slow down", Some(wait)).into();
            err.extensions
                .as_ref()
                .and_then(|e| e.get("retryAfter"))
                .cloned()
        };
        assert_eq!(retry(Duration::from_millis(1500)), Some(2u64.into()));
        assert_eq!(retry(Duration::from_secs(7)), Some(7u64.into()));
        assert_eq!(retry(Duration::from_millis(1)), Some(1u64.into()));
        let bare: async_graphql::Error = AppError::rate_limited("busy", None).into();
        assert!(bare
            .extensions
            .as_ref()
            .and_then(|e| e.get("retryAfter"))
            .is_none());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err: async_graphql::Error =
            AppError::internal(anyhow::anyhow!("SELECT * FROM secret_table failed")).into();
        assert_eq!(err.message, "internal error");
        let code = err.extensions.as_ref().and_then(|e| e.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
    }

    #[test]
    fn unreachable_databases_are_marked_and_stay_internal() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cases = [
            (
                AppError::from(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(
                    sqlx::Error::Io(refused),
                ))),
                true,
            ),
            (
                AppError::from(DbErr::ConnectionAcquire(
                    sea_orm::error::ConnAcquireErr::Timeout,
                )),
                true,
            ),
            (
                AppError::internal(anyhow::Error::from(sqlx::Error::PoolTimedOut).context("x")),
                true,
            ),
            (AppError::from(DbErr::RecordNotFound("x".into())), false),
            (AppError::internal(anyhow::anyhow!("a bug")), false),
            (AppError::Conflict("x".into()), false),
        ];
        for (err, unavailable) in cases {
            assert_eq!(err.is_database_unavailable(), unavailable, "{err:?}");
            let code = err.code();
            let gql: async_graphql::Error = err.into();
            assert_eq!(gql.source.is_some(), unavailable);
            if unavailable {
                assert_eq!(code, "INTERNAL");
                assert_eq!(gql.message, "internal error");
            }
        }
    }

    #[test]
    fn every_variant_has_its_code() {
        let cases = [
            (AppError::Unauthenticated("x".into()), "UNAUTHENTICATED"),
            (AppError::Forbidden("x".into()), "FORBIDDEN"),
            (AppError::not_found("x"), "NOT_FOUND"),
            (AppError::bad_field("email", "x"), "BAD_USER_INPUT"),
            (AppError::Conflict("x".into()), "CONFLICT"),
            (AppError::rate_limited("x", None), "RATE_LIMITED"),
        ];
        for (err, code) in cases {
            let gql: async_graphql::Error = err.into();
            let got = gql.extensions.as_ref().and_then(|e| e.get("code")).cloned();
            assert_eq!(got, Some(async_graphql::Value::from(code)));
        }
    }
}
