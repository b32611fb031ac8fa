//! Sellers paid through Stripe Connect: onboarding through Stripe's hosted page (the simulator's),
//! a seller's tiers on sale only while Stripe has enabled charges, a sale as a destination charge
//! whose application fee is the platform's share, and a refund that takes both back. Money is
//! checked against the Stripe simulator's ledger, not against what the service says of itself.

use std::time::Duration;

use serde_json::{Value, json};

use crate::admin_purchases::{buy, json_of};
use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app, spawn_app_with};
use crate::seller_work::{ada_listed, get_as};

async fn post_as(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// The seller's Stripe account as `GET /v1/seller/me` shows it.
async fn stripe_of(app: &TestApp, key: &str) -> Value {
    get_as(app, "/v1/seller/me", key).await["stripe"].clone()
}

/// Asks for an onboarding link and fills in Stripe's hosted form (the simulator's page): Stripe
/// then says so with `account.updated`, which enables the seller's charges. The connected account.
pub(crate) async fn onboard(app: &TestApp, key: &str) -> String {
    let link = json_of(post_as(app, key, "/v1/seller/stripe/onboarding").await, 200).await;
    let url = link["url"].as_str().unwrap().to_owned();
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    // Submitting the form sends the seller back to the service's return page.
    let submitted = app.client.post(&url).send().await.unwrap();
    assert_eq!(submitted.status(), 303);
    let back = submitted.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.ends_with("/seller/stripe/return"), "{back}");
    assert_eq!(app.client.get(&back).send().await.unwrap().status(), 200);
    charges_enabled(app, key, true).await;
    stripe_of(app, key).await["account_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn charges_enabled(app: &TestApp, key: &str, enabled: bool) {
    app.eventually(
        "Stripe's word on the account",
        Duration::from_secs(20),
        || async { (stripe_of(app, key).await["charges_enabled"] == enabled).then_some(()) },
    )
    .await;
}

/// Whether the public catalog offers a listing of `canonical`.
async fn offered(app: &TestApp, canonical: &str) -> bool {
    let listings = json_of(app.get("/v1/listings").await, 200).await;
    listings["listings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["canonical"] == canonical)
}

async fn checkout_status(app: &TestApp, tier: &str) -> (u16, Value) {
    let response = app.checkout(&json!({ "tier_id": tier })).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn admin_purchase(app: &TestApp, id: &str) -> Value {
    json_of(
        app.admin_get(&format!("/v1/admin/purchases/{id}")).await,
        200,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_tiers_are_on_sale_only_while_stripe_has_enabled_charges_on_their_account() {
    // Arrange: Ada lists a snippet but has not onboarded.
    let app = spawn_app().await;
    let (key, _, tier) = ada_listed(&app).await;
    let canonical = crate::seller_work::ADA_SNIPPET;

    // Act / Assert: not offered, not sold, and no dashboard before onboarding.
    assert!(!offered(&app, canonical).await);
    let (status, body) = checkout_status(&app, &tier).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("tier_not_on_sale"))
    );
    let refused = json_of(
        post_as(&app, &key, "/v1/seller/stripe/login_link").await,
        409,
    )
    .await;
    assert_eq!(refused["error"]["code"], "stripe_not_onboarded");

    // Onboarded: offered, sold, and the Express dashboard opens.
    let account = onboard(&app, &key).await;
    app.eventually("Ada's listing offered", Duration::from_secs(5), || async {
        offered(&app, canonical).await.then_some(())
    })
    .await;
    assert_eq!(checkout_status(&app, &tier).await.0, 201);
    let login = json_of(
        post_as(&app, &key, "/v1/seller/stripe/login_link").await,
        200,
    )
    .await;
    assert!(login["url"].as_str().unwrap().contains(&account));

    // Stripe disables the account: off sale again; enabled again: back on sale.
    app.stripe.set_account_enabled(&account, false).unwrap();
    charges_enabled(&app, &key, false).await;
    app.eventually(
        "Ada's listing withdrawn",
        Duration::from_secs(5),
        || async { (!offered(&app, canonical).await).then_some(()) },
    )
    .await;
    assert_eq!(checkout_status(&app, &tier).await.0, 409);
    app.stripe.set_account_enabled(&account, true).unwrap();
    charges_enabled(&app, &key, true).await;
    assert_eq!(checkout_status(&app, &tier).await.0, 201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_sale_moves_the_charge_to_their_account_less_the_fee_and_a_refund_takes_both_back()
 {
    // Arrange: Ada onboarded, selling at $15.00; the platform takes the default 10 %.
    let app = spawn_app().await;
    let (key, _, tier) = ada_listed(&app).await;
    let account = onboard(&app, &key).await;

    // Act
    let bought = buy(&app, &tier, Some("buyer@example.com")).await;

    // Assert: the purchase records the seller, the destination and the fee, and the transfer
    // once Stripe tells of the charge.
    let admin = admin_purchase(&app, &bought.id).await;
    let row = &admin["purchase"];
    assert_eq!(row["connect_destination"], account.as_str());
    assert_eq!(row["application_fee_amount"], 150);
    let payment_intent = row["payment_intent_id"].as_str().unwrap().to_owned();
    let transfer = app
        .eventually(
            "the charge's transfer recorded",
            Duration::from_secs(20),
            || async {
                admin_purchase(&app, &bought.id).await["payment"]["transfer_id"]
                    .as_str()
                    .map(str::to_owned)
            },
        )
        .await;
    // Stripe's ledger: the whole charge went to Ada, the fee came back to the platform.
    let entry = ledger_entry(&app, &payment_intent);
    assert_eq!(entry.amount, 1500);
    assert_eq!(entry.destination.as_deref(), Some(account.as_str()));
    let moved = entry.transfer.clone().unwrap();
    let fee = entry.application_fee.clone().unwrap();
    assert_eq!((moved.id.as_str(), moved.amount), (transfer.as_str(), 1500));
    assert_eq!(fee.amount, 150);
    assert_eq!(entry.amount, (moved.amount - fee.amount) + fee.amount);

    // Act: the operator refunds it.
    let refunded = app
        .client
        .post(app.url(&format!("/v1/admin/purchases/{}/refund", bought.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    json_of(refunded, 202).await;

    // Assert: the buyer has the money back, Ada's transfer is reversed and the fee refunded.
    app.eventually("the refund landed", Duration::from_secs(20), || async {
        (admin_purchase(&app, &bought.id).await["purchase"]["status"] == "refunded").then_some(())
    })
    .await;
    let entry = ledger_entry(&app, &payment_intent);
    assert_eq!(entry.amount_refunded, 1500);
    assert_eq!(entry.transfer.unwrap().amount_reversed, 1500);
    assert_eq!(entry.application_fee.unwrap().amount_refunded, 150);
    app.stop().await;
}

fn ledger_entry(app: &TestApp, payment_intent: &str) -> sandbox::stripe::SimLedgerEntry {
    app.stripe
        .ledger()
        .into_iter()
        .find(|e| e.payment_intent == payment_intent)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_own_fee_applies_to_new_sales_and_the_house_pays_none() {
    // Arrange
    let app = spawn_app().await;
    let (key, _, tier) = ada_listed(&app).await;
    onboard(&app, &key).await;
    let seller_id = get_as(&app, "/v1/seller/me", &key).await["seller_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = buy(&app, &tier, None).await;

    // Act: the operator gives Ada 5 %.
    let path = format!("/v1/admin/sellers/{seller_id}/platform_fee");
    let set = json_of(
        app.admin_put(&path, &json!({ "platform_fee_bps": 500 }))
            .await,
        200,
    )
    .await;
    let after = buy(&app, &tier, None).await;
    let house = app.start_purchase().await;

    // Assert
    assert_eq!(set["platform_fee_bps"], 500);
    let fee = |v: Value| v["purchase"]["application_fee_amount"].clone();
    assert_eq!(fee(admin_purchase(&app, &before.id).await), 150);
    assert_eq!(fee(admin_purchase(&app, &after.id).await), 75);
    let house = admin_purchase(&app, &house.0).await;
    assert_eq!(house["purchase"]["application_fee_amount"], Value::Null);
    assert_eq!(house["purchase"]["connect_destination"], Value::Null);
    // Out of range is refused in the envelope.
    let bad = app
        .admin_put(&path, &json!({ "platform_fee_bps": 10_001 }))
        .await;
    assert_eq!(json_of(bad, 400).await["error"]["code"], "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_word_from_stripe_about_an_account_does_not_undo_a_newer_one() {
    // Arrange: Ada onboarded (charges enabled by an event of now).
    let app = spawn_app().await;
    let (key, _, _) = ada_listed(&app).await;
    let account = onboard(&app, &key).await;

    // Act: a delivery of an hour-old event saying charges were disabled (a late retry).
    let old = chrono::Utc::now().timestamp() - 3600;
    let body = json!({
        "id": "evt_old_account_word", "object": "event", "type": "account.updated",
        "created": old, "livemode": false, "account": account,
        "data": { "object": { "id": account, "object": "account", "charges_enabled": false,
                              "payouts_enabled": false, "details_submitted": true } },
    })
    .to_string();
    let signature = app.stripe.sign(&body, chrono::Utc::now().timestamp());
    let answer = app.webhook(&body, Some(&signature)).await;

    // Assert: applied (recorded in the inbox) but the newer state stands.
    assert_eq!(answer.status(), 200);
    assert_eq!(stripe_of(&app, &key).await["charges_enabled"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_asked_four_times_at_once_makes_one_connected_account() {
    // Arrange
    let app = spawn_app().await;
    let (key, _, _) = ada_listed(&app).await;

    // Act
    let asks = (0..4).map(|_| post_as(&app, &key, "/v1/seller/stripe/onboarding"));
    let answers = futures::future::join_all(asks).await;

    // Assert: four links, one account at Stripe and on the seller.
    for answer in answers {
        assert_eq!(answer.status(), 200);
    }
    let account = stripe_of(&app, &key).await["account_id"].clone();
    assert!(account.as_str().unwrap().starts_with("acct_"));
    assert_eq!(app.stripe.accounts().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_made_in_stripes_dashboard_still_takes_the_sellers_transfer_and_the_fee_back() {
    // Arrange: Ada sells; the service checks Stripe every 100 ms.
    let app = spawn_app_with(Options {
        backfill: Some(crate::backfill::eager()),
        ..Options::default()
    })
    .await;
    let (key, _, tier) = ada_listed(&app).await;
    onboard(&app, &key).await;
    let bought = buy(&app, &tier, None).await;
    let payment_intent = admin_purchase(&app, &bought.id).await["purchase"]["payment_intent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.eventually(
        "the charge's transfer recorded",
        Duration::from_secs(20),
        || async {
            admin_purchase(&app, &bought.id).await["payment"]["transfer_id"]
                .as_str()
                .map(|_| ())
        },
    )
    .await;

    // Act: refunded in Stripe's dashboard, which reverses nothing by itself.
    app.stripe.refund(&payment_intent, None).unwrap();

    // Assert: the buyer's token is revoked, and the seller's transfer and the fee come back, once.
    let entry = app
        .eventually(
            "the transfer taken back",
            Duration::from_secs(20),
            || async {
                let entry = ledger_entry(&app, &payment_intent);
                let back = entry.transfer.as_ref()?.amount_reversed == 1500
                    && entry.application_fee.as_ref()?.amount_refunded == 150;
                back.then_some(entry)
            },
        )
        .await;
    assert_eq!(entry.amount_refunded, 1500);
    app.eventually("the purchase refunded", Duration::from_secs(20), || async {
        (admin_purchase(&app, &bought.id).await["purchase"]["status"] == "refunded").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let taken: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action = 'payment.transfer_taken_back'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(taken, 1);
    let entry = ledger_entry(&app, &payment_intent);
    assert_eq!(
        entry.transfer.unwrap().amount_reversed,
        1500,
        "reversed once"
    );
    app.stop().await;
}
