//! The Stripe simulator must never put its API key or a webhook signing secret into `tracing`
//! output. This binary (its own process, so it can own the global subscriber) captures
//! everything at TRACE, `log` records included, over a run that touches every endpoint, the
//! hosted pages (checkout, Connect onboarding and dashboard), deliveries, retries, errors and the
//! control API, then searches it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[allow(
    dead_code,
    reason = "shared with the main Stripe test binary, which uses all of it"
)]
mod connect_helpers;
#[allow(
    dead_code,
    reason = "shared with the main Stripe test binary, which uses all of it"
)]
mod helpers;

use serde_json::json;
use stripe_core::refund::CreateRefund;
use testkit::LogCapture;

use helpers::{Harness, NEW_SECRET, OLD_SECRET, checkout_request, client_for};

#[tokio::test(flavor = "multi_thread")]
async fn no_key_or_signing_secret_reaches_tracing_or_debug_output() {
    let capture = LogCapture::install();
    let h = Harness::start().await;
    let key = h.sim.api_key();
    h.hook.answer_next(&[500]);

    let session = h.create_session_with_key("purchase:secret-test").await;
    h.press_pay(&session).await;
    h.hook.wait_for(2).await;
    let pi = h.payment_intent(&session);
    CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(100)
        .send(&h.client)
        .await
        .unwrap();
    h.sim.dispute(&pi).unwrap();
    let delayed = h.create_session().await;
    h.sim.pay_delayed(delayed.id.as_str()).unwrap();
    h.sim.settle(delayed.id.as_str(), false).unwrap();
    let _ = checkout_request()
        .send(&client_for(&h.sim, "sk_test_wrong_key_0000"))
        .await;
    let seller = h.create_account("seller@shop.example").await;
    let link = h.onboarding_link(seller.id.as_str()).await;
    h.http.get(&link.url).send().await.unwrap();
    h.http.post(&link.url).send().await.unwrap();
    h.form_post(
        &format!("/v1/accounts/{}/login_links", seller.id),
        None,
        &[],
    )
    .await;
    h.http
        .get(h.url(&format!("/connect/express/{}", seller.id)))
        .send()
        .await
        .unwrap();
    let destination = h.destination_session(seller.id.as_str(), Some(100)).await;
    h.press_pay(&destination.unwrap()).await;
    let transfer = h.sim.ledger().last().unwrap().transfer.clone().unwrap();
    h.form_post(
        &format!("/v1/transfers/{}/reversals", transfer.id),
        Some("reverse:secret-test"),
        &[("amount", "100")],
    )
    .await;
    h.sim
        .set_account_enabled(seller.id.as_str(), false)
        .unwrap();
    for path in [
        "/webhook",
        "/events",
        "/deliveries",
        "/calls",
        "/accounts",
        "/ledger",
    ] {
        h.http.get(h.control(path)).send().await.unwrap();
    }
    h.http
        .post(h.control("/sign"))
        .json(&json!({ "payload": "{}" }))
        .send()
        .await
        .unwrap();
    h.hook.wait_for(6).await;
    let config = sandbox::stripe::StripeSimConfig {
        webhook_secrets: vec![OLD_SECRET.to_owned()],
        ..sandbox::stripe::StripeSimConfig::default()
    };
    let debug = format!("{config:?} {:?}", h.sim);

    let output = capture.contents();
    assert!(output.contains("stripe sim answered"), "the capture works");
    assert!(output.contains("stripe sim webhook attempt"));
    for secret in [
        key.as_str(),
        OLD_SECRET,
        NEW_SECRET,
        config.api_key.as_str(),
    ] {
        capture.assert_absent("a secret", secret);
        assert!(!debug.contains(secret), "a secret reached Debug output");
    }
}
