//! The HTTP control API under `/__sim`: the same controls as the [`StripeSim`](super::StripeSim)
//! methods, in JSON, so a simulator in another process (`market sim stripe`) can be driven by
//! tests. These requests are not Stripe API calls: they are not in the call log.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/__sim/health` | → `{"ok":true}` |
//! | GET | `/__sim/api-key` | → `{"api_key"}` |
//! | GET | `/__sim/sessions` | → `[SimSession]` |
//! | GET | `/__sim/sessions/{id}` | → `SimSession` |
//! | POST | `/__sim/sessions/{id}/pay` | optional `{"email"}` → `SimSession` (card: paid at once) |
//! | POST | `/__sim/sessions/{id}/pay-delayed` | → `SimSession` (bank debit: complete, unpaid) |
//! | POST | `/__sim/sessions/{id}/settle` | `{"succeeded": bool}` → `SimSession` |
//! | POST | `/__sim/sessions/{id}/expire` | → `SimSession` |
//! | POST | `/__sim/refund` | `{"payment_intent", "amount"?, "reverse_transfer"?: bool, "refund_application_fee"?: bool}` → `SimRefund` (a destination charge's transfer and fee are left alone unless the flags say otherwise) |
//! | POST | `/__sim/dispute` | `{"payment_intent", "inquiry"?: bool}` → `SimDispute` (a chargeback; an inquiry with `"inquiry": true`) |
//! | GET | `/__sim/disputes/{id}` | → `SimDispute` |
//! | POST | `/__sim/disputes/{id}/escalate` | → `SimDispute` (an inquiry becomes a chargeback) |
//! | POST | `/__sim/disputes/{id}/close` | `{"outcome": "won" \| "lost"}` → `SimDispute` (an inquiry: `warning_closed` either way) |
//! | GET | `/__sim/accounts` | → `[SimAccount]` (oldest first) |
//! | GET | `/__sim/accounts/{id}` | → `SimAccount` |
//! | POST | `/__sim/accounts/{id}/onboarding` | → `SimAccount` (onboarding completed, `account.updated`) |
//! | POST | `/__sim/accounts/{id}/enabled` | `{"enabled": bool}` → `SimAccount` (disabled: `rejected.other`; `account.updated` on a change) |
//! | POST | `/__sim/account-links/expire` | → 204 (every Account Link expires now) |
//! | GET | `/__sim/ledger` | → `[SimLedgerEntry]` (one per charge, oldest first: transfer and application fee) |
//! | GET | `/__sim/events` | → `[SimEvent]` (oldest first) |
//! | POST | `/__sim/events/{id}/redeliver` | → 204 |
//! | GET | `/__sim/deliveries` | → `[DeliveryRecord]` |
//! | GET, POST, DELETE | `/__sim/webhook` | → `{"url", "secrets": <count>, "dropped": <count>}`; POST `{"url", "secrets": [..]}`; DELETE stops delivering (secrets kept) |
//! | POST | `/__sim/duplicate-deliveries` | `{"on": bool}` |
//! | GET, POST, DELETE | `/__sim/drop-deliveries` | → `{"rate", "seed", "dropped": [event ids]}`; POST `{"rate": 0.0–1.0, "seed"?: u64}`; DELETE sets the rate to 0 |
//! | POST, DELETE | `/__sim/event-drift` | POST `{"api_version"?, "unknown_fields"?: bool}` (events from now on); DELETE ends it |
//! | POST | `/__sim/retry-delays` | `{"delays_ms": [..]}` |
//! | GET, DELETE | `/__sim/calls` | → `[CallRecord]`; DELETE clears |
//! | POST | `/__sim/sign` | `{"payload", "timestamp"?}` → `{"header"}` (signed with the configured secrets) |
//!
//! Setters answer `204 No Content`. Failures answer `{"error": "<code>", "message"}` with 404
//! (unknown id), 409 (wrong state) or 400 (bad input).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::connect;
use super::error::SimError;
use super::model::{DisputeOutcome, EventDrift};
use super::ops::RefundRequest;
use super::state::{Origin, Shared, SimState};
use super::webhook::signature_header;
use crate::server::control_error;

/// This simulator's control routes; `GET /health` and the handling of malformed JSON bodies are
/// the same on both simulators, in [`crate::server`].
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-key", web::get().to(api_key))
        .route("/sessions", web::get().to(sessions))
        .route("/sessions/{id}", web::get().to(session))
        .route("/sessions/{id}/pay", web::post().to(pay))
        .route("/sessions/{id}/pay-delayed", web::post().to(pay_delayed))
        .route("/sessions/{id}/settle", web::post().to(settle))
        .route("/sessions/{id}/expire", web::post().to(expire))
        .route("/refund", web::post().to(refund))
        .route("/dispute", web::post().to(dispute))
        .route("/disputes/{id}", web::get().to(dispute_view))
        .route("/disputes/{id}/escalate", web::post().to(escalate_dispute))
        .route("/disputes/{id}/close", web::post().to(close_dispute))
        .route("/events", web::get().to(events))
        .route("/events/{id}/redeliver", web::post().to(redeliver))
        .route("/deliveries", web::get().to(deliveries))
        .route("/webhook", web::get().to(webhook))
        .route("/webhook", web::post().to(set_webhook))
        .route("/webhook", web::delete().to(clear_webhook))
        .route("/duplicate-deliveries", web::post().to(set_duplicate))
        .route("/drop-deliveries", web::get().to(drops))
        .route("/drop-deliveries", web::post().to(set_drops))
        .route("/drop-deliveries", web::delete().to(clear_drops))
        .route("/event-drift", web::post().to(set_drift))
        .route("/event-drift", web::delete().to(clear_drift))
        .route("/retry-delays", web::post().to(set_retry_delays))
        .route("/calls", web::get().to(calls))
        .route("/calls", web::delete().to(clear_calls))
        .route("/sign", web::post().to(sign))
        .configure(connect::control_routes);
}

fn failure(error: &SimError) -> HttpResponse {
    control_error(error.status(), error.code(), &error.to_string())
}

fn bad_request(message: &str) -> HttpResponse {
    control_error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The session's view after a control ran, or the control's failure.
fn session_answer(shared: &Shared, id: &str, outcome: Result<(), SimError>) -> HttpResponse {
    if let Err(error) = outcome {
        return failure(&error);
    }
    let state = shared.lock();
    match state.store.session_view(id, &state.public_base) {
        Some(view) => HttpResponse::Ok().json(view),
        None => failure(&SimError::UnknownSession(id.to_owned())),
    }
}

async fn api_key(shared: web::Data<Shared>) -> HttpResponse {
    let key = shared.lock().api_key.clone();
    HttpResponse::Ok().json(json!({ "api_key": key }))
}

async fn sessions(shared: web::Data<Shared>) -> HttpResponse {
    let state = shared.lock();
    HttpResponse::Ok().json(state.store.session_views(&state.public_base))
}

async fn session(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    session_answer(&shared, &id, Ok(()))
}

#[derive(Deserialize, Default)]
struct PayBody {
    email: Option<String>,
}

async fn pay(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: Option<web::Json<PayBody>>,
) -> HttpResponse {
    let email = body.and_then(|body| body.into_inner().email);
    let outcome = shared.lock().pay(&id, email, false, &Origin::default());
    session_answer(&shared, &id, outcome)
}

async fn pay_delayed(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let outcome = shared.lock().pay(&id, None, true, &Origin::default());
    session_answer(&shared, &id, outcome)
}

#[derive(Deserialize)]
struct Settle {
    succeeded: bool,
}

async fn settle(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Json<Settle>,
) -> HttpResponse {
    let outcome = shared.lock().settle(&id, body.succeeded);
    session_answer(&shared, &id, outcome)
}

async fn expire(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let outcome = shared.lock().expire(&id, &Origin::default());
    session_answer(&shared, &id, outcome)
}

#[derive(Deserialize)]
struct RefundBody {
    payment_intent: String,
    amount: Option<i64>,
    #[serde(default)]
    reverse_transfer: bool,
    #[serde(default)]
    refund_application_fee: bool,
}

async fn refund(shared: web::Data<Shared>, body: web::Json<RefundBody>) -> HttpResponse {
    let RefundBody {
        payment_intent,
        amount,
        reverse_transfer,
        refund_application_fee,
    } = body.into_inner();
    let request = RefundRequest {
        payment_intent,
        amount,
        reverse_transfer,
        refund_application_fee,
        ..RefundRequest::default()
    };
    let mut state = shared.lock();
    match state.refund(request, &Origin::default()) {
        Ok(id) => HttpResponse::Ok().json(state.refund_view(&id)),
        Err(error) => failure(&error),
    }
}

#[derive(Deserialize)]
struct DisputeBody {
    payment_intent: String,
    #[serde(default)]
    inquiry: bool,
}

async fn dispute(shared: web::Data<Shared>, body: web::Json<DisputeBody>) -> HttpResponse {
    let mut state = shared.lock();
    match state.open_dispute(&body.payment_intent, body.inquiry) {
        Ok(id) => HttpResponse::Ok().json(state.dispute_view(&id)),
        Err(error) => failure(&error),
    }
}

/// The dispute's view after a control ran, or the control's failure.
fn dispute_answer(state: &SimState, id: &str, outcome: Result<(), SimError>) -> HttpResponse {
    if let Err(error) = outcome {
        return failure(&error);
    }
    match state.dispute_view(id) {
        Some(view) => HttpResponse::Ok().json(view),
        None => failure(&SimError::UnknownDispute(id.to_owned())),
    }
}

async fn dispute_view(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    dispute_answer(&shared.lock(), &id, Ok(()))
}

async fn escalate_dispute(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let mut state = shared.lock();
    let outcome = state.escalate_dispute(&id);
    dispute_answer(&state, &id, outcome)
}

#[derive(Deserialize)]
struct CloseBody {
    outcome: DisputeOutcome,
}

async fn close_dispute(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Json<CloseBody>,
) -> HttpResponse {
    let mut state = shared.lock();
    let outcome = state.close_dispute(&id, body.outcome);
    dispute_answer(&state, &id, outcome)
}

async fn events(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().events)
}

async fn redeliver(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let state = shared.lock();
    if state.event(&id).is_none() {
        return failure(&SimError::UnknownEvent(id.into_inner()));
    }
    state.queue_delivery(&id);
    HttpResponse::NoContent().finish()
}

async fn deliveries(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().deliveries)
}

async fn webhook(shared: web::Data<Shared>) -> HttpResponse {
    let state = shared.lock();
    let url = state.webhook_url.as_ref().map(Url::as_str);
    // The secrets themselves are never sent back, only how many there are.
    HttpResponse::Ok().json(json!({
        "url": url,
        "secrets": state.webhook_secrets.len(),
        "dropped": state.drops.dropped.len(),
    }))
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    #[serde(default)]
    secrets: Vec<String>,
}

async fn set_webhook(shared: web::Data<Shared>, body: web::Json<WebhookBody>) -> HttpResponse {
    let WebhookBody { url, secrets } = body.into_inner();
    let Ok(url) = Url::parse(&url) else {
        return bad_request("url is not a valid URL");
    };
    let mut state = shared.lock();
    state.webhook_url = Some(url);
    state.webhook_secrets = secrets;
    HttpResponse::NoContent().finish()
}

async fn clear_webhook(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().webhook_url = None;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Switch {
    on: bool,
}

async fn set_duplicate(shared: web::Data<Shared>, body: web::Json<Switch>) -> HttpResponse {
    shared.lock().duplicate_deliveries = body.on;
    HttpResponse::NoContent().finish()
}

async fn drops(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.lock().drops.view())
}

#[derive(Deserialize)]
struct Drops {
    rate: f64,
    seed: Option<u64>,
}

async fn set_drops(shared: web::Data<Shared>, body: web::Json<Drops>) -> HttpResponse {
    match shared.lock().drops.set(body.rate, body.seed) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => failure(&error),
    }
}

async fn clear_drops(shared: web::Data<Shared>) -> HttpResponse {
    match shared.lock().drops.set(0.0, None) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => failure(&error),
    }
}

#[derive(Deserialize)]
struct Drift {
    /// The configured version when absent.
    api_version: Option<String>,
    #[serde(default)]
    unknown_fields: bool,
}

async fn set_drift(shared: web::Data<Shared>, body: web::Json<Drift>) -> HttpResponse {
    let Drift {
        api_version,
        unknown_fields,
    } = body.into_inner();
    let mut state = shared.lock();
    let api_version = api_version.unwrap_or_else(|| state.api_version.clone());
    state.event_drift = Some(EventDrift {
        api_version,
        unknown_fields,
    });
    HttpResponse::NoContent().finish()
}

async fn clear_drift(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().event_drift = None;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct RetryDelays {
    delays_ms: Vec<u64>,
}

async fn set_retry_delays(shared: web::Data<Shared>, body: web::Json<RetryDelays>) -> HttpResponse {
    shared.lock().retry_delays = body
        .delays_ms
        .iter()
        .copied()
        .map(Duration::from_millis)
        .collect();
    HttpResponse::NoContent().finish()
}

async fn calls(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&shared.lock().calls)
}

async fn clear_calls(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().calls.clear();
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Sign {
    payload: String,
    timestamp: Option<i64>,
}

async fn sign(shared: web::Data<Shared>, body: web::Json<Sign>) -> HttpResponse {
    let secrets = shared.lock().webhook_secrets.clone();
    let timestamp = body.timestamp.unwrap_or_else(|| Utc::now().timestamp());
    let header = signature_header(&body.payload, timestamp, &secrets);
    HttpResponse::Ok().json(json!({ "header": header }))
}
