//! Events as a Stripe on another API version sends them: a different `api_version` and fields
//! nobody has heard of, still signed, still parsed by a lenient consumer (async-stripe's).

use reqwest::StatusCode;
use sandbox::stripe::{API_VERSION, DisputeOutcome, EventDrift};
use serde_json::{Value, json};
use stripe_webhook::EventObject;

use crate::helpers::{Harness, NEW_SECRET, OLD_SECRET, verify};

const FUTURE: &str = "2099-01-01.future";

async fn event_body(h: &Harness, id: &str) -> Value {
    h.http
        .get(h.url(&format!("/v1/events/{id}")))
        .bearer_auth(h.sim.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drifted_event_is_signed_and_carries_the_other_version_and_unknown_fields() {
    let h = Harness::start().await;
    let before = h.paid_intent().await;
    h.sim.set_event_drift(Some(EventDrift {
        api_version: FUTURE.to_owned(),
        unknown_fields: true,
    }));

    h.sim.refund(&before, Some(100)).unwrap();

    let delivered = h.hook.wait_for_type("charge.refunded").await.remove(0);
    let event = verify(&delivered, OLD_SECRET);
    assert_eq!(verify(&delivered, NEW_SECRET).id, event.id);
    assert_eq!(event.api_version.as_ref().unwrap().as_str(), FUTURE);
    let EventObject::ChargeRefunded(charge) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(charge.amount_refunded, 100);
    let raw: Value = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(raw["api_version"], FUTURE);
    assert_eq!(raw["x_future_field"], json!({ "nested": true }));
    assert_eq!(
        raw["data"]["object"]["x_future_field"],
        json!({ "nested": true })
    );
    // GET /v1/events sends the same stored payload.
    assert_eq!(event_body(&h, event.id.as_str()).await, raw);
    // The event born before the drift keeps its rendering.
    let paid = event_body(&h, &h.sim.events()[0].id).await;
    assert_eq!(paid["api_version"], API_VERSION);
    assert!(paid.get("x_future_field").is_none());

    h.sim.set_event_drift(None);
    h.sim.refund(&before, Some(100)).unwrap();

    let after = event_body(&h, &h.sim.events().last().unwrap().id).await;
    assert_eq!(after["api_version"], API_VERSION);
    assert!(after["data"]["object"].get("x_future_field").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_set_and_cleared_over_http_and_disputes_still_parse() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let set = h
        .control_post(
            "/event-drift",
            &json!({ "api_version": FUTURE, "unknown_fields": true }),
        )
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let dispute = h.sim.dispute(&pi).unwrap();

    let delivered = h
        .hook
        .wait_for_type("charge.dispute.created")
        .await
        .remove(0);
    let event = verify(&delivered, NEW_SECRET);
    assert_eq!(event.api_version.unwrap().as_str(), FUTURE);
    assert!(matches!(
        event.data.object,
        EventObject::ChargeDisputeCreated(_)
    ));
    let version_only = h
        .control_post("/event-drift", &json!({ "api_version": FUTURE }))
        .await;
    assert_eq!(version_only.status(), StatusCode::NO_CONTENT);
    h.sim
        .close_dispute(&dispute.id, DisputeOutcome::Lost)
        .unwrap();
    let closed = last_payload(&h);
    assert_eq!(closed["api_version"], FUTURE);
    assert!(closed.get("x_future_field").is_none());

    let cleared = h
        .http
        .delete(h.control("/event-drift"))
        .send()
        .await
        .unwrap();

    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    h.paid_intent().await;
    assert_eq!(last_payload(&h)["api_version"], API_VERSION);
}

fn last_payload(h: &Harness) -> Value {
    serde_json::from_str(&h.sim.events().last().unwrap().payload).unwrap()
}
