//! Tier upgrades over HTTP: the buyer (receipt key, or a portal session of the purchase's email)
//! asks for a higher tier, pays the difference at Stripe, and the same token allows the new tier's
//! installs, with one email; asking twice before paying is one upgrade; refusals are the error
//! envelope's 4xx; an operator's refund of the upgrade lowers the limit back.

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};
use testkit::smtp::SmtpSink;

use crate::admin_purchases::{Bought, buy, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::mail::app_mailing_to;
use crate::portal::signed_in;

async fn ask(app: &TestApp, purchase: &str, proof: &str, body: &Value) -> Response {
    app.client
        .post(app.url(&format!("/v1/purchases/{purchase}/upgrade")))
        .bearer_auth(proof)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The buyer's upgrade of `bought` to `tier` with its receipt key, answered with `status`.
async fn upgrade_to(app: &TestApp, bought: &Bought, tier: &str, status: u16) -> Value {
    json_of(
        ask(
            app,
            &bought.id,
            &bought.receipt_key,
            &json!({ "tier_id": tier }),
        )
        .await,
        status,
    )
    .await
}

/// A fresh app with a Solo purchase: `(app, agency tier id, the purchase)`.
async fn solo_bought() -> (TestApp, String, Bought) {
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let bought = buy(&app, &solo, None).await;
    (app, agency, bought)
}

fn limit_at_xano(app: &TestApp, token: &str) -> Option<i64> {
    app.xano
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token)
        .map(|t| t.max_installs)
}

/// The buyer's view of `purchase` once its token allows `installs`.
async fn allowing(app: &TestApp, purchase: &str, key: &str, installs: i64) -> Value {
    app.eventually("the new limit", Duration::from_secs(20), || async {
        let body: Value = app.purchase(purchase, key).await.json().await.ok()?;
        (body["token"]["max_installs"] == installs).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_the_difference_and_the_same_token_allows_the_higher_tiers_installs() {
    // Arrange: Solo ($19, 5 installs) bought, 2 installs used.
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    app.xano.install(CANONICAL, &bought.token).unwrap();
    app.xano.install(CANONICAL, &bought.token).unwrap();

    // Act
    let started = upgrade_to(&app, &bought, &agency, 201).await;
    let session = TestApp::session_of(started["checkout_url"].as_str().unwrap());
    app.stripe.pay(&session).unwrap();
    let receipt = allowing(&app, &bought.id, &bought.receipt_key, 50).await;

    // Assert: charged $99 - $19, the same token, its installs kept, one message.
    assert_eq!(started["price"]["amount"], 8000);
    assert_eq!(started["max_installs"], 50);
    assert_eq!(receipt["token"]["value"], bought.token.as_str());
    assert_eq!(receipt["max_installs"], 50);
    assert_eq!(receipt["upgraded_to"]["tier_id"], agency.as_str());
    assert_eq!(limit_at_xano(&app, &bought.token), Some(50));
    let at_xano = app.xano.tokens(CANONICAL);
    assert_eq!(
        at_xano
            .iter()
            .find(|t| t.token == bought.token)
            .unwrap()
            .current_installs,
        2
    );
    let upgrade_id = started["upgrade_id"].as_str().unwrap();
    let upgrade: Value = app
        .purchase(upgrade_id, started["receipt_key"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(upgrade["status"], "fulfilled");
    assert_eq!(upgrade["upgrade_of"], bought.id.as_str());
    assert!(upgrade["token"].is_null(), "an upgrade holds no token");
    let mail = sink.wait_for(2, Duration::from_secs(20)).await;
    let upgraded: Vec<_> = mail
        .iter()
        .filter(|m| m.subject().unwrap().contains("upgrade"))
        .collect();
    assert_eq!(
        upgraded.len(),
        1,
        "{:?}",
        mail.iter()
            .map(testkit::smtp::ReceivedMail::subject)
            .collect::<Vec<_>>()
    );
    assert!(upgraded[0].text_parts().contains("allows 50 installs"));
    assert!(
        !upgraded[0].text_parts().contains(&bought.token),
        "no token repeated"
    );
    // Already at Agency: nothing higher to go to.
    let again = upgrade_to(&app, &bought, &agency, 409).await;
    assert_eq!(again["error"]["code"], "not_an_upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_twice_before_paying_is_one_upgrade_with_one_checkout() {
    let (app, agency, bought) = solo_bought().await;

    let first = upgrade_to(&app, &bought, &agency, 201).await;
    let second = upgrade_to(&app, &bought, &agency, 200).await;

    assert_eq!(first["upgrade_id"], second["upgrade_id"]);
    assert_eq!(first["checkout_url"], second["checkout_url"]);
    let sessions = app
        .stripe
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == "/v1/checkout/sessions" && !c.replayed)
        .count();
    assert_eq!(sessions, 2, "the purchase's and the upgrade's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_are_refused_with_a_clear_4xx_and_a_strangers_proof_is_a_404() {
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let other_listing = app.tier_id("stripe-billing_02", "solo").await;
    let bought = buy(&app, &solo, None).await;
    let stranger = buy(&app, &solo, None).await;
    let code = |body: Value| body["error"]["code"].as_str().unwrap().to_owned();
    let (id, key) = (bought.id.as_str(), bought.receipt_key.as_str());

    // Another buyer's key, no key, a malformed id: all the same 404 as an unknown purchase.
    let cases = [
        (
            ask(
                &app,
                id,
                &stranger.receipt_key,
                &json!({ "tier_id": agency }),
            )
            .await,
            404,
            "not_found",
        ),
        (
            ask(&app, "not-a-uuid", key, &json!({ "tier_id": agency })).await,
            404,
            "not_found",
        ),
        (
            ask(&app, id, key, &json!({ "tier_id": uuid::Uuid::new_v4() })).await,
            404,
            "not_found",
        ),
        (
            ask(&app, id, key, &json!({ "tier_id": solo })).await,
            409,
            "not_an_upgrade",
        ),
        (
            ask(&app, id, key, &json!({ "tier_id": other_listing })).await,
            409,
            "not_an_upgrade",
        ),
        (ask(&app, id, key, &json!({})).await, 400, "invalid_request"),
        (
            ask(&app, id, key, &json!({ "tier_id": agency, "amount": 1 })).await,
            400,
            "invalid_request",
        ),
        (
            ask(
                &app,
                id,
                key,
                &json!({ "tier_id": agency, "success_url": "https://evil.example/" }),
            )
            .await,
            400,
            "invalid_request",
        ),
    ];
    for (i, (response, status, expected)) in cases.into_iter().enumerate() {
        assert_eq!(code(json_of(response, status).await), expected, "case {i}");
    }
    let unauthenticated = app
        .client
        .post(app.url(&format!("/v1/purchases/{id}/upgrade")))
        .json(&json!({ "tier_id": agency }))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 404);

    // An upgrade under way blocks another target; an upgrade itself cannot be upgraded.
    let pending = json_of(ask(&app, id, key, &json!({ "tier_id": agency })).await, 201).await;
    let upgrade_id = pending["upgrade_id"].as_str().unwrap();
    let upgrade_key = pending["receipt_key"].as_str().unwrap();
    let nested = json_of(
        ask(&app, upgrade_id, upgrade_key, &json!({ "tier_id": agency })).await,
        409,
    )
    .await;
    assert_eq!(code(nested), "not_upgradable");
    assert_eq!(
        app.purchase_count().await,
        3,
        "no purchase was made by a refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_session_upgrades_only_purchases_of_its_own_email() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let ada = buy(&app, &solo, Some("ada@example.com")).await;
    let bob = buy(&app, &solo, Some("bob@example.com")).await;
    sink.wait_for(2, Duration::from_secs(20)).await;
    let session = signed_in(&app, &sink, "ada@example.com", 3).await;

    let strangers = ask(&app, &bob.id, &session, &json!({ "tier_id": agency })).await;
    let own = ask(&app, &ada.id, &session, &json!({ "tier_id": agency })).await;

    assert_eq!(json_of(strangers, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(own, 201).await["purchase_id"], ada.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_refund_of_the_upgrade_lowers_the_limit_back_and_the_token_keeps_working() {
    let (app, agency, bought) = solo_bought().await;
    let started = upgrade_to(&app, &bought, &agency, 201).await;
    app.stripe
        .pay(&TestApp::session_of(
            started["checkout_url"].as_str().unwrap(),
        ))
        .unwrap();
    allowing(&app, &bought.id, &bought.receipt_key, 50).await;

    let upgrade_id = started["upgrade_id"].as_str().unwrap();
    let refund = app
        .admin_post(&format!("/v1/admin/purchases/{upgrade_id}/refund"))
        .await;
    assert_eq!(refund.status(), 202);
    let receipt = allowing(&app, &bought.id, &bought.receipt_key, 5).await;

    assert_eq!(receipt["status"], "fulfilled");
    assert_eq!(receipt["token"]["value"], bought.token.as_str());
    assert!(receipt["upgraded_to"].is_null());
    assert_eq!(limit_at_xano(&app, &bought.token), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_refund_of_the_purchase_refunds_its_upgrade_too_and_the_token_is_deleted() {
    let (app, agency, bought) = solo_bought().await;
    let started = upgrade_to(&app, &bought, &agency, 201).await;
    let upgrade_id = started["upgrade_id"].as_str().unwrap().to_owned();
    app.stripe
        .pay(&TestApp::session_of(
            started["checkout_url"].as_str().unwrap(),
        ))
        .unwrap();
    allowing(&app, &bought.id, &bought.receipt_key, 50).await;

    let refund = app
        .admin_post(&format!("/v1/admin/purchases/{}/refund", bought.id))
        .await;
    let again = app
        .admin_post(&format!("/v1/admin/purchases/{}/refund", bought.id))
        .await;
    assert_eq!(refund.status(), 202);
    assert!([200, 202].contains(&again.status().as_u16()));
    app.eventually("both refunded", Duration::from_secs(20), || async {
        let statuses: Vec<String> = sqlx::query_scalar(
            "select status::text from purchase where purchase_id in ($1::uuid, $2::uuid)",
        )
        .bind(&bought.id)
        .bind(&upgrade_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        statuses.iter().all(|s| s == "refunded").then_some(())
    })
    .await;

    let refunds: Vec<_> = app
        .stripe
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == "/v1/refunds" && !c.replayed)
        .map(|c| c.idempotency_key.unwrap_or_default())
        .collect();
    let mut expected = vec![
        format!("refund:{}", bought.id),
        format!("refund:{upgrade_id}"),
    ];
    let mut made = refunds.clone();
    made.sort();
    expected.sort();
    assert_eq!(made, expected, "each refunded once");
    app.eventually(
        "the token deleted at Xano",
        Duration::from_secs(20),
        || async { limit_at_xano(&app, &bought.token).is_none().then_some(()) },
    )
    .await;
}
