//! Stripe's error answers: 401 for a missing or wrong key, 404 for unknown ids and URLs, 400
//! naming the parameter at fault. Checked both raw and as async-stripe reads them.

use reqwest::StatusCode;
use serde_json::Value;
use stripe::StripeError;
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_shared::{ApiErrorsCode, ApiErrorsType};

use crate::helpers::{Harness, checkout_request, client_for};

async fn post_form(h: &Harness, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.url(path))
        .bearer_auth(h.sim.api_key())
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

const VALID: [(&str, &str); 5] = [
    ("mode", "payment"),
    ("line_items[0][price_data][currency]", "usd"),
    ("line_items[0][price_data][unit_amount]", "1200"),
    ("line_items[0][price_data][product_data][name]", "Snippet"),
    ("line_items[0][quantity]", "1"),
];

fn without(key: &str) -> Vec<(&'static str, &'static str)> {
    VALID.iter().copied().filter(|(k, _)| *k != key).collect()
}

fn with(key: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut form = without(key);
    form.push((key, value));
    form
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_key_is_a_401() {
    let h = Harness::start().await;

    let none = h
        .http
        .get(h.url("/v1/checkout/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let wrong_key = "sk_test_wrongwrongwrong1234";
    let wrong = checkout_request()
        .send(&client_for(&h.sim, wrong_key))
        .await
        .unwrap_err();
    let StripeError::Stripe(error, 401) = wrong else {
        panic!("expected a 401, got {wrong:?}");
    };
    let message = error.message.unwrap();
    assert!(message.ends_with("1234"), "{message}");
    assert!(
        !message.contains(wrong_key),
        "only the last four characters are echoed"
    );
    assert!(h.sim.sessions().is_empty());
    assert!(h.sim.calls().iter().all(|call| call.status == 401));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_and_urls_are_404s() {
    let h = Harness::start().await;

    let missing = RetrieveCheckoutSession::new("cs_test_missing")
        .send(&h.client)
        .await
        .unwrap_err();
    let StripeError::Stripe(error, 404) = missing else {
        panic!("expected a 404, got {missing:?}");
    };
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert!(error.message.unwrap().contains("cs_test_missing"));

    let url = h
        .http
        .get(h.url("/v1/customers"))
        .bearer_auth(h.sim.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(url.status(), StatusCode::NOT_FOUND);
    let body: Value = url.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unrecognized request URL")
    );
    let outside = h.http.get(h.url("/nowhere")).send().await.unwrap();
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_parameters_are_400s_naming_the_parameter() {
    let h = Harness::start().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (without("mode"), "mode"),
        (with("mode", "subscription"), "mode"),
        (
            VALID
                .iter()
                .copied()
                .filter(|(k, _)| !k.starts_with("line_items"))
                .collect(),
            "line_items",
        ),
        (
            without("line_items[0][quantity]"),
            "line_items[0][quantity]",
        ),
        (
            with("line_items[0][quantity]", "0"),
            "line_items[0][quantity]",
        ),
        (
            with("line_items[0][quantity]", "two"),
            "line_items[0][quantity]",
        ),
        (
            without("line_items[0][price_data][unit_amount]"),
            "line_items[0][price_data][unit_amount]",
        ),
        (
            with("line_items[0][price_data][currency]", "dollars"),
            "line_items[0][price_data][currency]",
        ),
        (
            without("line_items[0][price_data][product_data][name]"),
            "line_items[0][price_data][product_data]",
        ),
        (
            without("line_items[0][price_data][product_data][name]")
                .into_iter()
                .chain([("line_items[0][price_data][product_data][description]", "x")])
                .collect(),
            "line_items[0][price_data][product_data][name]",
        ),
        (
            with("line_items[0][price]", "price_123"),
            "line_items[0][price]",
        ),
        (with("success_url", "not a url"), "success_url"),
        (with("customer_email", "nobody"), "customer_email"),
        (with("expires_at", "1"), "expires_at"),
    ];
    for (form, param) in cases {
        let (status, body) = post_form(&h, "/v1/checkout/sessions", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{param}");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    assert!(h.sim.sessions().is_empty());

    let (status, body) = post_form(&h, "/v1/checkout/sessions", &with("unknown_thing", "x")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unknown parameters are accepted: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_can_expire_a_session_once() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    let path = format!("/v1/checkout/sessions/{}/expire", session.id);

    let (status, body) = post_form(&h, &path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "expired");
    let (status, _) = post_form(&h, &path, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let deliveries = h.hook.wait_for_type("checkout.session.expired").await;
    let event: Value = serde_json::from_str(&deliveries[0].body).unwrap();
    assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
}
