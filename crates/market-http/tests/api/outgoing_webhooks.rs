//! Outgoing webhooks as a receiver sees them. The receiver is another process
//! (`testkit::receiver`) that verifies every delivery with the official Standard Webhooks library
//! for Python, not with this project's code; each payload is checked against the document's
//! `webhooks` section. The SSRF guard's refusals are checked through the API.

use std::collections::BTreeSet;
use std::time::Duration;

use market_core::courier::{CourierConfig, Guard};
use market_core::deliverer::DelivererConfig;
use market_core::webhooks::Policy;
use market_http::startup::WebhookSettings;
use reqwest::Response;
use serde_json::{Value, json};
use testkit::receiver::{Received, WebhookReceiver};

use crate::admin_purchases::{buy, json_of};
use crate::connect::onboard;
use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app_with};
use crate::seller_work::ada_listed;

const WAIT: Duration = Duration::from_secs(30);

/// Delivery to a receiver on this machine (loopback and `http` allowed), retried fast.
pub(crate) fn delivering() -> WebhookSettings {
    WebhookSettings {
        courier: CourierConfig {
            timeout: Duration::from_secs(2),
            guard: Guard::allowing(true, vec!["127.0.0.0/8".parse().unwrap()]),
            ..CourierConfig::default()
        },
        deliverer: Some(DelivererConfig {
            concurrency: 4,
            poll_interval: Duration::from_millis(50),
            lease: Duration::from_secs(6),
            policy: Policy {
                retry_base: Duration::from_millis(100),
                retry_cap: Duration::from_millis(400),
                retry_for: Duration::from_secs(3600),
                disable_after: Duration::from_secs(3600),
            },
            ..DelivererConfig::default()
        }),
    }
}

pub(crate) async fn send(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// What the receiver accepted of `purchase`, in the order it accepted it: `(type, webhook-id)`.
fn of_purchase(accepted: &[Received], purchase: &str) -> Vec<(String, String)> {
    accepted
        .iter()
        .filter(|r| r.body.as_ref().unwrap()["data"]["purchase_id"] == purchase)
        .map(|r| {
            (
                r.event_type().unwrap().to_owned(),
                r.webhook_id.clone().unwrap(),
            )
        })
        .collect()
}

fn types(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(kind, _)| kind.as_str()).collect()
}

/// The property names a schema of the document allows, and those it requires (`$ref` and `allOf`
/// followed).
fn documented(document: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return documented(document, &document["components"]["schemas"][name]);
    }
    let mut allowed = BTreeSet::new();
    let mut required = BTreeSet::new();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (a, r) = documented(document, part);
        allowed.extend(a);
        required.extend(r);
    }
    if let Some(properties) = schema["properties"].as_object() {
        allowed.extend(properties.keys().cloned());
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        required.insert(name.as_str().unwrap().to_owned());
    }
    (allowed, required)
}

/// Every accepted body has exactly the shape the document's `webhooks` section gives its type.
fn assert_documented(document: &Value, accepted: &[Received]) {
    for received in accepted {
        let body = received.body.as_ref().unwrap();
        let kind = received.event_type().unwrap();
        let schema = &document["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(
            !schema.is_null(),
            "{kind} is not in the document's webhooks"
        );
        let (top, _) = documented(document, schema);
        let keys: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, top, "{kind}: the body's fields");
        let reference = &documented_data_schema(document, schema);
        let (allowed, required) = documented(document, reference);
        let data: BTreeSet<String> = body["data"].as_object().unwrap().keys().cloned().collect();
        assert!(
            data.is_subset(&allowed),
            "{kind}: undocumented fields {:?}",
            data.difference(&allowed).collect::<Vec<_>>()
        );
        assert!(
            required.is_subset(&data),
            "{kind}: missing fields {:?}",
            required.difference(&data).collect::<Vec<_>>()
        );
    }
}

fn documented_data_schema(document: &Value, schema: &Value) -> Value {
    let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    document["components"]["schemas"][name]["properties"]["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_verifies_with_the_official_library_in_another_process_also_during_a_secret_roll()
 {
    // Arrange: Ada sells through Connect and has an endpoint at the receiver, token included.
    let mut receiver = WebhookReceiver::start().await;
    let app = spawn_app_with(Options {
        webhooks: Some(delivering()),
        ..Options::default()
    })
    .await;
    let (key, _, tier) = ada_listed(&app).await;
    onboard(&app, &key).await;
    let (endpoint, first) = create_endpoint(&app, &key, &receiver.url()).await;
    assert!(first.starts_with("whsec_"));
    receiver.set_secrets(&[&first]);

    // Act: a sale.
    let sale = buy(&app, &tier, Some("buyer@example.com")).await;

    // Assert: paid then fulfilled, one signature each, verified by the library; the opted-in
    // endpoint has the buyer's token; the ids are the event's, `msg_…`.
    let accepted = receiver
        .wait_until(WAIT, |a| of_purchase(a, &sale.id).len() >= 2)
        .await;
    let events = of_purchase(&accepted, &sale.id);
    assert_eq!(types(&events), ["purchase.paid", "purchase.fulfilled"]);
    let fulfilled = accepted
        .iter()
        .find(|r| r.event_type() == Some("purchase.fulfilled"))
        .unwrap();
    assert_eq!(
        fulfilled.body.as_ref().unwrap()["data"]["token"],
        sale.token.as_str()
    );
    assert_eq!(
        (fulfilled.signatures, fulfilled.verified_with.as_slice()),
        (1, &[0][..])
    );
    assert!(events.iter().all(|(_, id)| id.starts_with("msg_")));

    // Act: a roll with an hour's overlap; the receiver knows both secrets, then only the new one.
    let second = roll(&app, &key, &endpoint, 3600).await;
    receiver.set_secrets(&[&first, &second]);
    let during = buy(&app, &tier, None).await;
    let accepted = receiver
        .wait_until(WAIT, |a| of_purchase(a, &during.id).len() >= 2)
        .await;

    // Assert: during the overlap both secrets sign, and each verifies alone.
    for r in accepted
        .iter()
        .filter(|r| of_purchase(std::slice::from_ref(r), &during.id).len() == 1)
    {
        assert_eq!((r.signatures, r.verified_with.as_slice()), (2, &[0, 1][..]));
    }

    // Act: the receiver switches to the new secret; then a roll without overlap, the receiver
    // still on the previous secret for a while.
    receiver.set_secrets(&[&second]);
    let switched = buy(&app, &tier, None).await;
    receiver
        .wait_until(WAIT, |a| of_purchase(a, &switched.id).len() >= 2)
        .await;
    let third = roll(&app, &key, &endpoint, 0).await;
    let after = buy_unpaid_then_pay(&app, &tier).await;
    let refused = receiver_refused(&receiver, &after).await;
    receiver.set_secrets(&[&third]);
    let accepted = receiver
        .wait_until(WAIT, |a| of_purchase(a, &after).len() >= 2)
        .await;

    // Assert: the previous secret stopped signing at once (refused by the library, 401), and the
    // retry of the same `webhook-id` verified with the new one: the duplicate the spec allows.
    assert_eq!(refused.signatures, 1);
    let retried = of_purchase(&accepted, &after);
    assert!(
        retried
            .iter()
            .any(|(_, id)| Some(id) == refused.webhook_id.as_ref())
    );

    // Act: the operator refunds the first sale.
    let refund = format!("/v1/admin/purchases/{}/refund", sale.id);
    json_of(send(&app, ADMIN_TOKEN, "POST", &refund, None).await, 202).await;
    let accepted = receiver
        .wait_until(WAIT, |a| of_purchase(a, &sale.id).len() >= 4)
        .await;

    // Assert: the purchase's story, in order, once each; every body as documented.
    assert_eq!(
        types(&of_purchase(&accepted, &sale.id)),
        [
            "purchase.paid",
            "purchase.fulfilled",
            "purchase.refunded",
            "token.revoked"
        ]
    );
    let document = json_of(app.get("/openapi.json").await, 200).await;
    assert_documented(&document, &accepted);
    // The delivery log shows the refused attempt and the accepted one, with their latency.
    let statuses = logged_statuses(&app, &key, &endpoint, refused.webhook_id.as_deref()).await;
    assert!(
        statuses.contains(&401) && statuses.contains(&204),
        "{statuses:?}"
    );
    app.stop().await;
}

/// Makes Ada's endpoint at `url`, with the token in its events: `(endpoint_id, secret)`.
async fn create_endpoint(app: &TestApp, key: &str, url: &str) -> (String, String) {
    let body = json!({"url": url, "include_token": true});
    let created = json_of(
        send(app, key, "POST", "/v1/seller/webhooks", Some(&body)).await,
        201,
    )
    .await;
    (
        created["endpoint"]["endpoint_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// Rolls the endpoint's secret, the previous one signing for `overlap` seconds: the new secret.
async fn roll(app: &TestApp, key: &str, endpoint: &str, overlap: u32) -> String {
    let path = format!("/v1/seller/webhooks/{endpoint}/secret/roll?overlap_seconds={overlap}");
    json_of(send(app, key, "POST", &path, None).await, 200).await["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The statuses the endpoint's delivery log records for the delivery of `webhook_id`.
async fn logged_statuses(
    app: &TestApp,
    key: &str,
    endpoint: &str,
    webhook_id: Option<&str>,
) -> Vec<i64> {
    let path = format!("/v1/seller/webhooks/{endpoint}/attempts?limit=200");
    let log = json_of(send(app, key, "GET", &path, None).await, 200).await;
    log["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["webhook_id"].as_str() == webhook_id)
        .map(|a| a["status"].as_i64().unwrap())
        .collect()
}

/// Checks out and pays the tier without waiting for the token: its webhooks are what matters.
async fn buy_unpaid_then_pay(app: &TestApp, tier: &str) -> String {
    let (id, session, _) = crate::admin_purchases::checkout(app, tier, None).await;
    app.stripe.pay(&session).unwrap();
    id
}

/// The first delivery of `purchase` the receiver refused (no secret verified it).
async fn receiver_refused(receiver: &WebhookReceiver, purchase: &str) -> Received {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(refused) = receiver.received().into_iter().find(|r| {
            !r.accepted()
                && r.body
                    .as_ref()
                    .is_some_and(|b| b["data"]["purchase_id"] == purchase)
        }) {
            return refused;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refused delivery of {purchase}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_loopback_metadata_private_addresses_and_names_that_resolve_to_them()
{
    // Arrange: http allowed (so each refusal is about the address), no network exempted.
    let app = spawn_app_with(Options {
        webhooks: Some(WebhookSettings {
            courier: CourierConfig {
                guard: Guard::allowing(true, Vec::new()),
                ..CourierConfig::default()
            },
            deliverer: None,
        }),
        ..Options::default()
    })
    .await;
    let (key, _, _) = ada_listed(&app).await;

    for url in [
        "http://127.0.0.1/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hooks",
        "http://192.168.1.20:8080/hooks",
        "http://localhost:9/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
    ] {
        // Act
        let refused = json_of(
            send(
                &app,
                &key,
                "POST",
                "/v1/seller/webhooks",
                Some(&json!({ "url": url })),
            )
            .await,
            400,
        )
        .await;

        // Assert: refused, in the error envelope, saying why.
        assert_eq!(refused["error"]["code"], "invalid_request", "{url}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("url: "), "{url}: {message}");
    }
    // The production guard refuses http itself, and the admin API checks the same way.
    let strict = spawn_app_with(Options::default()).await;
    let refused = json_of(
        strict
            .client
            .post(strict.url("/v1/admin/webhooks"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "url": "http://hooks.example.com/market" }))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{refused}"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from webhook_endpoint")
            .fetch_one(app.db.pool())
            .await
            .unwrap(),
        0
    );
    app.stop().await;
    strict.stop().await;
}
