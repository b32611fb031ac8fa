//! Per-client rate limits on the public endpoints: a burst, then `429 rate_limited` with
//! `Retry-After`, per client IP; forwarded addresses count only from a trusted proxy.

use std::num::NonZeroU32;
use std::time::Duration;

use market_http::limits::{Limit, RateLimits};
use reqwest::Response;
use serde_json::{Value, json};

use crate::errors::assert_envelope;
use crate::helpers::{CANONICAL, Options, TestApp, spawn_app_with};

fn three_checkouts_a_minute() -> RateLimits {
    RateLimits {
        checkout: Some(Limit {
            requests: NonZeroU32::new(3).unwrap(),
            period: Duration::from_secs(60),
        }),
        ..RateLimits::NONE
    }
}

async fn checkout_from(app: &TestApp, client: &str, body: &Value) -> Response {
    app.checkout_with_header(Some(("x-forwarded-for", client)), body)
        .await
}

/// Found from outside (security issue, finding 4): 300 checkouts in a burst from one client were
/// 300 × 201, each a Stripe Checkout Session spending the account's shared rate limit. Before the
/// fix the fourth checkout here was a 201 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_checkout_limit_gets_429_with_retry_after_and_others_behind_the_proxy_do_not()
 {
    // Arrange: the service behind a trusted proxy on loopback, three checkouts a minute per client.
    let app = spawn_app_with(Options {
        rate_limits: three_checkouts_a_minute(),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Options::default()
    })
    .await;
    let body = json!({ "tier_id": app.tier_id(CANONICAL, "solo").await });

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(checkout_from(&app, "198.51.100.1", &body).await.status());
    }
    let over = checkout_from(&app, "198.51.100.1", &body).await;
    let retry_after: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_envelope(over, 429, "rate_limited").await;
    let neighbour = checkout_from(&app, "198.51.100.2", &body).await;

    // Assert
    assert!(statuses.iter().all(|s| s.as_u16() == 201), "{statuses:?}");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(neighbour.status(), 201, "another client is not limited");
    assert_eq!(app.purchase_count().await, 4);
    assert_eq!(
        app.stripe.sessions().len(),
        4,
        "the refused one cost Stripe nothing"
    );
    app.stop().await;
}

/// A client that is not behind a trusted proxy cannot choose its key by sending the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_header_from_an_untrusted_peer_does_not_escape_the_limit() {
    // Arrange: no trusted proxy; the peer itself is the client.
    let app = spawn_app_with(Options {
        rate_limits: three_checkouts_a_minute(),
        ..Options::default()
    })
    .await;
    let body = json!({ "tier_id": app.tier_id(CANONICAL, "solo").await });

    // Act: every request claims to come from somewhere else.
    let mut statuses = Vec::new();
    for n in 0..4 {
        let claimed = format!("203.0.113.{n}");
        statuses.push(checkout_from(&app, &claimed, &body).await.status().as_u16());
    }

    // Assert
    assert_eq!(statuses, [201, 201, 201, 429]);
    app.stop().await;
}
