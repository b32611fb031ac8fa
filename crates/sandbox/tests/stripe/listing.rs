//! Listing sessions and events, and reading charges and refunds, as a reconciling service would.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::Harness;

async fn get(h: &Harness, path: &str) -> Value {
    let response = h
        .http
        .get(h.url(path))
        .bearer_auth(h.sim.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_newest_first_and_filtered() {
    let h = Harness::start().await;
    let older = h.create_session().await;
    let newer = h.create_session().await;
    h.sim.pay(older.id.as_str()).unwrap();

    let all = get(&h, "/v1/checkout/sessions").await;
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [newer.id.as_str(), older.id.as_str()]);
    assert_eq!(all["has_more"], false);

    let complete = get(&h, "/v1/checkout/sessions?status=complete").await;
    assert_eq!(complete["data"].as_array().unwrap().len(), 1);
    assert_eq!(complete["data"][0]["id"], older.id.as_str());

    let page = get(&h, "/v1/checkout/sessions?limit=1").await;
    assert_eq!(page["has_more"], true);
    let next = get(
        &h,
        &format!("/v1/checkout/sessions?limit=1&starting_after={}", newer.id),
    )
    .await;
    assert_eq!(next["data"][0]["id"], older.id.as_str());

    let items = get(
        &h,
        &format!("/v1/checkout/sessions/{}/line_items", older.id),
    )
    .await;
    assert_eq!(items["data"][0]["quantity"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn undelivered_events_can_be_found() {
    let h = Harness::start().await;
    h.hook.answer_next(&[500, 500, 500]);
    let session = h.create_session().await;
    let paid = h.sim.pay(session.id.as_str()).unwrap();
    h.hook.wait_for(3).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    h.sim
        .refund(paid.payment_intent.as_deref().unwrap(), None)
        .unwrap();
    h.hook.wait_for(4).await;
    let refunded_event = h.sim.events()[1].id.clone();
    assert!(
        h.sim
            .wait_delivered(&refunded_event, std::time::Duration::from_secs(5))
            .await
    );

    let failed = get(&h, "/v1/events?delivery_success=false").await;
    let types: Vec<&str> = failed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["checkout.session.completed"]);

    let charges = get(&h, "/v1/events?type=charge.*").await;
    assert_eq!(charges["data"][0]["type"], "charge.refunded");
    let one = get(&h, &format!("/v1/events/{refunded_event}")).await;
    assert_eq!(one["id"], refunded_event.as_str());
    let charge_id = paid.charge.unwrap();
    let charge = get(&h, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["refunded"], true);
    let refund_id = charge["refunds"]["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refund = get(&h, &format!("/v1/refunds/{refund_id}")).await;
    assert_eq!(refund["amount"], 1200);
}
