//! `POST /v1/webhooks/stripe`: Stripe's events.
//!
//! In this order, and nothing is written before the last step:
//! 1. the body size limit (`PayloadConfig` on the route: an oversized body is refused with 413 before
//!    this handler runs);
//! 2. the signature over the raw bytes, against every configured secret, with Stripe's ±300 s
//!    tolerance (400 `invalid_signature`);
//! 3. reading, leniently (`intake`): 400 `invalid_payload` when a correctly signed body is not an
//!    event at all;
//! 4. mode: a test-mode event at a live service, or the reverse, is acknowledged and ignored;
//! 5. an event of a handled type that lacks what its fact needs is kept raw
//!    (`payments::unreadable`, replayed by `market events replay`), logged as an error and
//!    acknowledged, so Stripe stops retrying what no retry could fix and nothing is lost;
//! 6. the event's fact applied in one transaction with its inbox row (duplicates acknowledged
//!    without effect). Types we do not handle are acknowledged (200) so Stripe does not retry them.
//!
//! Nothing here calls Xano; the answer takes one short transaction.

use crate::error::{ApiError, Code, ErrorBody};
use crate::inbox::{self, Applied};
use crate::state::AppState;
use crate::wire::ops::WebhookAck;
use actix_web::{HttpRequest, HttpResponse, web};

/// Stripe events are a few kB; this leaves ample room and bounds what an attacker can make us hash.
pub const MAX_BODY: usize = 256 * 1024;

#[utoipa::path(
    post,
    path = "/v1/webhooks/stripe",
    tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex>[,v1=…]")),
    request_body(content = String, content_type = "application/json", description = "a Stripe event, as Stripe sends it"),
    responses((status = 200, body = WebhookAck), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody))
)]
pub async fn stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let invalid_signature = || {
        ApiError::new(
            Code::InvalidSignature,
            "the Stripe-Signature header does not verify",
        )
    };
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid_signature)?;
    let payload = std::str::from_utf8(&body).map_err(|_| invalid_signature())?;
    if let Err(failure) = state.stripe.verify(payload, signature) {
        tracing::info!(?failure, "Stripe webhook refused");
        metrics::counter!("market_stripe_webhooks_total", "outcome" => "refused").increment(1);
        return Err(invalid_signature());
    }
    let applied = inbox::apply(state.db(), payload, state.stripe.livemode(), "webhook").await?;
    if matches!(applied, Applied::NotAnEvent) {
        tracing::warn!("a correctly signed body is not a Stripe event");
        return Err(ApiError::new(
            Code::InvalidPayload,
            "the body is not a Stripe event",
        ));
    }
    let outcome = applied.outcome();
    metrics::counter!("market_stripe_webhooks_total", "outcome" => outcome).increment(1);
    fail::fail_point!("after_webhook_commit_before_response");
    Ok(ack(outcome))
}

fn ack(outcome: &str) -> HttpResponse {
    HttpResponse::Ok().json(WebhookAck {
        received: true,
        outcome: outcome.to_owned(),
    })
}
