//! The one error envelope, and the one place errors become HTTP statuses.
//!
//! Every error response is `{"error": {"code": "<stable_snake_case>", "message": "<human text>"}}`.
//! Codes are part of the API: clients branch on them, so they never change meaning. Messages are for
//! people and never carry secrets or internals; a 5xx's cause goes to the log, once, with the
//! request id that the response also carries.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// An API error: status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The cause of a 5xx, for the log only.
    cause: Option<String>,
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
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin token is required",
        )
    }

    /// A failure of ours or of a service we depend on; `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "something went wrong on our side; try again".into(),
            cause: Some(cause.to_string()),
        }
    }

    pub fn upstream(service: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "upstream_unavailable",
            message: format!("{service} did not answer as expected; try again shortly"),
            cause: Some(cause.to_string()),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let Some(cause) = &self.cause {
            tracing::error!(error.code = self.code, error.cause = %cause, "request failed");
        }
        envelope(self.status, self.code, &self.message)
    }
}

pub fn envelope(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        })
}

impl From<market_core::Error> for ApiError {
    fn from(e: market_core::Error) -> Self {
        use market_core::Error as E;
        match e {
            E::NotFound(what) => Self::not_found(what),
            E::Invalid { field, message } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{field}: {message}"),
            ),
            E::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            E::Xano(e) => match e {
                master_api::Error::Unauthorized | master_api::Error::Forbidden => Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "xano_credential_refused",
                    message: "Xano refused the service's access token; an operator must renew it"
                        .into(),
                    cause: Some(e.to_string()),
                },
                master_api::Error::RateLimited { .. } => Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "xano_rate_limited",
                    message: "Xano is rate-limiting us; try again shortly".into(),
                    cause: Some(e.to_string()),
                },
                other => Self::upstream("Xano", other),
            },
            E::Database(e) => match &e {
                e if connection_lost(e) => Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    message: "the service is overloaded or its database unreachable; try again"
                        .into(),
                    cause: Some(e.to_string()),
                },
                // 22021: PostgreSQL refuses a NUL in text. Our parameters are valid UTF-8, so only
                // a NUL from the request gets here: the client's mistake, not ours.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
                    Self::bad_request("invalid_request", "text must not contain NUL characters")
                }
                _ => Self::internal(e),
            },
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

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        market_core::Error::Database(e).into()
    }
}

/// Malformed JSON, wrong content type, oversized bodies: the same envelope as everything else.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        J::Deserialize(e) if e.is_data() => ApiError::bad_request("invalid_request", e.to_string()),
        J::Deserialize(_) | J::Serialize(_) => {
            ApiError::bad_request("malformed_json", "the body is not valid JSON")
        }
        _ => ApiError::bad_request("malformed_json", "the body could not be read"),
    };
    api.into()
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource ({err})"),
    )
    .into()
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_request", format!("query string: {err}")).into()
}

/// Unknown routes.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route",
    ))
}

/// Rewrites responses actix itself produced without our envelope (405 for a wrong method on a
/// known route, and any other empty error response) into the envelope.
pub fn envelope_bare_errors<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::NOT_FOUND => ("route_not_found", "no such route"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        s if s.is_client_error() => ("bad_request", "the request could not be processed"),
        _ => (
            "internal_error",
            "something went wrong on our side; try again",
        ),
    };
    let (req, _) = res.into_parts();
    let response = envelope(status, code, message);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
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
        assert_eq!(
            (api.status, api.code),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            "{api:?}"
        );
    }

    #[tokio::test]
    async fn an_error_of_the_statement_itself_stays_a_500() {
        let db = testkit::TestDb::empty().await;

        let error = sqlx::query("select 1 / 0")
            .execute(db.pool())
            .await
            .unwrap_err();

        let api = ApiError::from(error);
        assert_eq!(
            (api.status, api.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            "{api:?}"
        );
    }
}
