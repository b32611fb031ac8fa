//! `GET /v1/checkout/sessions/{session_id}`, the success page's call: it re-reads the session from
//! Stripe and runs the webhook's fulfilment, so it converges with the webhook on one token however
//! they race; it mints nothing for an unpaid, unknown or foreign session; it shows the token only
//! to the holder of the receipt key; and it fulfils a paid session on its own when no webhook
//! ever arrives.

use std::time::Duration;

use serde_json::Value;

use crate::errors::assert_envelope;
use crate::helpers::{CANONICAL, TestApp, spawn_app};

/// Waits until the tier's pool holds a token, so fulfilment takes the pool path.
async fn pool_ready(app: &TestApp) {
    let tier = app.tier_id(CANONICAL, "solo").await;
    app.eventually("a token in the pool", Duration::from_secs(20), || async {
        let available: i64 = sqlx::query_scalar(
            "select count(*) from install_token where tier_id = $1::uuid and state = 'available'",
        )
        .bind(&tier)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        (available > 0).then_some(())
    })
    .await;
}

/// `(rows in install_token for the purchase, mint jobs for it)`.
async fn tokens_and_mints(app: &TestApp, purchase: &str) -> (i64, i64) {
    sqlx::query_as(
        "select (select count(*) from install_token where purchase_id = $1::uuid),
                (select count(*) from job where kind = 'mint_for_purchase' and subject = $1)",
    )
    .bind(purchase)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

/// The live tokens of the demo listing in the database, sorted.
async fn live_in_db(app: &TestApp) -> Vec<String> {
    let mut tokens = app
        .tokens_where(&format!(
            "listing_id = (select listing_id from listing where canonical = '{CANONICAL}')
             and state in ('available', 'assigned')"
        ))
        .await;
    tokens.sort();
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_success_page_calls_racing_the_webhook_and_a_duplicate_delivery_give_one_token() {
    // Arrange
    let app = spawn_app().await;
    pool_ready(&app).await;
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let session = TestApp::session_of(&checkout_url);

    // Act: the payment's event is on its way, a second delivery of it too, and twenty success
    // pages ask at the same moment.
    app.stripe.pay(&session).unwrap();
    let event = app
        .stripe
        .events()
        .into_iter()
        .rev()
        .find(|e| e.type_ == "checkout.session.completed")
        .unwrap();
    app.stripe.redeliver(&event.id).unwrap();
    let answers = futures::future::join_all((0..20).map(|_| async {
        let response = app.success_page(&session, Some(&key)).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    }))
    .await;

    // Assert
    app.eventually("both deliveries", Duration::from_secs(20), || async {
        let ok = app
            .stripe
            .deliveries()
            .iter()
            .filter(|d| d.event_id == event.id && d.succeeded())
            .count();
        (ok >= 2).then_some(())
    })
    .await;
    let token = app.token_of(&purchase, &key).await;
    for answer in &answers {
        assert!(
            matches!(answer["status"].as_str(), Some("paid" | "fulfilled")),
            "{answer}"
        );
        if let Some(seen) = answer["token"]["value"].as_str() {
            assert_eq!(seen, token, "every answer shows the one token");
        }
    }
    assert_eq!(
        tokens_and_mints(&app, &purchase).await.0,
        1,
        "one token row"
    );
    let assigned: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where purchase_id = $1::uuid and action = 'token.assigned'",
    )
    .bind(&purchase)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(assigned, 1);
    // Xano holds exactly what the database says is live: nothing minted on the side.
    app.eventually(
        "Xano equal to the database",
        Duration::from_secs(20),
        || async {
            let mut at_xano = app.xano_tokens();
            at_xano.sort();
            (at_xano == live_in_db(&app).await).then_some(())
        },
    )
    .await;
    assert!(app.xano_tokens().contains(&token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_success_page_of_an_unpaid_session_mints_nothing() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let session = TestApp::session_of(&checkout_url);

    // Act + Assert: an open session, then one completed by a bank debit not yet settled.
    for step in ["open", "completed, unpaid"] {
        if step != "open" {
            let delayed = app.stripe.pay_delayed(&session).unwrap();
            assert_eq!(delayed.payment_status.as_str(), "unpaid");
        }
        let response = app.success_page(&session, Some(&key)).await;
        assert_eq!(response.status(), 200, "{step}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "pending", "{step}");
        assert!(body["token"].is_null(), "{step}");
    }
    let delivered = app.stripe.events().last().unwrap().id.clone();
    assert!(
        app.stripe
            .wait_delivered(&delivered, Duration::from_secs(10))
            .await
    );
    assert_eq!(tokens_and_mints(&app, &purchase).await, (0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_malformed_or_foreign_session_id_answers_404_and_mints_nothing() {
    // Arrange: a paid session on the Stripe account that this service did not create.
    let app = spawn_app().await;
    let form = [
        ("mode", "payment"),
        ("success_url", "https://elsewhere.example/done"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "100"),
        ("line_items[0][price_data][product_data][name]", "not ours"),
        ("line_items[0][quantity]", "1"),
    ];
    let foreign: Value = testkit::http::json(
        app.client
            .post(app.stripe.base_url().join("v1/checkout/sessions").unwrap())
            .bearer_auth(app.stripe.api_key())
            .form(&form),
    )
    .await;
    let foreign = foreign["id"].as_str().unwrap().to_owned();
    app.stripe.pay(&foreign).unwrap();
    let unknown = app
        .success_page("cs_test_a1NoSuchSession000000000000", None)
        .await;
    let reference = assert_envelope(unknown, 404, "not_found").await;

    for session in [
        foreign.as_str(),
        "not-a-session",
        "cs_",
        "pi_3NoSuchIntent",
        "cs_test_abc-def",
        "cs_test_%C3%BC",
        &format!("cs_test_{}", "a".repeat(300)),
    ] {
        // Act
        let response = app.success_page(session, None).await;
        // Assert: the same answer as for an unknown id.
        let body = assert_envelope(response, 404, "not_found").await;
        assert_eq!(body, reference, "{session}");
    }
    let written: i64 = sqlx::query_scalar(
        "select (select count(*) from purchase) + (select count(*) from install_token where purchase_id is not null)",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(written, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_success_page_shows_the_token_only_with_the_purchases_receipt_key() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let (_, _, other_key) = app.start_purchase().await;
    let session = TestApp::session_of(&checkout_url);
    app.stripe.pay(&session).unwrap();
    let token = app.token_of(&purchase, &key).await;

    for (who, bearer) in [
        ("nobody", None),
        ("another buyer", Some(other_key.as_str())),
    ] {
        // Act
        let response = app.success_page(&session, bearer).await;
        // Assert
        assert_eq!(response.status(), 200, "{who}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(&token), "{who} sees no token bytes: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["status"], "fulfilled", "{who}");
        assert!(body["token"].is_null(), "{who}");
    }
    let owner: Value = app
        .success_page(&session, Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(owner["token"]["value"], token.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_success_page_alone_fulfils_a_paid_session_when_no_webhook_arrives() {
    // Arrange: the account has no webhook endpoint, so Stripe never calls.
    let app = spawn_app().await;
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let session = TestApp::session_of(&checkout_url);
    app.stripe.clear_webhook();
    app.stripe.pay(&session).unwrap();

    // Act
    let response = app.success_page(&session, Some(&key)).await;

    // Assert
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        matches!(body["status"].as_str(), Some("paid" | "fulfilled")),
        "{body}"
    );
    let token = app.token_of(&purchase, &key).await;
    assert!(app.xano_tokens().contains(&token));
    assert!(
        app.stripe.deliveries().is_empty(),
        "no webhook was delivered"
    );
    let inbox: i64 = sqlx::query_scalar("select count(*) from stripe_event")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(inbox, 0);
    app.stop().await;
}

/// How many times the service asked the Stripe simulator for a Checkout Session.
fn session_reads(app: &TestApp) -> usize {
    app.stripe
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.starts_with("/v1/checkout/sessions/"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_session_whose_purchase_still_waits_for_payment_costs_a_call_to_stripe() {
    // Arrange: one fulfilled purchase, one whose buyer has not paid yet.
    let app = spawn_app().await;
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let paid_session = TestApp::session_of(&checkout_url);
    app.stripe.pay(&paid_session).unwrap();
    app.token_of(&purchase, &key).await;
    let (_, waiting_url, _) = app.start_purchase().await;
    let waiting_session = TestApp::session_of(&waiting_url);
    app.stripe.clear_calls();

    // Act: reloads of a finished purchase's page, and made-up ids.
    for _ in 0..5 {
        let response = app.success_page(&paid_session, Some(&key)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "fulfilled");
        assert!(body["token"]["value"].is_string());
    }
    for i in 0..5 {
        let made_up = format!("cs_test_a1MadeUp{i:020}");
        assert_envelope(app.success_page(&made_up, None).await, 404, "not_found").await;
    }

    // Assert: none of that reached Stripe; the waiting purchase's page does.
    assert_eq!(session_reads(&app), 0);
    let response = app.success_page(&waiting_session, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(session_reads(&app), 1);
    app.stop().await;
}
