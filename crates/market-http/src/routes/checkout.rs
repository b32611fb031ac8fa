//! `POST /v1/checkout`: a pending purchase and its Stripe Checkout Session.
//! `GET /v1/checkout/sessions/{session_id}`: what the success page calls.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use market_core::audit::Actor;
use market_core::checkout;
use market_core::payments;
use market_core::provider::{CheckoutSessions, OpenedSession, ProviderError, SessionRequest};
use market_core::purchases::{self, NewPurchase};
use market_core::{Email, PurchaseStatus, TierId};
use url::Url;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdempotencyKey, bearer};
use crate::state::{AppState, origin_of};
use crate::stripe::{NewSession, StripeFailure, StripeGateway};
use crate::wire::checkout::{CheckoutRequest, CheckoutResponse};
use crate::wire::purchases::PurchaseBody;

/// Starts a checkout. The same `Idempotency-Key` returns the same purchase for 24 hours; keys are
/// secrets (at least 32 random characters), since a replay answers with the receipt key.
#[utoipa::path(
    post,
    path = "/v1/checkout",
    tag = "checkout",
    request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the same purchase (and its receipt key) for 24 hours. Must be random and secret: 32-255 visible ASCII characters, such as a UUID; shorter keys are refused with 400.", min_length = 32, max_length = 255, pattern = "^[\\x21-\\x7e]+$")),
    responses(
        (status = 201, body = CheckoutResponse),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
    )
)]
pub async fn create_checkout(
    state: web::Data<AppState>,
    idempotency_key: IdempotencyKey,
    body: web::Json<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let sessions = Sessions {
        stripe: &state.stripe,
        public_url: &state.public_url,
        success_url: return_url(&state, body.success_url.as_ref(), "success_url")?,
        cancel_url: return_url(&state, body.cancel_url.as_ref(), "cancel_url")?,
    };
    let new = NewPurchase {
        tier: TierId(body.tier_id),
        email,
        idempotency_key: idempotency_key.0,
    };
    // Boxed: the Stripe request inside makes this future 16 kB, too large to keep on the stack.
    let started = Box::pin(checkout::start(
        state.db(),
        &state.receipts,
        &new,
        state.platform_fee,
        &sessions,
        &Actor::Buyer,
    ))
    .await?;

    fail::fail_point!("after_checkout_commit_before_response");
    let status = if started.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(CheckoutResponse {
            purchase_id: started.purchase.purchase_id.0,
            checkout_url: started.checkout_url,
            receipt_key: started.receipt_key.expose().to_owned(),
        }))
}

/// Stripe's Checkout Sessions with the return pages this request asked for (or the storefront's).
/// An upgrade's checkout (`routes::upgrade`) opens its session the same way.
pub(crate) struct Sessions<'a> {
    pub(crate) stripe: &'a StripeGateway,
    pub(crate) public_url: &'a Url,
    pub(crate) success_url: Option<Url>,
    pub(crate) cancel_url: Option<Url>,
}

impl CheckoutSessions for Sessions<'_> {
    async fn open(&self, request: &SessionRequest<'_>) -> Result<OpenedSession, ProviderError> {
        let success = self
            .success_url
            .clone()
            .unwrap_or_else(|| default_success_url(self.public_url, request.purchase));
        let success = with_session_placeholder(&success);
        let cancel = self
            .cancel_url
            .clone()
            .unwrap_or_else(|| self.public_url.clone());
        let session = self
            .stripe
            .create_session(&NewSession {
                purchase: request.purchase,
                price: request.price,
                product_name: request.product_name,
                email: request.email,
                success_url: success.as_str(),
                cancel_url: cancel.as_str(),
                split: request.split,
            })
            .await?;
        let url = session.url.ok_or("Stripe returned a session without url")?;
        Ok(OpenedSession {
            id: session.id,
            url,
        })
    }
}

/// A storefront-supplied return URL, accepted only on an allowed origin.
pub(crate) fn return_url(
    state: &AppState,
    url: Option<&Url>,
    field: &'static str,
) -> Result<Option<Url>, ApiError> {
    let Some(url) = url else { return Ok(None) };
    if !matches!(url.scheme(), "http" | "https") || !state.return_origins.contains(&origin_of(url))
    {
        return Err(ApiError::invalid(format!(
            "{field} must be on this service's public URL or an allowed storefront origin"
        )));
    }
    Ok(Some(url.clone()))
}

/// The storefront page, told which purchase to show.
fn default_success_url(public: &Url, purchase: market_core::PurchaseId) -> Url {
    let mut url = public.clone();
    url.set_path("/");
    url.set_query(Some(&format!("purchase={purchase}")));
    url
}

/// Stripe replaces `{CHECKOUT_SESSION_ID}` in the success URL with the session id; the success page
/// needs it to call back.
fn with_session_placeholder(url: &Url) -> String {
    let text = url.to_string();
    if text.contains("{CHECKOUT_SESSION_ID}") || text.contains("%7BCHECKOUT_SESSION_ID%7D") {
        return text.replace("%7BCHECKOUT_SESSION_ID%7D", "{CHECKOUT_SESSION_ID}");
    }
    let separator = if url.query().is_some() { '&' } else { '?' };
    format!("{text}{separator}session_id={{CHECKOUT_SESSION_ID}}")
}

/// The success page's call: reads the session from Stripe (never trusting the caller) and, when
/// Stripe says it is paid, runs the same fulfilment as the webhook, so the buyer sees the token at
/// once. The token itself is only in the answer with the purchase's receipt key as bearer.
#[utoipa::path(
    get,
    path = "/v1/checkout/sessions/{session_id}",
    tag = "checkout",
    params(("session_id" = String, Path, description = "Stripe's Checkout Session id (cs_…)")),
    responses((status = 200, body = PurchaseBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)),
    security((), ("receipt_key" = []))
)]
pub async fn checkout_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    session_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session_id = session_id.into_inner();
    let well_formed = session_id.starts_with("cs_")
        && session_id.len() <= 255
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        return Err(ApiError::not_found("checkout session"));
    }
    // Stripe is asked only about a session this service created and whose purchase still waits
    // for its payment: made-up ids and page reloads cost one indexed read, not a Stripe call
    // (Stripe's rate limit is the account's, shared with every checkout being created).
    let known = purchases::by_checkout_session(state.db(), &session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("checkout session"))?;
    if known.status != PurchaseStatus::Pending {
        return answer_with_receipt(&state, &req, &known).await;
    }
    let session = match state.stripe.session(&session_id).await {
        Ok(session) => session,
        Err(StripeFailure::NotFound) => return Err(ApiError::not_found("checkout session")),
        Err(e) => return Err(ApiError::upstream("Stripe", e)),
    };
    let facts = session
        .facts
        .ok_or_else(|| ApiError::not_found("checkout session"))?;
    if payments::apply_session_read(state.db(), &facts, &Actor::Stripe)
        .await?
        .is_some()
    {
        fail::fail_point!("after_success_page_commit_before_response");
    }
    let purchase = purchases::by_id(state.db(), facts.purchase)
        .await?
        .ok_or_else(|| ApiError::not_found("checkout session"))?;
    answer_with_receipt(&state, &req, &purchase).await
}

/// The purchase as the success page shows it: with its token only for the receipt key's bearer.
async fn answer_with_receipt(
    state: &AppState,
    req: &HttpRequest,
    purchase: &purchases::Purchase,
) -> Result<HttpResponse, ApiError> {
    let receipt = purchases::receipt_of(state.db(), &state.market.envelope, purchase).await?;
    let owner = bearer(req).is_some_and(|key| {
        market_core::receipt::ReceiptKey::presented(key).matches(&purchase.receipt_hash)
    });
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(PurchaseBody::of(receipt, owner)))
}
