//! `POST /v1/checkout`: a pending purchase and its Stripe Checkout Session.
//! `GET /v1/checkout/sessions/{session_id}`: what the success page calls.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use market_core::audit::Actor;
use market_core::payments::{self, Fact, SessionPayment};
use market_core::purchases::{self, NewPurchase};
use market_core::{Email, PurchaseStatus, TierId};
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::routes::purchases::{PurchaseBody, bearer, receipt_body};
use crate::state::{AppState, origin_of};
use crate::stripe::{NewSession, StripeFailure};

/// A checkout request. Only these fields are accepted: price, amount and install counts come from
/// the tier on the server, never from the request (unknown fields are refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub tier_id: Uuid,
    /// Pre-fills Stripe's form; Stripe collects it otherwise.
    pub email: Option<String>,
    /// Where Stripe sends the buyer after paying. Must be on this service's public URL or on a
    /// storefront origin in the CORS allow-list. `{CHECKOUT_SESSION_ID}` is added if missing.
    pub success_url: Option<Url>,
    /// Where Stripe sends a buyer who gives up. Same origin rule.
    pub cancel_url: Option<Url>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckoutResponse {
    pub purchase_id: Uuid,
    /// Send the buyer here to pay.
    pub checkout_url: String,
    /// The buyer's key to this purchase (`Authorization: Bearer <receipt_key>` on
    /// `GET /v1/purchases/{id}`). Keep it: it is the only proof of ownership.
    pub receipt_key: String,
}

/// The receipt key stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for CheckoutResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutResponse")
            .field("purchase_id", &self.purchase_id)
            .field("checkout_url", &self.checkout_url)
            .field("receipt_key", &"[redacted]")
            .finish()
    }
}

/// Starts a checkout. The same `Idempotency-Key` returns the same purchase.
#[utoipa::path(
    post,
    path = "/v1/checkout",
    tag = "checkout",
    request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retry-safe key, 1-255 characters")),
    responses(
        (status = 201, body = CheckoutResponse),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody),
    )
)]
pub async fn create_checkout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let idempotency_key = match req.headers().get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_request",
                        "Idempotency-Key must be visible ASCII",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let success_url = return_url(&state, body.success_url.as_ref(), "success_url")?;
    let cancel_url = return_url(&state, body.cancel_url.as_ref(), "cancel_url")?;

    let new = NewPurchase {
        tier: TierId(body.tier_id),
        email,
        idempotency_key,
    };
    let created = purchases::create(state.db(), &state.receipts, &new, &Actor::Buyer).await?;
    let purchase = &created.purchase;

    let checkout_url =
        if let (Some(_), Some(url)) = (&purchase.checkout_session_id, &purchase.checkout_url) {
            url.clone()
        } else {
            let success = success_url
                .unwrap_or_else(|| default_success_url(&state.public_url, purchase.purchase_id));
            let success = with_session_placeholder(&success);
            let cancel = cancel_url.unwrap_or_else(|| state.public_url.clone());
            let product_name = format!("{} — {}", created.canonical, created.tier_name);
            let session = state
                .stripe
                .create_session(&NewSession {
                    purchase: purchase.purchase_id,
                    amount: purchase.amount,
                    currency: &purchase.currency,
                    product_name: &product_name,
                    email: purchase.email.as_deref(),
                    success_url: success.as_str(),
                    cancel_url: cancel.as_str(),
                })
                .await
                .map_err(|e| ApiError::upstream("Stripe", e))?;
            let url = session
                .url
                .ok_or_else(|| ApiError::upstream("Stripe", "session without url"))?;
            purchases::attach_checkout_session(state.db(), purchase.purchase_id, &session.id, &url)
                .await?;
            url
        };

    fail::fail_point!("after_checkout_commit_before_response");
    let status = if created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(CheckoutResponse {
            purchase_id: purchase.purchase_id.0,
            checkout_url,
            receipt_key: created.receipt_key.expose().to_owned(),
        }))
}

/// A storefront-supplied return URL, accepted only on an allowed origin.
fn return_url(
    state: &AppState,
    url: Option<&Url>,
    field: &'static str,
) -> Result<Option<Url>, ApiError> {
    let Some(url) = url else { return Ok(None) };
    if !matches!(url.scheme(), "http" | "https") || !state.return_origins.contains(&origin_of(url))
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} must be on this service's public URL or an allowed storefront origin"),
        ));
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
    responses((status = 200, body = PurchaseBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
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
    if matches!(
        facts.payment,
        SessionPayment::Paid | SessionPayment::NoPaymentRequired
    ) {
        payments::apply(
            state.db(),
            None,
            &Fact::CheckoutCompleted(facts.clone()),
            &Actor::Stripe,
        )
        .await?;
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
    let receipt = purchases::receipt_of(state.db(), purchase).await?;
    let owner = bearer(req).is_some_and(|key| {
        market_core::receipt::ReceiptKey::presented(key).matches(&purchase.receipt_hash)
    });
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(receipt_body(receipt, owner)))
}
