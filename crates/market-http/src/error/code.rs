//! The one table of error codes: each stable code with its HTTP status, and which domain conflict
//! is which code. A code never changes meaning once sent.

use actix_web::http::StatusCode;
use market_core::Conflict;

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
    /// 409: the owner has as many webhook endpoints as it may (10).
    WebhookEndpointLimit,
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
            Self::WebhookEndpointLimit => "webhook_endpoint_limit",
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
            | Self::HouseNotSuspendable
            | Self::WebhookEndpointLimit => StatusCode::CONFLICT,
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
            Conflict::WebhookEndpointLimit => Self::WebhookEndpointLimit,
        }
    }
}
