//! `Idempotency-Key`: the same key and parameters replay the first answer; the same key with
//! other parameters is an `idempotency_error`; a failed validation saves nothing.

use reqwest::StatusCode;
use serde_json::Value;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_shared::ApiErrorsType;

use crate::helpers::{Harness, checkout_request};

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_and_parameters_replay_the_first_answer() {
    let h = Harness::start().await;

    let first = h.create_session_with_key("purchase:1").await;
    let second = h.create_session_with_key("purchase:1").await;

    assert_eq!(first.id, second.id);
    assert_eq!(h.sim.sessions().len(), 1);
    let calls = h.sim.calls();
    assert!(!calls[0].replayed);
    assert!(calls[1].replayed);

    let form = [
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "500"),
        ("line_items[0][price_data][product_data][name]", "Snippet"),
        ("line_items[0][quantity]", "1"),
    ];
    let send = || {
        h.http
            .post(h.url("/v1/checkout/sessions"))
            .bearer_auth(h.sim.api_key())
            .header("Idempotency-Key", "raw:1")
            .form(&form)
            .send()
    };
    let original = send().await.unwrap();
    assert!(original.headers().get("idempotent-replayed").is_none());
    let original_request = original.headers()["request-id"].clone();
    let original_body = original.text().await.unwrap();
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["original-request"], original_request);
    assert_eq!(replay.text().await.unwrap(), original_body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_other_parameters_is_refused() {
    let h = Harness::start().await;
    h.create_session_with_key("purchase:2").await;

    let other = checkout_request()
        .client_reference_id("someone_else")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(
            IdempotencyKey::new("purchase:2").unwrap(),
        ))
        .send(&h.client)
        .await
        .unwrap_err();

    let StripeError::Stripe(error, 400) = other else {
        panic!("expected a 400, got {other:?}");
    };
    assert_eq!(error.type_, ApiErrorsType::IdempotencyError);
    assert!(error.message.unwrap().contains("purchase:2"));
    assert_eq!(h.sim.sessions().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_failed_validation_can_be_retried_with_its_key() {
    let h = Harness::start().await;
    let send = |form: &'static [(&'static str, &'static str)]| {
        h.http
            .post(h.url("/v1/checkout/sessions"))
            .bearer_auth(h.sim.api_key())
            .header("Idempotency-Key", "fix-me")
            .form(form)
            .send()
    };
    let broken = send(&[("mode", "payment")]).await.unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);

    let fixed = send(&[
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][price_data][unit_amount]", "900"),
        ("line_items[0][price_data][product_data][name]", "Snippet"),
        ("line_items[0][quantity]", "2"),
    ])
    .await
    .unwrap();
    assert_eq!(fixed.status(), StatusCode::OK);
    let body: Value = fixed.json().await.unwrap();
    assert_eq!(body["amount_total"], 1800);
    assert_eq!(body["currency"], "eur");
}
