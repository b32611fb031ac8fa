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
    // The payment's two events (completed, charge.succeeded) fail their try and both retries.
    h.hook.answer_next(&[500; 6]);
    let session = h.create_session().await;
    let paid = h.sim.pay(session.id.as_str()).unwrap();
    h.hook.wait_for(6).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    h.sim
        .refund(paid.payment_intent.as_deref().unwrap(), None)
        .unwrap();
    h.hook.wait_for(7).await;
    let refunded_event = h.sim.events()[2].id.clone();
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
    assert_eq!(types, ["charge.succeeded", "checkout.session.completed"]);

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

/// Pays a session, then waits for the next second and refunds a cent `refunds` times: the
/// payment's events are strictly older than every refund's. Returns the first refund's `created`.
async fn events_across_two_seconds(h: &Harness, refunds: usize) -> i64 {
    let pi = h.paid_intent().await;
    let payment_events = h.sim.events();
    let paid_at = payment_events.last().unwrap().created;
    while chrono::Utc::now().timestamp() <= paid_at {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..refunds {
        h.sim.refund(&pi, Some(1)).unwrap();
    }
    h.sim.events()[payment_events.len()].created
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The simulator's events matching `keep`, newest first.
fn expected(h: &Harness, keep: impl Fn(i64) -> bool) -> Vec<String> {
    h.sim
        .events()
        .into_iter()
        .rev()
        .filter(|event| keep(event.created))
        .map(|event| event.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_listed_with_created_gte_exclude_older_ones() {
    let h = Harness::start().await;
    let since = events_across_two_seconds(&h, 3).await;
    let paid = h.sim.events()[0].clone();

    let recent = get(&h, &format!("/v1/events?created[gte]={since}")).await;

    assert_eq!(ids(&recent), expected(&h, |created| created >= since));
    assert_eq!(ids(&recent).len(), 3);
    assert!(!ids(&recent).contains(&paid.id));
    let older = get(&h, &format!("/v1/events?created[lt]={since}")).await;
    let payment = expected(&h, |created| created < since);
    assert_eq!(ids(&older), payment, "completed and charge.succeeded");
    assert_eq!(payment.len(), 2);
    let exact = get(&h, &format!("/v1/events?created={}", paid.created)).await;
    assert_eq!(ids(&exact), expected(&h, |created| created == paid.created));
    assert!(ids(&exact).contains(&paid.id));
    let window = get(
        &h,
        &format!(
            "/v1/events?created[gt]={}&created[lte]={}&type=charge.refunded",
            paid.created,
            since + 60
        ),
    )
    .await;
    assert_eq!(ids(&window), ids(&recent));
    let none = get(&h, &format!("/v1/events?created[gt]={}", since + 60)).await;
    assert!(ids(&none).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_with_starting_after_across_a_created_filter_returns_each_event_once() {
    let h = Harness::start().await;
    let since = events_across_two_seconds(&h, 7).await;

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_ref()
            .map(|id| format!("&starting_after={id}"))
            .unwrap_or_default();
        let page = get(
            &h,
            &format!("/v1/events?limit=2&created[gte]={since}{after}"),
        )
        .await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids.iter().cloned());
        if page["has_more"] == false {
            break;
        }
        cursor = page_ids.last().cloned();
        assert!(seen.len() <= 7, "paging never ends: {seen:?}");
    }

    assert_eq!(seen, expected(&h, |created| created >= since));
    assert_eq!(seen.len(), 7);
    // A cursor the filter leaves out still marks a position in the list, as at Stripe.
    let after_newest = get(
        &h,
        &format!("/v1/events?created[lt]={since}&starting_after={}", seen[0]),
    )
    .await;
    assert_eq!(ids(&after_newest), expected(&h, |created| created < since));
    assert_eq!(ids(&after_newest).len(), 2, "the payment's two events");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_bound_that_is_not_an_integer_is_refused_naming_it() {
    let h = Harness::start().await;

    for (query, param) in [
        ("created[gte]=yesterday", "created[gte]"),
        ("created[lt]=1.5", "created[lt]"),
        ("created=soon", "created"),
        ("created[after]=1", "created[after]"),
    ] {
        let response = h
            .http
            .get(h.url(&format!("/v1/events?{query}")))
            .bearer_auth(h.sim.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
}
