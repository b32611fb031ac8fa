//! The one error envelope, and the one place errors become HTTP statuses.
//!
//! Every error response is `{"error": {"code": "<stable_snake_case>", "message": "<human text>"}}`.
//! Codes are part of the API: clients branch on them, so they never change meaning; [`Code`] is
//! their one table, each with its status. Messages are for people and never carry secrets or
//! internals; a 5xx's cause (its whole source chain) goes to the log, once, with the request id
//! that the response also carries.

mod code;
pub mod framework;

pub use code::Code;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// An API error: a stable code (and so a status), a human message, and for failures on our side
/// or upstream the cause, for the log only.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    cause: Option<anyhow::Error>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<std::time::Duration>,
}

/// The envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: `not_found`, `invalid_request`, `invalid_signature`, …
    code: String,
    message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    /// Over a rate limit: come back after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let mut error = Self::new(
            Code::RateLimited,
            "too many requests from this client; try again after the Retry-After seconds",
        );
        error.retry_after = Some(wait);
        error
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized() -> Self {
        Self::new(Code::Unauthorized, "a valid admin token is required")
    }

    /// A failure of ours; `cause` (with its source chain) is logged, never sent.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::new(
            Code::InternalError,
            "something went wrong on our side; try again",
        )
        .caused_by(cause)
    }

    /// A service we depend on failed; `cause` is logged, never sent.
    pub fn upstream(service: &'static str, cause: impl Into<anyhow::Error>) -> Self {
        Self::new(
            Code::UpstreamUnavailable,
            format!("{service} did not answer as expected; try again shortly"),
        )
        .caused_by(cause)
    }

    fn caused_by(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let Some(cause) = &self.cause {
            tracing::error!(error.code = self.code.as_str(), error.cause = %format!("{cause:#}"), "request failed");
        }
        let mut response = envelope(self.code, &self.message);
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

pub fn envelope(code: Code, message: &str) -> HttpResponse {
    envelope_with_status(code.status(), code, message)
}

/// The envelope with a status actix-web chose (for its own bare error responses).
pub(crate) fn envelope_with_status(status: StatusCode, code: Code, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(ErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_owned(),
                message: message.to_owned(),
            },
        })
}

impl From<market_core::Error> for ApiError {
    fn from(e: market_core::Error) -> Self {
        use market_core::Error as E;
        match e {
            E::NotFound(what) => Self::not_found(what),
            E::Invalid { field, message } => Self::invalid(format!("{field}: {message}")),
            E::Conflict(conflict) => Self::new(conflict.into(), conflict.to_string()),
            E::Xano(e) => match e {
                master_api::Error::Unauthorized | master_api::Error::Forbidden => Self::new(
                    Code::XanoCredentialRefused,
                    "Xano refused the service's access token; an operator must renew it",
                )
                .caused_by(e),
                master_api::Error::RateLimited { .. } => Self::new(
                    Code::XanoRateLimited,
                    "Xano is rate-limiting us; try again shortly",
                )
                .caused_by(e),
                other => Self::upstream("Xano", other),
            },
            E::Payments(cause) => Self::upstream("Stripe", anyhow::Error::from_boxed(cause)),
            E::Database(e) if connection_lost(&e) => Self::new(
                Code::Unavailable,
                "the service is overloaded or its database unreachable; try again",
            )
            .caused_by(e),
            E::Database(e) if out_of_time(&e) => Self::new(
                Code::Unavailable,
                "the database did not answer in time; try again",
            )
            .caused_by(e),
            // 22021: PostgreSQL refuses a NUL in text. Our parameters are valid UTF-8, so only a
            // NUL from the request gets here: the client's mistake, not ours.
            E::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22021") => {
                Self::invalid("text must not contain NUL characters")
            }
            // A key missing from MARKET_DATA_KEY or an altered row: the operator's to fix.
            E::Sealed(e) => Self::internal(e),
            E::Database(e) => Self::internal(e),
        }
    }
}

/// Whether the request failed because its database connection was lost or never found, rather
/// than because of anything the statement did: no free connection, a broken socket, or the server
/// ending the session — a connection exception (SQLSTATE class 08), a shutdown (57P01–57P03), or an
/// idle timeout (25P03 `idle_in_transaction_session_timeout`, 57P05 `idle_session_timeout`). The
/// idle timeouts end the transactions of an instance that stalled mid-request (a VM pause,
/// `SIGSTOP`); when it wakes up, that request finds its session gone. Each is a 503: the client's
/// retry starts afresh and works; nothing on our side is broken.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "25P03" | "57P05")
        }),
        _ => false,
    }
}

/// Whether PostgreSQL gave up on the statement because it waited too long, rather than because
/// of anything it did: `lock_timeout` (55P03, a row held by a transaction that did not finish in
/// time) or `statement_timeout` (57014; the service cancels statements no other way). Nothing was
/// written; the client's retry starts afresh. When the database stalls (a disk that does not
/// flush, the chaos suite's `synchronous_standby_names` stall) the transactions that wait to
/// commit keep their row locks, and the requests behind them time out here: a 503, like the
/// requests that found no pooled connection meanwhile, not a 500 that reads as a bug of ours.
fn out_of_time(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("55P03" | "57014")))
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        market_core::Error::Database(e).into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail by panicking"
    )]

    use std::time::Duration;

    use super::*;

    /// Found by the chaos suite (`tests/chaos.rs`): an instance `SIGSTOP`ped in the middle of a
    /// request had its transaction ended by PostgreSQL's idle-in-transaction timeout; when it was
    /// continued, the request failed on its lost session and answered 500 `internal_error`, as if
    /// the service were broken, instead of 503 `unavailable` (try again).
    #[tokio::test]
    async fn a_transaction_ended_by_the_idle_timeout_while_the_instance_stalled_is_a_503() {
        let db = testkit::TestDb::empty().await;
        let mut tx = db.pool().begin().await.unwrap();
        sqlx::query("set local idle_in_transaction_session_timeout = 50")
            .execute(&mut *tx)
            .await
            .unwrap();
        // The stall: nothing is sent on the open transaction for longer than the timeout.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let error = sqlx::query("select 1").execute(&mut *tx).await.unwrap_err();

        let api = ApiError::from(error);
        assert_eq!(api.code, Code::Unavailable, "{api:?}");
        assert_eq!(api.code.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    /// Found by the chaos suite with the database stalled for writes: a webhook waiting for a row
    /// whose transaction could not commit ran into `lock_timeout` and answered 500.
    #[tokio::test]
    async fn a_statement_that_ran_out_of_its_lock_or_statement_timeout_is_a_503() {
        let db = testkit::TestDb::empty().await;
        sqlx::query("create table t (id int primary key)")
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query("insert into t values (1)")
            .execute(db.pool())
            .await
            .unwrap();
        let mut holder = db.pool().begin().await.unwrap();
        sqlx::query("select id from t where id = 1 for update")
            .execute(&mut *holder)
            .await
            .unwrap();

        let mut waiter = db.pool().begin().await.unwrap();
        sqlx::query("set local lock_timeout = 50")
            .execute(&mut *waiter)
            .await
            .unwrap();
        let locked = sqlx::query("select id from t where id = 1 for update")
            .execute(&mut *waiter)
            .await
            .unwrap_err();
        let mut slow = db.pool().begin().await.unwrap();
        sqlx::query("set local statement_timeout = 50")
            .execute(&mut *slow)
            .await
            .unwrap();
        let timed_out = sqlx::query("select pg_sleep(5)")
            .execute(&mut *slow)
            .await
            .unwrap_err();

        for error in [locked, timed_out] {
            let api = ApiError::from(error);
            assert_eq!(api.code, Code::Unavailable, "{api:?}");
            assert_eq!(api.code.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[tokio::test]
    async fn an_error_of_the_statement_itself_stays_a_500() {
        let db = testkit::TestDb::empty().await;

        let error = sqlx::query("select 1 / 0")
            .execute(db.pool())
            .await
            .unwrap_err();

        let api = ApiError::from(error);
        assert_eq!(api.code, Code::InternalError, "{api:?}");
        assert_eq!(api.code.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
