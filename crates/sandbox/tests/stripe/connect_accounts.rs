//! Express accounts: creation through async-stripe, login links and the Express dashboard,
//! disabling and enabling with the `account.updated` events they send, and the controls over
//! HTTP. Onboarding is in `connect_onboarding`.

use reqwest::StatusCode;
use sandbox::stripe::SimAccount;
use serde_json::{Value, json};
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_connect::account::RetrieveAccount;
use stripe_connect::login_link::CreateAccountLoginLink;
use stripe_connect::{AccountCapabilitiesStatus, AccountRequirementsDisabledReason, AccountType};

use crate::connect_helpers::account_request;
use crate::helpers::Harness;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_express_account_can_do_nothing_until_onboarded_and_reads_back_the_same() {
    let h = Harness::start().await;
    let keyed = || {
        account_request("seller@shop.example")
            .customize()
            .request_strategy(RequestStrategy::Idempotent(
                IdempotencyKey::new("seller:sel_7").unwrap(),
            ))
            .send(&h.client)
    };

    let account = keyed().await.unwrap();
    let replayed = keyed().await.unwrap();

    assert_eq!(replayed.id, account.id, "the idempotency key replays");
    assert!(account.id.as_str().starts_with("acct_1"));
    assert_eq!(account.type_, Some(AccountType::Express));
    assert_eq!(account.email.as_deref(), Some("seller@shop.example"));
    assert_eq!(account.country.as_deref(), Some("US"));
    assert_eq!(
        (account.charges_enabled, account.payouts_enabled),
        (Some(false), Some(false))
    );
    assert_eq!(account.details_submitted, Some(false));
    let capabilities = account.capabilities.clone().unwrap();
    assert_eq!(
        capabilities.transfers,
        Some(AccountCapabilitiesStatus::Inactive)
    );
    assert_eq!(
        capabilities.card_payments,
        Some(AccountCapabilitiesStatus::Inactive)
    );
    let requirements = account.requirements.clone().unwrap();
    assert!(!requirements.currently_due.unwrap().is_empty());
    assert_eq!(
        requirements.disabled_reason,
        Some(AccountRequirementsDisabledReason::RequirementsPastDue)
    );
    assert_eq!(account.metadata.clone().unwrap()["seller_id"], "sel_7");
    let read = RetrieveAccount::new(account.id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(read.id, account.id);
    assert_eq!(read.requirements, account.requirements);
    assert_eq!(
        h.sim.accounts(),
        [SimAccount {
            id: account.id.to_string(),
            email: Some("seller@shop.example".to_owned()),
            charges_enabled: false,
            payouts_enabled: false,
            details_submitted: false,
        }]
    );
    assert!(
        h.sim.events().is_empty(),
        "creating an account sends nothing"
    );
    let (status, missing) = h.api_get("/v1/accounts/acct_x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "resource_missing");
    assert_eq!(missing["error"]["message"], "No such account: 'acct_x'");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_link_is_refused_before_onboarding_and_opens_the_express_dashboard_after() {
    let h = Harness::start().await;
    let account = h.create_account("seller@shop.example").await;

    let refused = CreateAccountLoginLink::new(account.id.clone())
        .send(&h.client)
        .await
        .unwrap_err();

    let StripeError::Stripe(error, 400) = refused else {
        panic!("expected a 400, got {refused:?}");
    };
    assert_eq!(
        error.message.as_deref(),
        Some("Cannot create a login link for an account that has not completed onboarding.")
    );
    h.sim.complete_onboarding(account.id.as_str()).unwrap();
    let link = CreateAccountLoginLink::new(account.id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(
        link.url,
        format!("{}connect/express/{}", h.sim.base_url(), account.id)
    );
    let page = h.http.get(&link.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(account.id.as_str()) && html.contains("Payouts enabled"));
    assert!(
        html.contains("<strong id=\"balance\">$0.00</strong>"),
        "{html}"
    );
    let missing = h
        .http
        .get(h.url("/connect/express/acct_x"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let unknown = CreateAccountLoginLink::new("acct_x").send(&h.client).await;
    assert!(matches!(unknown, Err(StripeError::Stripe(_, 404))));
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_and_enabling_an_account_send_account_updated_with_the_old_values() {
    let h = Harness::start().await;
    let id = h.onboarded_account().await;

    let disabled = h.sim.set_account_enabled(&id, false).unwrap();

    assert!(!disabled.charges_enabled && !disabled.payouts_enabled && disabled.details_submitted);
    let event = h.last_event("account.updated");
    assert_eq!(event["account"], id.as_str());
    let object = &event["data"]["object"];
    assert_eq!(object["requirements"]["disabled_reason"], "rejected.other");
    assert_eq!(object["capabilities"]["transfers"], "inactive");
    let previous = &event["data"]["previous_attributes"];
    assert_eq!(previous["charges_enabled"], true);
    assert_eq!(previous["capabilities"]["transfers"], "active");
    let page = h
        .http
        .get(h.url(&format!("/connect/express/{id}")))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("Disabled by Stripe"));

    let enabled = h
        .control_post(
            &format!("/accounts/{id}/enabled"),
            &json!({ "enabled": true }),
        )
        .await;

    assert_eq!(enabled.status(), StatusCode::OK);
    let enabled: SimAccount = enabled.json().await.unwrap();
    assert!(enabled.charges_enabled && enabled.payouts_enabled);
    let previous = &h.last_event("account.updated")["data"]["previous_attributes"];
    assert_eq!(
        previous["requirements"]["disabled_reason"],
        "rejected.other"
    );
    let before = h.sim.events().len();
    h.sim.set_account_enabled(&id, true).unwrap();
    h.sim.complete_onboarding(&id).unwrap();
    assert_eq!(h.sim.events().len(), before, "no change, no event");
    assert_eq!(
        h.event_types(),
        ["account.updated", "account.updated", "account.updated"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_listed_onboarded_and_refused_over_http() {
    let h = Harness::start().await;
    let account = h.create_account("seller@shop.example").await;
    let id = account.id.as_str();

    let onboarded = h
        .control_post(&format!("/accounts/{id}/onboarding"), &json!({}))
        .await;

    assert_eq!(onboarded.status(), StatusCode::OK);
    let onboarded: SimAccount = onboarded.json().await.unwrap();
    assert!(onboarded.details_submitted && onboarded.charges_enabled);
    let listed: Vec<SimAccount> = h.control_get("/accounts").await;
    assert_eq!(listed, h.sim.accounts());
    let one: SimAccount = h.control_get(&format!("/accounts/{id}")).await;
    assert_eq!(one, onboarded);
    let unknown = h
        .control_post("/accounts/acct_x/onboarding", &json!({}))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "unknown_account");
    let bad = h
        .control_post(&format!("/accounts/{id}/enabled"), &json!({}))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let ledger: Vec<Value> = h.control_get("/ledger").await;
    assert!(ledger.is_empty(), "no charge yet");
}

#[tokio::test(flavor = "multi_thread")]
async fn account_creation_refuses_what_stripe_or_the_simulator_would_not_take() {
    let h = Harness::start().await;
    let base = [
        ("type", "express"),
        ("capabilities[transfers][requested]", "true"),
    ];
    let plus = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut form: Vec<_> = base.to_vec();
        form.extend_from_slice(extra);
        form
    };

    for (form, param) in [
        (vec![("capabilities[transfers][requested]", "true")], "type"),
        (
            vec![
                ("type", "standard"),
                ("capabilities[transfers][requested]", "true"),
            ],
            "type",
        ),
        (vec![("type", "express")], "capabilities"),
        (
            plus(&[("capabilities[card_payments][requested]", "maybe")]),
            "capabilities[card_payments][requested]",
        ),
        (plus(&[("email", "not-an-email")]), "email"),
        (plus(&[("business_type", "cooperative")]), "business_type"),
        (plus(&[("country", "USA")]), "country"),
    ] {
        let (status, body) = h.form_post("/v1/accounts", None, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    let (status, body) = h.form_post("/v1/accounts", None, &base).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["country"], "US");
    assert_eq!(body["capabilities"], json!({ "transfers": "inactive" }));
    assert!(h.sim.accounts().len() == 1, "refusals create nothing");
}
