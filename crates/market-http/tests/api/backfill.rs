//! Stripe's list of events, read when webhooks never came (self-healing finding 4): a refund, a
//! dispute and a payment whose deliveries were all dropped are applied from the list, through the
//! webhook's own path, and one instance at a time reads the list.

use std::time::Duration;

use market_core::payments::events_cursor;
use market_http::backfill::BackfillSettings;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// Every 100 ms, sessions from any age, events from any age.
pub fn eager() -> BackfillSettings {
    BackfillSettings {
        interval: Duration::from_millis(100),
        older_than: Duration::ZERO,
        events_overlap: Duration::from_secs(600),
        events_grace: Duration::ZERO,
        first_lookback: Duration::from_secs(3600),
    }
}

async fn status(app: &TestApp, purchase: &str, key: &str) -> Value {
    app.purchase(purchase, key).await.json().await.unwrap()
}

async fn until_status(app: &TestApp, purchase: &str, key: &str, wanted: &str) -> Value {
    app.eventually(wanted, Duration::from_secs(20), || async {
        let body = status(app, purchase, key).await;
        (body["status"] == wanted).then_some(body)
    })
    .await
}

async fn events_applied(app: &TestApp) -> i64 {
    events_cursor::get(app.db.pool())
        .await
        .unwrap()
        .events_applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_and_a_payment_whose_webhooks_were_all_dropped_are_applied_from_stripes_list() {
    // Arrange: one purchase paid and fulfilled normally; then every delivery is dropped. Sessions
    // are not read (a day's wait), so only Stripe's list of events can help.
    let app = spawn_app_with(Options {
        backfill: Some(BackfillSettings {
            older_than: Duration::from_secs(24 * 3600),
            ..eager()
        }),
        ..Options::default()
    })
    .await;
    let (refunded, refunded_url, refunded_key) = app.start_purchase().await;
    let paid = app.stripe.pay(&TestApp::session_of(&refunded_url)).unwrap();
    let token = app.token_of(&refunded, &refunded_key).await;
    app.stripe.set_drop_deliveries(1.0).unwrap();
    let (second, second_url, second_key) = app.start_purchase().await;

    // Act: a refund of the first and a payment of the second, neither delivered.
    app.stripe
        .refund(paid.payment_intent.as_deref().unwrap(), None)
        .unwrap();
    app.stripe.pay(&TestApp::session_of(&second_url)).unwrap();

    // Assert: both applied, the refunded token deleted at Xano, the payment fulfilled.
    until_status(&app, &refunded, &refunded_key, "refunded").await;
    app.eventually(
        "the refunded token deleted at Xano",
        Duration::from_secs(20),
        || async { (!app.xano_tokens().contains(&token)).then_some(()) },
    )
    .await;
    let fulfilled = until_status(&app, &second, &second_key, "fulfilled").await;
    assert!(fulfilled["token"]["value"].is_string());
    let dropped = app.stripe.dropped_deliveries();
    assert!(
        dropped.len() >= 2,
        "the deliveries were dropped: {dropped:?}"
    );
    let applied: Vec<String> = sqlx::query_scalar(
        "select distinct e.type from stripe_event e where e.stripe_event_id = any($1) order by 1",
    )
    .bind(&dropped)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    // The refund, the payment, and the payment's charge.
    assert_eq!(
        applied,
        [
            "charge.refunded",
            "charge.succeeded",
            "checkout.session.completed"
        ]
    );
    // Rounds go on; nothing is applied twice.
    let counted = events_applied(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events_applied(&app).await, counted);
    // The three dropped ones at least; with no grace here, a round may also have beaten the
    // first payment's own webhook to one of its events (the webhook then found it applied).
    assert!(
        (3..=5).contains(&counted),
        "the refund, the payment and its charge, each once: {counted}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_won_while_webhooks_were_down_reinstates_the_buyer_from_stripes_list() {
    // Arrange
    let app = spawn_app_with(Options {
        backfill: Some(eager()),
        ..Options::default()
    })
    .await;
    let (purchase, url, key) = app.start_purchase().await;
    let paid = app.stripe.pay(&TestApp::session_of(&url)).unwrap();
    let token = app.token_of(&purchase, &key).await;
    app.stripe.set_drop_deliveries(1.0).unwrap();

    // Act: a chargeback, then the seller wins it; no webhook delivered.
    let dispute = app
        .stripe
        .dispute(paid.payment_intent.as_deref().unwrap())
        .unwrap();
    until_status(&app, &purchase, &key, "disputed").await;
    app.stripe
        .close_dispute(&dispute.id, sandbox::stripe::DisputeOutcome::Won)
        .unwrap();

    // Assert
    let body = app
        .eventually("a new token", Duration::from_secs(20), || async {
            let body = status(&app, &purchase, &key).await;
            let fresh =
                body["token"]["state"] == "assigned" && body["token"]["value"] != token.as_str();
            (body["status"] == "reinstated" && fresh).then_some(body)
        })
        .await;
    let new_token = body["token"]["value"].as_str().unwrap().to_owned();
    assert!(app.xano_tokens().contains(&new_token));
    assert!(!app.xano_tokens().contains(&token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_at_a_time_holds_the_events_cursor_and_it_moves_only_forward() {
    // Arrange
    let app = spawn_app_with(Options::default()).await;
    let pool = app.db.pool();
    let first = Uuid::new_v4();
    let held = events_cursor::claim(pool, first, Duration::from_secs(60))
        .await
        .unwrap();

    // Act
    let second = events_cursor::claim(pool, Uuid::new_v4(), Duration::from_secs(60))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    events_cursor::finish(pool, held.as_ref().unwrap(), Some(now), 3, None)
        .await
        .unwrap();
    let third = events_cursor::claim(pool, Uuid::new_v4(), Duration::from_secs(60))
        .await
        .unwrap();
    let earlier = now - chrono::Duration::hours(1);
    events_cursor::finish(
        pool,
        third.as_ref().unwrap(),
        Some(earlier),
        0,
        Some("Stripe answered 500"),
    )
    .await
    .unwrap();

    // Assert
    assert!(
        held.is_some_and(|l| l.created_through.is_none()),
        "the first round has no cursor"
    );
    assert!(
        second.is_none(),
        "another instance skips while the lease is held"
    );
    assert!(third.is_some_and(|l| l.created_through.is_some()));
    let cursor = events_cursor::get(pool).await.unwrap();
    assert_eq!(
        cursor.created_through.map(|c| c.timestamp()),
        Some(now.timestamp()),
        "never back"
    );
    assert_eq!(cursor.events_applied, 3);
    assert_eq!(cursor.last_error.as_deref(), Some("Stripe answered 500"));
    app.stop().await;
}
