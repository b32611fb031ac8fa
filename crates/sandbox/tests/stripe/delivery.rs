//! How events travel: in the background, retried after failures, re-sent on request, signed with
//! the secrets configured at the time, and (when asked) twice and out of order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sandbox::stripe::{SimError, signature_header};
use serde_json::Value;

use crate::helpers::{Harness, NEW_SECRET, OLD_SECRET, verify};

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_retried_until_it_succeeds() {
    let h = Harness::start().await;
    h.hook.answer_next(&[500, 503]);
    let session = h.create_session().await;

    // Expiring sends exactly one event (paying sends two).
    h.sim.expire(session.id.as_str()).unwrap();

    let received = h.hook.wait_for(3).await;
    assert!(received.iter().all(|r| r.body == received[0].body));
    for delivery in &received {
        verify(delivery, NEW_SECRET);
    }
    // The retry schedule is 100 ms then 200 ms.
    assert!(received[1].at - received[0].at >= Duration::from_millis(90));
    assert!(received[2].at - received[1].at >= Duration::from_millis(190));
    let event_id = h.sim.events()[0].id.clone();
    assert!(
        h.sim
            .wait_delivered(&event_id, Duration::from_secs(5))
            .await
    );
    let attempts = h.sim.deliveries();
    let summary: Vec<(u32, Option<u16>)> = attempts.iter().map(|d| (d.attempt, d.status)).collect();
    assert_eq!(summary, [(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    assert!(attempts.iter().all(|d| d.delivery == attempts[0].delivery));
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_errors_are_retried_then_given_up() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let h = Harness::with(|config| config.webhook_url = Some(url.parse().unwrap())).await;
    let session = h.create_session().await;

    h.sim.pay(session.id.as_str()).unwrap();

    // Two events (completed, charge.succeeded), each tried once and retried twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.sim.deliveries().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let attempts = h.sim.deliveries();
    assert_eq!(
        attempts.len(),
        6,
        "one try and two retries each: {attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .all(|d| d.status.is_none() && d.error.is_some())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_never_holds_up_the_call_that_caused_it() {
    let h = Harness::start().await;
    h.hook.set_delay(Duration::from_secs(2));
    let session = h.create_session().await;

    let started = Instant::now();
    let paid = h.press_pay(&session).await;
    let pi = h.payment_intent(&session);
    h.sim.refund(&pi, None).unwrap();

    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let events = h.sim.events();
    assert_eq!(
        events.len(),
        3,
        "completed, charge.succeeded, charge.refunded"
    );
    assert!(
        h.sim
            .wait_delivered(&events[2].id, Duration::from_secs(10))
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_duplicates_on_every_event_arrives_twice_and_out_of_order() {
    let h = Harness::with(|config| config.duplicate_deliveries = true).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(h.create_session().await);
    }

    for session in &sessions {
        h.sim.pay(session.id.as_str()).unwrap();
    }

    // Three payments, two events each, each delivered twice.
    let received = h.hook.wait_for(12).await;
    let emitted: Vec<String> = h.sim.events().into_iter().map(|e| e.id).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for delivery in &received {
        let id = delivery.event_id();
        verify(delivery, OLD_SECRET);
        if !counts.contains_key(&id) {
            first_seen.push(id.clone());
        }
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|count| *count == 2), "{counts:?}");
    assert_eq!(counts.len(), 6);
    assert_ne!(first_seen, emitted, "neighbours overtake each other");

    h.sim.set_duplicate_deliveries(false);
    let another = h.create_session().await;
    h.sim.pay(another.id.as_str()).unwrap();
    h.hook.wait_for(14).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.hook.received().len(), 14, "once again when switched off");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_can_be_delivered_again() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    h.sim.expire(session.id.as_str()).unwrap();
    let first = h.hook.wait_for(1).await.remove(0);

    h.sim.redeliver(&first.event_id()).unwrap();

    let again = h.hook.wait_for(2).await.remove(1);
    assert_eq!(again.body, first.body);
    verify(&again, NEW_SECRET);
    // The receiver has the body before the simulator records the answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.sim.deliveries().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deliveries = h.sim.deliveries();
    assert_ne!(deliveries[0].delivery, deliveries[1].delivery);
    assert!(matches!(
        h.sim.redeliver("evt_unknown"),
        Err(SimError::UnknownEvent(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_secret_roll_only_the_remaining_secret_signs() {
    let h = Harness::start().await;
    h.sim
        .set_webhook(h.hook.url.clone(), vec![NEW_SECRET.to_owned()]);
    let session = h.create_session().await;

    h.sim.pay(session.id.as_str()).unwrap();

    let delivery = h.hook.wait_for(1).await.remove(0);
    assert_eq!(delivery.signature.matches("v1=").count(), 1);
    verify(&delivery, NEW_SECRET);
    let old =
        stripe_webhook::Webhook::construct_event(&delivery.body, &delivery.signature, OLD_SECRET);
    assert!(old.is_err());
    let payload = &h.sim.events()[0].payload;
    assert_eq!(
        h.sim.sign(payload, 1_700_000_000),
        signature_header(payload, 1_700_000_000, &[NEW_SECRET.to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_events_are_recorded_but_not_sent() {
    let h = Harness::with(|config| config.webhook_url = None).await;
    let session = h.create_session().await;

    h.sim.pay(session.id.as_str()).unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = h.sim.events();
    assert_eq!(events.len(), 2, "completed, charge.succeeded");
    for event in &events {
        let body: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(body["pending_webhooks"], 0);
    }
    assert!(h.sim.deliveries().is_empty());
    assert!(h.hook.received().is_empty());
}
