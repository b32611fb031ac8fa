//! The `/__sim` control API drives the same flows as the Rust handle, for a simulator running
//! in another process.

use reqwest::StatusCode;
use sandbox::stripe::{DeliveryRecord, SimDispute, SimEvent, SimRefund, SimSession};
use serde_json::{Value, json};

use crate::helpers::{Harness, NEW_SECRET, verify};

impl Harness {
    pub async fn control_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.control(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn control_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = self.http.get(self.control(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_purchase_can_be_driven_over_http() {
    let h = Harness::start().await;
    let health: Value = h.control_get("/health").await;
    assert_eq!(health["ok"], true);
    let key: Value = h.control_get("/api-key").await;
    assert_eq!(key["api_key"], h.sim.api_key());
    let session = h.create_session().await;

    let paid = h
        .control_post(&format!("/sessions/{}/pay", session.id), &json!({}))
        .await;
    assert_eq!(paid.status(), StatusCode::OK);
    let paid: SimSession = paid.json().await.unwrap();
    assert_eq!(paid.status, sandbox::stripe::SessionStatus::Complete);
    let pi = paid.payment_intent.clone().unwrap();

    let refund = h
        .control_post("/refund", &json!({ "payment_intent": pi, "amount": 300 }))
        .await;
    let refund: SimRefund = refund.json().await.unwrap();
    assert_eq!((refund.amount, refund.charge_refunded), (300, false));
    let dispute = h
        .control_post("/dispute", &json!({ "payment_intent": pi }))
        .await;
    let dispute: SimDispute = dispute.json().await.unwrap();
    assert_eq!(dispute.amount, 900);

    let events: Vec<SimEvent> = h.control_get("/events").await;
    let types: Vec<&str> = events.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "charge.succeeded",
            "charge.refunded",
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
        ]
    );
    h.hook.wait_for(5).await;
    let redeliver = h
        .control_post(&format!("/events/{}/redeliver", events[0].id), &json!({}))
        .await;
    assert_eq!(redeliver.status(), StatusCode::NO_CONTENT);
    h.hook.wait_for(6).await;
    // The receiver has the body before the simulator records the answer.
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while h.sim.deliveries().len() < 6 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let deliveries: Vec<DeliveryRecord> = h.control_get("/deliveries").await;
    assert_eq!(deliveries.len(), 6);
    let sessions: Vec<SimSession> = h.control_get("/sessions").await;
    assert_eq!(sessions, h.sim.sessions());
}

#[tokio::test(flavor = "multi_thread")]
async fn delayed_payments_and_expiry_over_http() {
    let h = Harness::start().await;
    let delayed = h.create_session().await;
    let expiring = h.create_session().await;

    let pending: SimSession = h
        .control_post(&format!("/sessions/{}/pay-delayed", delayed.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        pending.payment_status,
        sandbox::stripe::PaymentStatus::Unpaid
    );
    let settled: SimSession = h
        .control_post(
            &format!("/sessions/{}/settle", delayed.id),
            &json!({ "succeeded": true }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settled.payment_status, sandbox::stripe::PaymentStatus::Paid);
    let expired: SimSession = h
        .control_post(&format!("/sessions/{}/expire", expiring.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(expired.status, sandbox::stripe::SessionStatus::Expired);

    let again = h
        .control_post(&format!("/sessions/{}/expire", expiring.id), &json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "session_not_open");
    let unknown = h
        .control_post("/sessions/cs_test_nope/pay", &json!({}))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad = h.control_post("/refund", &json!({ "amount": 3 })).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_settings_and_signing_over_http() {
    let h = Harness::start().await;

    let webhook: Value = h.control_get("/webhook").await;
    assert_eq!(webhook["url"], h.hook.url.as_str());
    assert_eq!(webhook["secrets"], 2, "a count, never the secrets");
    let set = h
        .control_post(
            "/webhook",
            &json!({ "url": h.hook.url.as_str(), "secrets": [NEW_SECRET] }),
        )
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let duplicate = h
        .control_post("/duplicate-deliveries", &json!({ "on": true }))
        .await;
    assert_eq!(duplicate.status(), StatusCode::NO_CONTENT);
    let delays = h
        .control_post("/retry-delays", &json!({ "delays_ms": [50] }))
        .await;
    assert_eq!(delays.status(), StatusCode::NO_CONTENT);

    let session = h.create_session().await;
    h.sim.pay(session.id.as_str()).unwrap();
    // Two events (completed, charge.succeeded), each delivered twice.
    let received = h.hook.wait_for(4).await;
    for event in h.sim.events() {
        let copies = received.iter().filter(|r| r.event_id() == event.id).count();
        assert_eq!(copies, 2, "{}", event.type_);
    }
    verify(&received[0], NEW_SECRET);

    let signed: Value = h
        .control_post(
            "/sign",
            &json!({ "payload": "{}", "timestamp": 1_700_000_000 }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signed["header"], h.sim.sign("{}", 1_700_000_000));

    let calls: Vec<sandbox::stripe::CallRecord> = h.control_get("/calls").await;
    assert_eq!(calls.len(), 1);
    let cleared = h.http.delete(h.control("/calls")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert!(h.sim.calls().is_empty());
    let stop = h.http.delete(h.control("/webhook")).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::NO_CONTENT);
    let webhook: Value = h.control_get("/webhook").await;
    assert_eq!(webhook["url"], Value::Null);
}
