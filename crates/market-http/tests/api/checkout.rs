//! `POST /v1/checkout`: an `Idempotency-Key` makes a retried checkout (sequential or concurrent)
//! return the same purchase, checkout URL and receipt key with one Stripe session, and refuses a
//! different request under the same key; the session Stripe receives names the purchase, carries
//! `{CHECKOUT_SESSION_ID}` in its success URL and a purchase-derived Stripe idempotency key; the
//! e-mail is validated before anything is created.

use reqwest::Response;
use serde_json::{Value, json};

use crate::errors::assert_envelope;
use crate::helpers::{CANONICAL, TestApp, spawn_app};

/// Random keys, as the API asks for (at least 32 characters).
const ORDER_KEY: &str = "0b6f3d3e-8d0c-4c55-9a57-0d5e4f2b7a42";
const DOUBLE_CLICK_KEY: &str = "9c1e7a44-2f3b-4d6e-8a1c-5b7d9e0f1a2b";
const OTHER_KEY: &str = "5e2d8c1a-7b4f-4a3e-9d6c-1f0e2b3a4c5d";

async fn checkout_with_key(app: &TestApp, key: &str, body: &Value) -> Response {
    app.checkout_with_header(Some(("idempotency-key", key)), body)
        .await
}

async fn purchases(app: &TestApp) -> i64 {
    app.purchase_count().await
}

fn sessions_of(app: &TestApp, purchase: &str) -> usize {
    app.stripe
        .sessions()
        .iter()
        .filter(|s| s.client_reference_id.as_deref() == Some(purchase))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_twice_returns_the_same_purchase_url_and_receipt_key_with_one_stripe_session()
 {
    // Arrange
    let app = spawn_app().await;
    let body = json!({ "tier_id": app.tier_id(CANONICAL, "solo").await, "email": "a@example.com" });

    // Act
    let first = checkout_with_key(&app, ORDER_KEY, &body).await;
    let second = checkout_with_key(&app, ORDER_KEY, &body).await;

    // Assert
    assert_eq!(first.status(), 201);
    assert!(second.status().is_success(), "{}", second.status());
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        first, second,
        "same purchase_id, checkout_url and receipt_key"
    );
    assert_eq!(purchases(&app).await, 1);
    assert_eq!(sessions_of(&app, first["purchase_id"].as_str().unwrap()), 1);
    let creations = app
        .stripe
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/v1/checkout/sessions")
        .count();
    assert_eq!(creations, 1, "the replay did not go to Stripe");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_checkouts_with_one_idempotency_key_make_one_purchase_and_one_session() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({ "tier_id": app.tier_id(CANONICAL, "solo").await });

    // Act
    let answers = futures::future::join_all((0..8).map(|_| async {
        let response = checkout_with_key(&app, DOUBLE_CLICK_KEY, &body).await;
        assert!(response.status().is_success(), "{}", response.status());
        response.json::<Value>().await.unwrap()
    }))
    .await;

    // Assert
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:#?}");
    assert_eq!(purchases(&app).await, 1);
    assert_eq!(
        sessions_of(&app, answers[0]["purchase_id"].as_str().unwrap()),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_request_under_a_used_idempotency_key_answers_409() {
    // Arrange
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let original = checkout_with_key(
        &app,
        OTHER_KEY,
        &json!({ "tier_id": solo, "email": "a@example.com" }),
    )
    .await;
    assert_eq!(original.status(), 201);

    for other in [
        json!({ "tier_id": agency, "email": "a@example.com" }),
        json!({ "tier_id": solo, "email": "b@example.com" }),
        json!({ "tier_id": solo }),
    ] {
        // Act
        let response = checkout_with_key(&app, OTHER_KEY, &other).await;
        // Assert
        assert_envelope(response, 409, "idempotency_key_reused").await;
    }
    assert_eq!(purchases(&app).await, 1);
    assert_eq!(app.stripe.sessions().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_idempotency_key_answers_400_and_creates_nothing() {
    let app = spawn_app().await;
    let body = json!({ "tier_id": app.tier_id(CANONICAL, "solo").await });
    for key in [
        String::new(),
        "order-1001".to_owned(),
        "k".repeat(31),
        "k".repeat(256),
        "with space".to_owned(),
        "tab\there".to_owned(),
    ] {
        let response = checkout_with_key(&app, &key, &body).await;
        assert_envelope(response, 400, "invalid_request").await;
    }
    assert_eq!(purchases(&app).await, 0);
    assert!(app.stripe.sessions().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_session_names_the_purchase_and_its_success_url_carries_the_session_id_placeholder()
 {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (purchase, checkout_url, _) = app.start_purchase().await;

    // Assert
    let session = app
        .stripe
        .session(&TestApp::session_of(&checkout_url))
        .unwrap();
    assert_eq!(session.url, checkout_url);
    assert_eq!(
        session.client_reference_id.as_deref(),
        Some(purchase.as_str())
    );
    assert_eq!(session.metadata.get("purchase_id"), Some(&purchase));
    assert_eq!(
        session.payment_intent_metadata.get("purchase_id"),
        Some(&purchase)
    );
    let success = session.success_url.unwrap();
    assert!(
        success.starts_with(&format!("{}/", app.address)),
        "{success}"
    );
    assert!(
        success.ends_with("session_id={CHECKOUT_SESSION_ID}"),
        "{success}"
    );
    let created = app
        .stripe
        .calls()
        .into_iter()
        .find(|c| c.method == "POST" && c.path == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(
        created.idempotency_key,
        Some(format!("checkout:{purchase}"))
    );

    // A storefront URL that already places the id keeps exactly one placeholder.
    let own = format!("{}/done?sid={{CHECKOUT_SESSION_ID}}", app.address);
    let tier = app.tier_id(CANONICAL, "solo").await;
    let response = app
        .checkout(&json!({ "tier_id": tier, "success_url": own }))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let session = app
        .stripe
        .session(&TestApp::session_of(body["checkout_url"].as_str().unwrap()))
        .unwrap();
    assert_eq!(session.success_url.as_deref(), Some(own.as_str()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_is_validated_and_a_valid_one_prefills_stripes_form() {
    // Arrange
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let invalid = [
        "not-an-email".to_owned(),
        "a@b".to_owned(),
        "@example.com".to_owned(),
        "a@@example.com".to_owned(),
        "a b@example.com".to_owned(),
        "a@.example.com".to_owned(),
        "a@example.com.".to_owned(),
        String::new(),
        format!("{}@example.com", "a".repeat(250)),
    ];

    for email in &invalid {
        // Act
        let response = app
            .checkout(&json!({ "tier_id": tier, "email": email }))
            .await;
        // Assert
        let body = assert_envelope(response, 400, "invalid_request").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("email"),
            "{email}: {body}"
        );
    }
    assert_eq!(purchases(&app).await, 0);
    assert!(app.stripe.sessions().is_empty());

    let response = app
        .checkout(&json!({ "tier_id": tier, "email": "  Buyer@Example.com " }))
        .await;
    assert_eq!(response.status(), 201);
    let session = app.stripe.sessions().pop().unwrap();
    assert_eq!(session.customer_email.as_deref(), Some("Buyer@Example.com"));
    app.stop().await;
}
