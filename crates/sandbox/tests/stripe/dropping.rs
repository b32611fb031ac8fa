//! Deliveries dropped on purpose: the events exist and are listed as undelivered, but nothing is
//! POSTed, as when Stripe loses deliveries in an outage; a seeded share drops the same events on
//! every run.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Harness, NEW_SECRET, verify};

async fn undelivered(h: &Harness) -> Vec<Value> {
    let response = h
        .http
        .get(h.url("/v1/events?delivery_success=false&limit=100"))
        .bearer_auth(h.sim.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    list["data"].as_array().unwrap().clone()
}

/// Refunds a cent of `pi` `count` times; returns the events' ids, oldest first.
fn refund_cents(h: &Harness, pi: &str, count: usize) -> Vec<String> {
    let before = h.sim.events().len();
    for _ in 0..count {
        h.sim.refund(pi, Some(1)).unwrap();
    }
    h.sim.events()[before..]
        .iter()
        .map(|event| event.id.clone())
        .collect()
}

/// Which of `events` were dropped, by position.
fn pattern(h: &Harness, events: &[String]) -> Vec<bool> {
    let dropped = h.sim.dropped_deliveries();
    events.iter().map(|id| dropped.contains(id)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_delivery_dropped_nothing_arrives_but_the_events_are_listed_undelivered() {
    let h = Harness::start().await;
    h.sim.set_drop_deliveries(1.0).unwrap();
    let pi = h.paid_intent().await;
    h.sim.refund(&pi, Some(100)).unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;

    assert!(h.hook.received().is_empty());
    assert!(h.sim.deliveries().is_empty(), "never attempted");
    let events: Vec<String> = h.sim.events().into_iter().map(|e| e.id).collect();
    assert_eq!(h.sim.dropped_deliveries(), events);
    let listed = undelivered(&h).await;
    assert_eq!(
        listed.len(),
        3,
        "completed, charge.succeeded, charge.refunded"
    );
    assert!(listed.iter().all(|event| event["pending_webhooks"] == 1));

    h.sim.redeliver(&events[0]).unwrap();

    let arrived = h.hook.wait_for(1).await;
    assert_eq!(verify(&arrived[0], NEW_SECRET).id.as_str(), events[0]);
    assert!(
        h.sim
            .wait_delivered(&events[0], Duration::from_secs(5))
            .await
    );
    let listed = undelivered(&h).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], events[2].as_str(), "newest first");
    assert_eq!(listed[1]["id"], events[1].as_str());
    h.sim.set_drop_deliveries(0.0).unwrap();
    let more = refund_cents(&h, &pi, 1);
    assert!(h.sim.wait_delivered(&more[0], Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seeded_share_is_dropped_and_the_same_seed_drops_the_same_events() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;
    // The payment's two events (completed, charge.succeeded).
    h.hook.wait_for(2).await;

    h.sim.set_drop_deliveries_seeded(0.25, 7).unwrap();
    let first = refund_cents(&h, &pi, 80);
    let dropped = pattern(&h, &first).iter().filter(|d| **d).count();
    assert!((8..=32).contains(&dropped), "{dropped} of 80 dropped");
    h.hook.wait_for(2 + 80 - dropped).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.hook.received().len(), 2 + 80 - dropped, "never retried");
    let listed: Vec<String> = undelivered(&h)
        .await
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    let mut dropped_ids = h.sim.dropped_deliveries();
    dropped_ids.reverse();
    assert_eq!(
        listed, dropped_ids,
        "exactly the dropped ones, newest first"
    );

    // The same seed over HTTP: the same positions again.
    let set = h
        .control_post("/drop-deliveries", &json!({ "rate": 0.25, "seed": 7 }))
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let second = refund_cents(&h, &pi, 80);
    assert_eq!(pattern(&h, &first), pattern(&h, &second));
    h.sim.set_drop_deliveries_seeded(0.25, 8).unwrap();
    let third = refund_cents(&h, &pi, 80);
    assert_ne!(pattern(&h, &first), pattern(&h, &third));

    let view: Value = h.control_get("/drop-deliveries").await;
    assert_eq!(
        (view["rate"].as_f64(), view["seed"].as_u64()),
        (Some(0.25), Some(8))
    );
    assert_eq!(
        view["dropped"].as_array().unwrap().len(),
        h.sim.dropped_deliveries().len()
    );
    let webhook: Value = h.control_get("/webhook").await;
    assert_eq!(
        webhook["dropped"],
        view["dropped"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drop_control_refuses_a_rate_outside_zero_to_one_and_can_be_switched_off() {
    let h = Harness::start().await;

    assert!(h.sim.set_drop_deliveries(1.5).is_err());
    let bad = h
        .control_post("/drop-deliveries", &json!({ "rate": -0.1 }))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_drop_rate");
    h.control_post("/drop-deliveries", &json!({ "rate": 1.0 }))
        .await;
    let off = h
        .http
        .delete(h.control("/drop-deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NO_CONTENT);

    h.paid_intent().await;

    let first = h.sim.events()[0].id.clone();
    assert!(h.sim.wait_delivered(&first, Duration::from_secs(5)).await);
    assert!(h.sim.dropped_deliveries().is_empty());
}
