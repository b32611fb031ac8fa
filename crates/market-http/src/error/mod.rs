//! The one error envelope, and the one place errors become HTTP statuses.
//!
//! Every error response is `{"error": {"code": "<stable_snake_case>", "message": "<human text>"}}`.
//! Codes are part of the API: clients branch on them, so they never change meaning; [`Code`] is
//! their one table, each with its status. Messages are for people and never carry secrets or
//! internals; a 5xx's cause (its whole source chain) goes to the log, once, with the request id
//! that the response also carries.

pub mod framework;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use market_core::Conflict;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error code this API sends, with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 400: a field or header broke a rule.
    InvalidRequest,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: a pagination cursor this API did not hand out.
    InvalidCursor,
    /// 400: a Stripe webhook whose signature does not verify.
    InvalidSignature,
    /// 400: a correctly signed Stripe event that cannot be read.
    InvalidPayload,
    /// 400: any other client error actix-web itself produced.
    BadRequest,
    /// 401: no valid admin token (or, on the portal, no live portal session).
    Unauthorized,
    /// 401: a portal sign-in link that is unknown, used or expired.
    InvalidPortalLink,
    /// 404: the resource does not exist (or is not the caller's to know of).
    NotFound,
    /// 404: no route has this path.
    RouteNotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 409: the tier is off sale.
    TierNotOnSale,
    /// 409: the `Idempotency-Key` came with a different request before.
    IdempotencyKeyReused,
    /// 409: the purchase has another Checkout Session.
    CheckoutSessionMismatch,
    /// 409: the purchase is not paid, or already refunded.
    NotRefundable,
    /// 409: the purchase holds no working token to rotate.
    NotRotatable,
    /// 409: the purchase is not one that can be upgraded (no working token, or itself an upgrade).
    NotUpgradable,
    /// 409: the target tier is not a higher tier of the purchase's listing.
    NotAnUpgrade,
    /// 409: another upgrade of the purchase is unpaid or being applied.
    UpgradeInProgress,
    /// 409: the house seller's Xano credential is the service's own.
    HouseCredential,
    /// 409: a seller with listings offered a token of another Xano account.
    XanoAccountChanged,
    /// 409: the seller has no Xano credential yet.
    NoXanoCredential,
    /// 409: Xano refuses the seller's stored credential.
    SellerXanoRefused,
    /// 409: the snippet is listed by another seller.
    ListingOfAnotherSeller,
    /// 409: the house is paid directly and has no Stripe connected account.
    HouseNotConnected,
    /// 409: the seller has not finished Stripe onboarding.
    StripeNotOnboarded,
    /// 409: a token minted for a purchase was sold meanwhile (workers only; retried).
    TokenTaken,
    /// 409: only a dead job can be requeued.
    JobNotDead,
    /// 409: the dead job's work is already queued again.
    JobAlreadyLive,
    /// 409: a seller may not revoke its own last unrevoked API key.
    LastSellerKey,
    /// 409: the seller holds as many unrevoked API keys as it may.
    SellerKeyLimit,
    /// 409: the house has no API key.
    HouseHasNoKey,
    /// 409: the house cannot be suspended.
    HouseNotSuspendable,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 429: this client is over its rate limit; `Retry-After` says when to come back.
    RateLimited,
    /// 500: our fault; the cause is in the log.
    InternalError,
    /// 502: Stripe or Xano did not answer as expected.
    UpstreamUnavailable,
    /// 503: the database is unreachable or the instance overloaded; try again.
    Unavailable,
    /// 503: Xano refuses the service's access token.
    XanoCredentialRefused,
    /// 503: Xano rate-limits the service.
    XanoRateLimited,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::MalformedJson => "malformed_json",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidPayload => "invalid_payload",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::InvalidPortalLink => "invalid_portal_link",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TierNotOnSale => "tier_not_on_sale",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::CheckoutSessionMismatch => "checkout_session_mismatch",
            Self::NotRefundable => "not_refundable",
            Self::NotRotatable => "not_rotatable",
            Self::NotUpgradable => "not_upgradable",
            Self::NotAnUpgrade => "not_an_upgrade",
            Self::UpgradeInProgress => "upgrade_in_progress",
            Self::HouseCredential => "house_credential",
            Self::XanoAccountChanged => "xano_account_changed",
            Self::NoXanoCredential => "no_xano_credential",
            Self::SellerXanoRefused => "seller_xano_refused",
            Self::ListingOfAnotherSeller => "listing_of_another_seller",
            Self::HouseNotConnected => "house_not_connected",
            Self::StripeNotOnboarded => "stripe_not_onboarded",
            Self::TokenTaken => "token_taken",
            Self::JobNotDead => "job_not_dead",
            Self::JobAlreadyLive => "job_already_live",
            Self::LastSellerKey => "last_seller_key",
            Self::SellerKeyLimit => "seller_key_limit",
            Self::HouseHasNoKey => "house_has_no_key",
            Self::HouseNotSuspendable => "house_not_suspendable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::InternalError => "internal_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::Unavailable => "unavailable",
            Self::XanoCredentialRefused => "xano_credential_refused",
            Self::XanoRateLimited => "xano_rate_limited",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest
            | Self::MalformedJson
            | Self::InvalidCursor
            | Self::InvalidSignature
            | Self::InvalidPayload
            | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidPortalLink => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TierNotOnSale
            | Self::IdempotencyKeyReused
            | Self::CheckoutSessionMismatch
            | Self::NotRefundable
            | Self::NotRotatable
            | Self::NotUpgradable
            | Self::NotAnUpgrade
            | Self::UpgradeInProgress
            | Self::HouseCredential
            | Self::XanoAccountChanged
            | Self::NoXanoCredential
            | Self::SellerXanoRefused
            | Self::ListingOfAnotherSeller
            | Self::HouseNotConnected
            | Self::StripeNotOnboarded
            | Self::TokenTaken
            | Self::JobNotDead
            | Self::JobAlreadyLive
            | Self::LastSellerKey
            | Self::SellerKeyLimit
            | Self::HouseHasNoKey
            | Self::HouseNotSuspendable => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::Unavailable | Self::XanoCredentialRefused | Self::XanoRateLimited => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl From<Conflict> for Code {
    fn from(conflict: Conflict) -> Self {
        match conflict {
            Conflict::TierNotOnSale => Self::TierNotOnSale,
            Conflict::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            Conflict::CheckoutSessionMismatch => Self::CheckoutSessionMismatch,
            Conflict::NotRefundable => Self::NotRefundable,
            Conflict::NotRotatable => Self::NotRotatable,
            Conflict::NotUpgradable => Self::NotUpgradable,
            Conflict::NotAnUpgrade => Self::NotAnUpgrade,
            Conflict::UpgradeInProgress => Self::UpgradeInProgress,
            Conflict::HouseCredential => Self::HouseCredential,
            Conflict::XanoAccountChanged => Self::XanoAccountChanged,
            Conflict::NoXanoCredential => Self::NoXanoCredential,
            Conflict::SellerXanoRefused => Self::SellerXanoRefused,
            Conflict::ListingOfAnotherSeller => Self::ListingOfAnotherSeller,
            Conflict::HouseNotConnected => Self::HouseNotConnected,
            Conflict::StripeNotOnboarded => Self::StripeNotOnboarded,
            Conflict::TokenTaken => Self::TokenTaken,
            Conflict::JobNotDead => Self::JobNotDead,
            Conflict::JobAlreadyLive => Self::JobAlreadyLive,
            Conflict::LastSellerKey => Self::LastSellerKey,
            Conflict::SellerKeyLimit => Self::SellerKeyLimit,
            Conflict::HouseHasNoKey => Self::HouseHasNoKey,
            Conflict::HouseNotSuspendable => Self::HouseNotSuspendable,
        }
    }
}

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
