//! What a verified delivery does beyond the inbox: an event of the other Stripe mode (test at a
//! live service, live at a test one) is acknowledged and ignored, and refunds and disputes signed
//! by the Stripe simulator revoke (or, for a partial refund, keep) the buyer's token at Xano.

use std::net::TcpListener;
use std::time::Duration;

use market_core::envelope::DataKeys;
use market_core::receipt::ReceiptSecret;
use market_http::limits::RateLimits;
use market_http::startup::{Application, DbSettings, HttpSettings, Settings, StripeSettings};
use market_http::state::Mode;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::helpers::{DATA_KEY, Options, TestApp, WEBHOOK_SECRET, spawn_app, spawn_app_with};
use crate::webhooks::{last_event, now, paid_but_undelivered, rows, signed};

/// A second instance on the same database, with a live-mode secret key (the service takes its
/// mode from the key's prefix), serving until the returned sender fires.
async fn live_instance(app: &TestApp) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let xano = master_api::Client::builder(SecretString::from(app.xano.access_token()))
        .base_url(app.xano.base_url())
        .build()
        .unwrap();
    let live = Application::build(Settings {
        http: HttpSettings {
            listener,
            public_url: None,
            cors_origins: Vec::new(),
            admins: Vec::new(),
            receipt_secret: ReceiptSecret::random(),
            shutdown_grace: Duration::from_secs(1),
            rate_limits: RateLimits::NONE,
            trusted_proxies: Vec::new(),
        },
        db: DbSettings {
            options: app.db.connect_options(),
            max_connections: 4,
            data_keys: DataKeys::parse(DATA_KEY).unwrap(),
        },
        xano,
        stripe: StripeSettings {
            secret_key: SecretString::from("sk_live_sandbox_0123456789"),
            api_base: app.stripe.base_url(),
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
            platform_fee: market_core::FeeRate::DEFAULT,
        },
        jobs: None,
        mode: Mode::Live,
        metrics: None,
        backfill: None,
        mail: None,
        webhooks: None,
    })
    .await
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(live.run_until(async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_the_other_stripe_mode_is_acknowledged_and_ignored() {
    // Arrange: a test-mode event, and the same event as live mode would send it.
    let app = spawn_app_with(Options {
        run_jobs: false,
        ..Options::default()
    })
    .await;
    let (purchase, _, event) = paid_but_undelivered(&app).await;
    let mut live: Value = serde_json::from_str(&event.payload).unwrap();
    live["livemode"] = Value::Bool(true);
    live["data"]["object"]["livemode"] = Value::Bool(true);
    let live = serde_json::to_string_pretty(&live).unwrap();
    let (live_address, stop_live) = live_instance(&app).await;
    let post = |address: &str, payload: &str| {
        app.client
            .post(format!("{address}/v1/webhooks/stripe"))
            .header("content-type", "application/json")
            .header(
                "stripe-signature",
                signed(payload, now(), &[WEBHOOK_SECRET]),
            )
            .body(payload.to_owned())
            .send()
    };
    let before = rows(&app).await;

    // Act: live event at the test-mode service; test event at the live-mode service.
    let at_test = post(&app.address, &live).await.unwrap();
    let at_live = post(&live_address, &event.payload).await.unwrap();

    // Assert
    for response in [at_test, at_live] {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["outcome"], "ignored_mode_mismatch");
    }
    assert_eq!(rows(&app).await, before);
    // The live instance does process a live event: the check above is about the mode.
    let accepted = post(&live_address, &live).await.unwrap();
    assert_eq!(accepted.status(), 200);
    let status: String =
        sqlx::query_scalar("select status::text from purchase where purchase_id = $1::uuid")
            .bind(&purchase)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_ne!(status, "pending");
    let _ = stop_live.send(());
    app.stop().await;
}

/// A purchase paid through the simulator and fulfilled: `(purchase, receipt_key, pi, token)`.
async fn fulfilled(app: &TestApp) -> (String, String, String, String) {
    let (purchase, checkout_url, receipt_key) = app.start_purchase().await;
    let paid = app.stripe.pay(&TestApp::session_of(&checkout_url)).unwrap();
    let token = app.token_of(&purchase, &receipt_key).await;
    (purchase, receipt_key, paid.payment_intent.unwrap(), token)
}

async fn delivered(app: &TestApp, type_: &str) {
    let event = last_event(app, type_);
    assert!(
        app.stripe
            .wait_delivered(&event.id, Duration::from_secs(10))
            .await,
        "{type_} delivered"
    );
}

async fn revoked_at_xano(app: &TestApp, token: &str) {
    app.eventually(
        "the token deleted at Xano",
        Duration::from_secs(20),
        || async { (!app.xano_tokens().iter().any(|t| t == token)).then_some(()) },
    )
    .await;
}

async fn receipt(app: &TestApp, purchase: &str, key: &str) -> (Value, String) {
    let text = app.purchase(purchase, key).await.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refund_or_a_dispute_signed_by_stripe_revokes_the_token_at_xano() {
    for (event_type, status) in [
        ("charge.refunded", "refunded"),
        ("charge.dispute.created", "disputed"),
    ] {
        // Arrange
        let app = spawn_app().await;
        let (purchase, key, payment_intent, token) = fulfilled(&app).await;

        // Act
        if status == "refunded" {
            assert!(
                app.stripe
                    .refund(&payment_intent, None)
                    .unwrap()
                    .charge_refunded
            );
        } else {
            app.stripe.dispute(&payment_intent).unwrap();
        }
        delivered(&app, event_type).await;

        // Assert
        let (body, text) = receipt(&app, &purchase, &key).await;
        assert_eq!(body["status"], status);
        assert!(!text.contains(&token), "no token bytes: {text}");
        revoked_at_xano(&app, &token).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_refund_keeps_the_token_and_refunding_the_rest_revokes_it() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, key, payment_intent, token) = fulfilled(&app).await;

    // Act: 5.00 of 19.00 back.
    let partial = app.stripe.refund(&payment_intent, Some(500)).unwrap();
    assert!(!partial.charge_refunded);
    delivered(&app, "charge.refunded").await;

    // Assert
    let (body, _) = receipt(&app, &purchase, &key).await;
    assert_eq!(body["status"], "fulfilled");
    assert_eq!(body["token"]["value"], token.as_str());
    assert!(app.xano_tokens().contains(&token));
    let refunded: i64 =
        sqlx::query_scalar("select amount_refunded from purchase where purchase_id = $1::uuid")
            .bind(&purchase)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(refunded, 500);

    // Act: the rest.
    let rest = app.stripe.refund(&payment_intent, None).unwrap();
    assert!(rest.charge_refunded);
    revoked_at_xano(&app, &token).await;
    let (body, _) = receipt(&app, &purchase, &key).await;
    assert_eq!(body["status"], "refunded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inquiry_keeps_the_token_and_a_dispute_the_seller_wins_gives_the_buyer_a_new_one() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, key, payment_intent, token) = fulfilled(&app).await;

    // Act 1: an inquiry (Stripe's `warning_needs_response`), then its escalation to a chargeback.
    let inquiry = app.stripe.dispute_inquiry(&payment_intent).unwrap();
    delivered(&app, "charge.dispute.created").await;
    let (during_inquiry, _) = receipt(&app, &purchase, &key).await;
    app.stripe.escalate_dispute(&inquiry.id).unwrap();
    delivered(&app, "charge.dispute.updated").await;
    revoked_at_xano(&app, &token).await;
    let (escalated, _) = receipt(&app, &purchase, &key).await;

    // Act 2: the seller wins.
    app.stripe
        .close_dispute(&inquiry.id, sandbox::stripe::DisputeOutcome::Won)
        .unwrap();
    delivered(&app, "charge.dispute.closed").await;
    let new_token = app
        .eventually("a new token", Duration::from_secs(20), || async {
            let (body, _) = receipt(&app, &purchase, &key).await;
            let value = body["token"]["value"].as_str().map(str::to_owned);
            value.filter(|v| *v != token && body["token"]["state"] == "assigned")
        })
        .await;

    // Assert
    assert_eq!(during_inquiry["status"], "fulfilled");
    assert_eq!(during_inquiry["token"]["value"], token.as_str());
    assert_eq!(escalated["status"], "disputed");
    let (body, _) = receipt(&app, &purchase, &key).await;
    assert_eq!(body["status"], "reinstated");
    assert!(app.xano_tokens().contains(&new_token), "live at Xano");
    assert!(
        !app.xano_tokens().contains(&token),
        "the old one stays deleted"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_the_seller_loses_stays_revoked() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, key, payment_intent, token) = fulfilled(&app).await;
    let dispute = app.stripe.dispute(&payment_intent).unwrap();
    delivered(&app, "charge.dispute.created").await;

    // Act
    app.stripe
        .close_dispute(&dispute.id, sandbox::stripe::DisputeOutcome::Lost)
        .unwrap();
    delivered(&app, "charge.dispute.closed").await;

    // Assert
    revoked_at_xano(&app, &token).await;
    let (body, text) = receipt(&app, &purchase, &key).await;
    assert_eq!(body["status"], "dispute_lost");
    assert!(!text.contains(&token), "no token bytes: {text}");
    app.stop().await;
}
