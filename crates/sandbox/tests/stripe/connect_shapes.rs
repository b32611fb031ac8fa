//! Every Connect object the simulator returns or sends has the keys of Stripe's own example of
//! it (Stripe's `fixtures3.json`, see `connect_helpers.rs`), nested objects included; and every Connect event parses with
//! async-stripe-webhook into its own variant.

use serde_json::Value;
use stripe_webhook::{EventObject, Webhook};

use crate::connect_helpers::{
    REFRESH_URL, RETURN_URL, assert_shaped_like, example, key_differences,
};
use crate::helpers::Harness;

/// A seller onboarded through the API and the hosted form, a paid destination charge and a
/// partial refund that reversed part of the transfer and of the fee; returns the seller and the
/// PaymentIntent.
async fn whole_story(h: &Harness) -> (String, String) {
    let (_, account) = h
        .form_post(
            "/v1/accounts",
            None,
            &[
                ("type", "express"),
                ("email", "seller@shop.example"),
                ("business_type", "individual"),
                ("capabilities[card_payments][requested]", "true"),
                ("capabilities[transfers][requested]", "true"),
                ("metadata[seller_id]", "sel_7"),
            ],
        )
        .await;
    assert_shaped_like("account", &account, &[]);
    let seller = account["id"].as_str().unwrap().to_owned();
    let (_, link) = h
        .form_post(
            "/v1/account_links",
            None,
            &[
                ("account", seller.as_str()),
                ("type", "account_onboarding"),
                ("refresh_url", REFRESH_URL),
                ("return_url", RETURN_URL),
            ],
        )
        .await;
    assert_shaped_like("account_link", &link, &[]);
    h.http
        .post(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let pi = h.paid_destination(&seller).await;
    h.sim.refund_reversing(&pi, Some(600), true, true).unwrap();
    (seller, pi)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connect_object_has_the_keys_of_stripes_example() {
    let h = Harness::start().await;
    let (seller, _) = whole_story(&h).await;
    let entry = h.sim.ledger().remove(0);

    let (_, account) = h.api_get(&format!("/v1/accounts/{seller}")).await;
    let (_, login) = h
        .form_post(&format!("/v1/accounts/{seller}/login_links"), None, &[])
        .await;
    let transfer = entry.transfer.unwrap().id;
    let (_, transfer) = h.api_get(&format!("/v1/transfers/{transfer}")).await;
    let fee = entry.application_fee.unwrap().id;
    let (_, fee) = h.api_get(&format!("/v1/application_fees/{fee}")).await;
    let (_, charge) = h.api_get(&format!("/v1/charges/{}", entry.charge)).await;
    let refund = charge["refunds"]["data"][0].clone();

    assert_eq!(account["details_submitted"], true);
    assert_shaped_like("account", &account, &[]);
    assert_shaped_like("login_link", &login, &[]);
    assert_shaped_like("transfer", &transfer, &[]);
    assert_shaped_like("transfer_reversal", &transfer["reversals"]["data"][0], &[]);
    assert_shaped_like("application_fee", &fee, &[]);
    assert_shaped_like("fee_refund", &fee["refunds"]["data"][0], &[]);
    // `transfer` is a charge field Stripe sends on destination charges only.
    assert_shaped_like("charge", &charge, &["transfer"]);
    assert_shaped_like("refund", &refund, &[]);
    assert!(
        refund["transfer_reversal"]
            .as_str()
            .unwrap()
            .starts_with("trr_")
    );
    let plain = h.paid_intent().await;
    let plain = h
        .sim
        .ledger()
        .into_iter()
        .find(|e| e.payment_intent == plain)
        .unwrap();
    let (_, plain) = h.api_get(&format!("/v1/charges/{}", plain.charge)).await;
    assert_shaped_like("charge", &plain, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connect_event_has_stripes_envelope_and_parses_into_its_own_variant() {
    let h = Harness::start().await;
    whole_story(&h).await;
    let expected = [
        ("account.updated", "account"),
        ("charge.succeeded", "charge"),
        ("transfer.created", "transfer"),
        ("application_fee.created", "application_fee"),
        ("charge.refunded", "charge"),
        ("transfer.reversed", "transfer"),
        ("application_fee.refunded", "application_fee"),
    ];

    for (type_, resource) in expected {
        let event = h.last_event(type_);
        let mut envelope = event.clone();
        envelope["data"]["object"] = example("event")["data"]["object"].clone();
        // Stripe's events about a connected account name it, the platform's own do not; an
        // `*.updated` event adds the old values of what changed.
        let extra: &[&str] = if type_ == "account.updated" {
            &["account", "data.previous_attributes"]
        } else {
            &[]
        };
        let differences = key_differences(&example("event"), &envelope);
        let expected: Vec<String> = extra.iter().map(|key| format!(".{key} extra")).collect();
        assert_eq!(differences, expected, "{type_}");
        let object = &event["data"]["object"];
        let charge_extra: &[&str] = if resource == "charge" {
            &["transfer"]
        } else {
            &[]
        };
        assert_shaped_like(resource, object, charge_extra);

        let payload = serde_json::to_string(&event).unwrap();
        let now = chrono::Utc::now().timestamp();
        let parsed = Webhook::construct_event(&payload, &h.sim.sign(&payload, now), OLD)
            .unwrap_or_else(|error| panic!("{type_}: {error:?}"));
        let variant_matches = matches!(
            (type_, &parsed.data.object),
            ("account.updated", EventObject::AccountUpdated(_))
                | ("charge.succeeded", EventObject::ChargeSucceeded(_))
                | ("transfer.created", EventObject::TransferCreated(_))
                | (
                    "application_fee.created",
                    EventObject::ApplicationFeeCreated(_)
                )
                | ("charge.refunded", EventObject::ChargeRefunded(_))
                | ("transfer.reversed", EventObject::TransferReversed(_))
                | (
                    "application_fee.refunded",
                    EventObject::ApplicationFeeRefunded(_)
                )
        );
        assert!(variant_matches, "{type_} parsed as another variant");
    }
    let order: Vec<String> = h
        .event_types()
        .into_iter()
        .filter(|type_| type_ != "checkout.session.completed")
        .collect();
    let expected: Vec<&str> = expected.iter().map(|(type_, _)| *type_).collect();
    assert_eq!(order, expected);
}

const OLD: &str = crate::helpers::OLD_SECRET;

#[test]
fn the_key_comparison_finds_missing_extra_and_nested_keys() {
    let stripe: Value =
        serde_json::json!({ "a": 1, "b": { "c": 1, "d": null }, "e": { "id": "x" } });
    let ours: Value = serde_json::json!({ "a": 1, "b": { "c": 2 }, "e": "x", "f": null });

    assert_eq!(
        key_differences(&stripe, &ours),
        [".f extra", ".b.d missing"]
    );
    assert!(key_differences(&stripe, &stripe).is_empty());
}
