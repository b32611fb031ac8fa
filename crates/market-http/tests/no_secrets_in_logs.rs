//! Nothing secret reaches a log line. One scenario exercises every path that handles a secret —
//! checkouts, payments through the Stripe simulator, webhooks (valid, replayed, badly signed),
//! success pages with and without the receipt key, receipts, the admin API, a refund through
//! Stripe, a revoke, reconciliation, Xano faults (429, 500, a dropped connection), and outgoing
//! webhooks carrying buyers' tokens under a rolled secret — with a
//! process-wide `tracing` capture at TRACE; then the capture must hold no Xano access token, Stripe
//! secret key, webhook secret (Stripe's or an endpoint's), admin token, data key, receipt key or
//! install token ever minted.
//!
//! Its own test binary, because the capture is the process's global subscriber.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/sealed.rs"]
mod sealed;

use std::collections::BTreeSet;
use std::time::Duration;

use helpers::{ADMIN_TOKEN, CANONICAL, DATA_KEY, Options, TestApp, WEBHOOK_SECRET, spawn_app_with};
use market_core::courier::{CourierConfig, Guard};
use market_core::deliverer::DelivererConfig;
use market_http::startup::WebhookSettings;
use sandbox::stripe::signature_header;
use sandbox::xano::{Endpoint, Fault, SimInstance};
use serde_json::{Value, json};
use testkit::LogCapture;
use testkit::receiver::WebhookReceiver;

const WAIT: Duration = Duration::from_secs(30);

/// A paid purchase: `(purchase_id, session_id, receipt_key)`; the token is waited for.
async fn paid(app: &TestApp) -> (String, String, String) {
    let (purchase, checkout_url, key) = app.start_purchase().await;
    let session = TestApp::session_of(&checkout_url);
    app.stripe.pay(&session).unwrap();
    // The success page races the webhook, as a buyer's browser does.
    assert_eq!(app.success_page(&session, Some(&key)).await.status(), 200);
    app.token_of(&purchase, &key).await;
    (purchase, session, key)
}

async fn gone_at_xano(app: &TestApp, purchase: &str) {
    app.eventually("the token deleted at Xano", WAIT, || async {
        let state: String = sqlx::query_scalar(
            "select state::text from install_token where purchase_id = $1::uuid",
        )
        .bind(purchase)
        .fetch_one(app.db.pool())
        .await
        .ok()?;
        (state == "revoked").then_some(())
    })
    .await;
}

/// Every install token value that ever existed: recorded by the service, live at the simulator,
/// or named in a call to it (deleted ones).
async fn every_token(app: &TestApp) -> BTreeSet<String> {
    let mut tokens: BTreeSet<String> = app.tokens_where("true").await.into_iter().collect();
    for canonical in [CANONICAL, "stripe-billing_02"] {
        tokens.extend(app.xano.tokens(canonical).into_iter().map(|t| t.token));
    }
    for call in app.xano.calls() {
        if matches!(
            call.endpoint,
            Some(Endpoint::DeleteToken | Endpoint::UpdateToken)
        ) {
            tokens.extend(call.path.rsplit('/').next().map(str::to_owned));
        }
    }
    tokens
}

/// Buyers: two paid purchases (`a`, `b`), two pending; success pages with and without the key;
/// receipts with the right and a wrong key. Returns `(a, session of a, b, every receipt key)`.
async fn buyers(app: &TestApp) -> (String, String, String, Vec<String>) {
    let (a, session_a, key_a) = paid(app).await;
    let (b, _, key_b) = paid(app).await;
    let (pending, _, key_pending) = app.start_purchase().await;
    assert_eq!(app.success_page(&session_a, None).await.status(), 200);
    assert_eq!(app.purchase(&a, &key_a).await.status(), 200);
    assert_eq!(app.purchase(&pending, &key_pending).await.status(), 200);
    assert_eq!(app.purchase(&a, &key_b).await.status(), 404);
    let agency = app.tier_id(CANONICAL, "agency").await;
    let body = json!({ "tier_id": agency, "email": "buyer@example.com" });
    let with_email: Value = app.checkout(&body).await.json().await.unwrap();
    let key_email = with_email["receipt_key"].as_str().unwrap().to_owned();
    (a, session_a, b, vec![key_a, key_b, key_pending, key_email])
}

/// Stripe's delivery of `session`'s `checkout.session.completed` replayed, then forged ones.
async fn deliveries(app: &TestApp, session: &str) {
    let completed = app
        .stripe
        .events()
        .into_iter()
        .find(|e| e.type_ == "checkout.session.completed" && e.payload.contains(session))
        .unwrap();
    let payload = completed.payload.as_str();
    let now = chrono::Utc::now().timestamp();
    let signature = app.stripe.sign(payload, now);
    for _ in 0..3 {
        assert_eq!(app.webhook(payload, Some(&signature)).await.status(), 200);
    }
    let tampered = payload.replacen("complete", "c0mplete", 1);
    let wrong_secret = signature_header(payload, now, &["whsec_not_ours_0000".to_owned()]);
    let stale = app.stripe.sign(payload, now - 301);
    for (body, header) in [
        (tampered.as_str(), Some(signature.as_str())),
        (payload, Some(wrong_secret.as_str())),
        (payload, Some(stale.as_str())),
        (payload, Some("t=1,v1=zz-not-hex")),
        (payload, None),
    ] {
        assert_eq!(app.webhook(body, header).await.status(), 400);
    }
}

/// Operators read everything (one purchase with its token), one with a wrong admin token.
async fn operators_read(app: &TestApp, purchase: &str) {
    app.xano.add_instance(SimInstance {
        name: "x1234-5678-9012".into(),
        display: "Production".into(),
        xano_domain: "x1234-5678-9012.n7.xano.io".into(),
        custom_domain: None,
        rate_limit: false,
    });
    let one = format!("/v1/admin/purchases/{purchase}");
    for path in [
        "/v1/admin/listings",
        "/v1/admin/purchases",
        "/v1/admin/purchases?email=buyer%40example.com",
        &one,
        "/v1/admin/pools",
        "/v1/admin/jobs",
        "/v1/admin/health",
        "/v1/admin/snippets",
        "/v1/admin/instances",
        "/v1/admin/instances/x1234-5678-9012",
        "/readyz",
    ] {
        assert!(app.admin_get(path).await.status().is_success(), "{path}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.metrics_address));
    assert!(metrics.send().await.unwrap().status().is_success());
    let wrong = app.client.get(app.url("/v1/admin/jobs"));
    let wrong = wrong.bearer_auth("adm_wrong_0123456789abcdef").send().await;
    assert_eq!(wrong.unwrap().status(), 401);
}

/// Operators change things while Xano fails now and then: a new tier whose first mint gets a 500
/// (outcome unknown: reconciled, then retried), a refund through Stripe, a revoke whose DELETE
/// loses its connection, and a reconciliation that meets a 429.
async fn operators_change(app: &TestApp, refunded: &str, revoked: &str) {
    let fault = |status, only| Fault::ServerError {
        count: 1,
        status,
        only: Some(only),
    };
    app.xano.inject(fault(503, Endpoint::Snippets));
    assert_eq!(app.admin_get("/v1/admin/snippets").await.status(), 200);
    app.xano.inject(fault(500, Endpoint::CreateToken));
    let team = json!({ "name": "Team", "price": { "amount": 4900, "currency": "usd" },
                       "max_installs": 15, "pool_low_water": 1, "pool_target": 2 });
    let path = format!("/v1/admin/listings/{CANONICAL}/tiers/team");
    assert_eq!(app.admin_put(&path, &team).await.status(), 200);

    let refund = format!("/v1/admin/purchases/{refunded}/refund");
    assert_eq!(app.admin_post(&refund).await.status(), 202);
    gone_at_xano(app, refunded).await;
    app.xano.inject(Fault::DropConnection {
        count: 1,
        only: Some(Endpoint::DeleteToken),
    });
    let revoke = format!("/v1/admin/purchases/{revoked}/revoke");
    assert_eq!(app.admin_post(&revoke).await.status(), 200);
    gone_at_xano(app, revoked).await;

    let limited = Fault::RateLimited {
        count: 1,
        retry_after: None,
        only: Some(Endpoint::Tokens),
    };
    app.xano.inject(limited);
    assert_eq!(app.admin_post("/v1/admin/reconcile").await.status(), 200);
    app.eventually("every fault used and the team pool full", WAIT, || async {
        let tokens = app.xano.tokens(CANONICAL);
        let team_tokens = tokens.iter().filter(|t| t.max_installs == 15).count();
        (app.xano.faults().is_empty() && team_tokens == 2).then_some(())
    })
    .await;
    let calls = app.xano.calls();
    for status in [429, 500, 503] {
        assert!(
            calls.iter().any(|c| c.status == status),
            "no {status} at Xano"
        );
    }
}

/// A platform webhook endpoint at `receiver` that receives buyers' tokens, its secret rolled once
/// (the overlap keeps both signing): the two secrets.
async fn webhook_endpoint(app: &TestApp, receiver: &mut WebhookReceiver) -> [String; 2] {
    let created: Value = app
        .client
        .post(app.url("/v1/admin/webhooks"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "url": receiver.url(), "include_token": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = created["endpoint"]["endpoint_id"].as_str().unwrap();
    let rolled: Value = app
        .admin_post(&format!("/v1/admin/webhooks/{endpoint}/secret/roll"))
        .await
        .json()
        .await
        .unwrap();
    let secrets = [
        created["secret"].as_str().unwrap().to_owned(),
        rolled["secret"].as_str().unwrap().to_owned(),
    ];
    receiver.set_secrets(&[&secrets[1]]);
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_suite_like_scenario_at_trace_level_logs_no_secret() {
    // Arrange
    let capture = LogCapture::install();
    let mut receiver = WebhookReceiver::start().await;
    let app = spawn_app_with(Options {
        webhooks: Some(WebhookSettings {
            courier: CourierConfig {
                guard: Guard::allowing(true, vec!["127.0.0.0/8".parse().unwrap()]),
                ..CourierConfig::default()
            },
            deliverer: Some(DelivererConfig {
                poll_interval: Duration::from_millis(50),
                ..DelivererConfig::default()
            }),
        }),
        ..Options::default()
    })
    .await;
    let webhook_secrets = webhook_endpoint(&app, &mut receiver).await;

    // Act
    let (a, session_a, b, receipt_keys) = buyers(&app).await;
    deliveries(&app, &session_a).await;
    operators_read(&app, &a).await;
    operators_change(&app, &a, &b).await;
    let (xano_token, stripe_key) = (app.xano.access_token(), app.stripe.api_key());
    let tokens = every_token(&app).await;
    // Webhooks carried buyers' tokens to the receiver, signed with both secrets.
    let delivered = receiver
        .wait_until(WAIT, |a| {
            a.iter().any(|r| {
                r.body
                    .as_ref()
                    .is_some_and(|b| b["data"]["token"].is_string())
            })
        })
        .await;
    assert!(delivered.iter().all(|r| r.signatures == 2));
    app.stop().await;

    // Assert: the capture saw the scenario, down to TRACE, and none of its secrets.
    let contents = capture.contents();
    assert!(
        contents.contains("/v1/checkout") && contents.contains("TRACE"),
        "the capture works"
    );
    capture.assert_absent("the Xano access token", &xano_token);
    capture.assert_absent("the Stripe secret key", &stripe_key);
    capture.assert_absent("the webhook secret", WEBHOOK_SECRET);
    for (i, secret) in webhook_secrets.iter().enumerate() {
        capture.assert_absent(&format!("outgoing webhook secret #{i}"), secret);
    }
    capture.assert_absent("the admin token", ADMIN_TOKEN);
    capture.assert_absent("the data key", DATA_KEY.split_once(':').unwrap().1);
    for (i, key) in receipt_keys.iter().enumerate() {
        capture.assert_absent(&format!("receipt key #{i}"), key);
    }
    assert!(tokens.len() >= 10, "tokens were minted and collected");
    for (i, token) in tokens.iter().enumerate() {
        capture.assert_absent(&format!("install token #{i}"), token);
    }
}
