//! Destination charges: Checkout Sessions that pay a connected account and keep an application
//! fee, refused for destinations that cannot be paid, and the transfer and fee a payment makes.

use reqwest::StatusCode;
use sandbox::stripe::{SessionStatus, SimError};
use stripe::StripeError;
use stripe_connect::application_fee::RetrieveApplicationFee;
use stripe_connect::transfer::RetrieveTransfer;
use stripe_core::charge::RetrieveCharge;
use stripe_webhook::EventObject;

use crate::connect_helpers::{FEE, verified};
use crate::helpers::Harness;

const DESTINATION: &str = "payment_intent_data[transfer_data][destination]";
const FEE_PARAM: &str = "payment_intent_data[application_fee_amount]";

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_session_is_refused_for_a_destination_that_cannot_be_paid_or_a_bad_fee() {
    let h = Harness::start().await;
    let ready = h.onboarded_account().await;
    let new = h.create_account("new@shop.example").await.id.to_string();
    let disabled = h.onboarded_account().await;
    h.sim.set_account_enabled(&disabled, false).unwrap();
    let inactive = "Your destination account needs to have at least one of the following \
                    capabilities enabled: transfers, crypto_transfers, legacy_payments";

    for (account, fee, param, code, message, case) in [
        (
            "acct_1nobody",
            None,
            DESTINATION,
            Some("resource_missing"),
            None,
            "unknown",
        ),
        (
            new.as_str(),
            None,
            DESTINATION,
            Some("insufficient_capabilities_for_transfer"),
            Some(inactive),
            "not onboarded",
        ),
        (
            disabled.as_str(),
            None,
            DESTINATION,
            Some("insufficient_capabilities_for_transfer"),
            Some(inactive),
            "disabled",
        ),
        (
            ready.as_str(),
            Some(1201),
            FEE_PARAM,
            None,
            None,
            "a fee above the $12.00 total",
        ),
        (
            ready.as_str(),
            Some(-1),
            FEE_PARAM,
            None,
            None,
            "a negative fee",
        ),
    ] {
        let refused = h.destination_session(account, fee).await.unwrap_err();

        let StripeError::Stripe(error, 400) = refused else {
            panic!("{case}: expected a 400, got {refused:?}");
        };
        assert_eq!(error.param.as_deref(), Some(param), "{case}");
        let error_code = error.code.as_ref().map(|code| code.as_str().to_owned());
        assert_eq!(error_code.as_deref(), code, "{case}");
        if let Some(message) = message {
            assert_eq!(error.message.as_deref(), Some(message), "{case}");
        }
    }
    let (status, body) = h
        .form_post(
            "/v1/checkout/sessions",
            None,
            &[
                ("mode", "payment"),
                ("line_items[0][price_data][currency]", "usd"),
                ("line_items[0][price_data][unit_amount]", "1200"),
                ("line_items[0][price_data][product_data][name]", "Snippet"),
                ("line_items[0][quantity]", "1"),
                (FEE_PARAM, "100"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a fee without a destination"
    );
    assert_eq!(body["error"]["param"], FEE_PARAM);
    assert!(h.sim.sessions().is_empty(), "nothing was created");
    assert!(
        h.destination_session(&ready, Some(1200)).await.is_ok(),
        "a fee of it all"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_destination_session_transfers_the_whole_amount_and_collects_the_fee_back() {
    let h = Harness::start().await;
    let seller = h.onboarded_account().await;
    let session = h.destination_session(&seller, Some(FEE)).await.unwrap();

    assert_eq!(h.press_pay(&session).await.status(), StatusCode::SEE_OTHER);

    assert_eq!(
        h.event_types()[1..],
        [
            "checkout.session.completed",
            "charge.succeeded",
            "transfer.created",
            "application_fee.created"
        ]
    );
    let pi = h.payment_intent(&session);
    let charge_id = h.sim.session(session.id.as_str()).unwrap().charge.unwrap();
    let charge = RetrieveCharge::new(charge_id.clone())
        .send(&h.client)
        .await
        .unwrap();
    let transfer_data = charge.transfer_data.clone().unwrap();
    assert_eq!(transfer_data.destination.id().as_str(), seller);
    assert_eq!(transfer_data.amount, None);
    assert_eq!(charge.application_fee_amount, Some(FEE));
    assert_eq!(
        charge.transfer_group.as_deref(),
        Some(format!("group_{pi}").as_str())
    );
    assert!(charge.on_behalf_of.is_none());
    let transfer_id = charge.transfer.clone().unwrap().id().clone();
    let fee_id = charge.application_fee.clone().unwrap().id().clone();
    let transfer = RetrieveTransfer::new(transfer_id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(
        transfer.amount, charge.amount,
        "the whole charge is transferred"
    );
    assert_eq!(transfer.destination.unwrap().id().as_str(), seller);
    assert_eq!(
        transfer.source_transaction.unwrap().id().as_str(),
        charge_id
    );
    let destination_payment = transfer.destination_payment.unwrap().id().to_string();
    assert!(destination_payment.starts_with("py_"));
    assert!(transfer.reversals.data.is_empty() && !transfer.reversed);
    assert_eq!(transfer.transfer_group, charge.transfer_group);
    let fee = RetrieveApplicationFee::new(fee_id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(
        (fee.amount, fee.amount_refunded, fee.refunded),
        (FEE, 0, false)
    );
    assert_eq!(fee.account.id().as_str(), seller);
    assert_eq!(
        fee.charge.id().as_str(),
        destination_payment,
        "taken from the seller's payment"
    );
    assert_eq!(
        fee.originating_transaction.unwrap().id().as_str(),
        charge_id
    );
    assert!(fee.application.id().as_str().starts_with("ca_"));

    let ledger = h.sim.ledger();
    assert_eq!(ledger.len(), 1);
    let entry = &ledger[0];
    assert_eq!(
        (entry.payment_intent.as_str(), entry.amount),
        (pi.as_str(), 1200)
    );
    assert_eq!(entry.destination.as_deref(), Some(seller.as_str()));
    let (sent, kept) = (
        entry.transfer.clone().unwrap(),
        entry.application_fee.clone().unwrap(),
    );
    assert_eq!(
        (sent.id.as_str(), sent.amount),
        (transfer_id.as_str(), 1200)
    );
    assert_eq!((kept.id.as_str(), kept.amount), (fee_id.as_str(), FEE));
    assert_eq!(
        sent.amount - kept.amount,
        1020,
        "the seller nets the transfer less the fee"
    );
    let dashboard = h
        .http
        .get(h.url(&format!("/connect/express/{seller}")))
        .send()
        .await
        .unwrap();
    let html = dashboard.text().await.unwrap();
    assert!(
        html.contains("<strong id=\"balance\">$10.20</strong>"),
        "{html}"
    );
    assert!(html.contains(transfer_id.as_str()) && html.contains(fee_id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_destination_session_sends_signed_charge_transfer_and_fee_events() {
    let h = Harness::start().await;
    let seller = h.onboarded_account().await;

    h.paid_destination(&seller).await;

    let entry = h.sim.ledger().remove(0);
    let transfer_id = entry.transfer.unwrap().id;
    let succeeded = verified(
        &h.hook.wait_for_type("charge.succeeded").await[0],
        "charge.succeeded",
    );
    let EventObject::ChargeSucceeded(object) = succeeded.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.transfer.unwrap().id(), &transfer_id);
    let created = verified(
        &h.hook.wait_for_type("transfer.created").await[0],
        "transfer.created",
    );
    let EventObject::TransferCreated(object) = created.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.amount, 1200);
    assert_eq!(created.account, None, "a platform event");
    let collected = h.hook.wait_for_type("application_fee.created").await;
    let EventObject::ApplicationFeeCreated(object) =
        verified(&collected[0], "application_fee.created")
            .data
            .object
    else {
        panic!("wrong variant");
    };
    assert_eq!(object.amount, FEE);
}

#[tokio::test(flavor = "multi_thread")]
async fn paying_is_refused_while_the_destination_is_disabled_and_the_session_stays_open() {
    let h = Harness::start().await;
    let seller = h.onboarded_account().await;
    let session = h.destination_session(&seller, Some(FEE)).await.unwrap();
    h.sim.set_account_enabled(&seller, false).unwrap();

    let refused = h.sim.pay(session.id.as_str());
    let page = h.press_pay(&session).await;

    assert_eq!(refused, Err(SimError::DestinationInactive(seller.clone())));
    assert_eq!(page.status(), StatusCode::CONFLICT);
    assert!(page.text().await.unwrap().contains("Nothing was charged"));
    let view = h.sim.session(session.id.as_str()).unwrap();
    assert_eq!(view.status, SessionStatus::Open);
    assert!(h.sim.ledger().is_empty());
    assert_eq!(h.event_types(), ["account.updated", "account.updated"]);
    h.sim.set_account_enabled(&seller, true).unwrap();
    assert!(
        h.sim.pay(session.id.as_str()).is_ok(),
        "paid once enabled again"
    );
    assert!(h.sim.ledger()[0].transfer.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bank_debit_destination_charge_pays_the_seller_once_it_settles() {
    let h = Harness::start().await;
    let seller = h.onboarded_account().await;
    let session = h.destination_session(&seller, Some(FEE)).await.unwrap();

    h.sim.pay_delayed(session.id.as_str()).unwrap();
    let pending = h.sim.ledger().remove(0);
    h.sim.settle(session.id.as_str(), true).unwrap();

    assert_eq!(pending.destination.as_deref(), Some(seller.as_str()));
    assert!(pending.transfer.is_none() && pending.application_fee.is_none());
    let settled = h.sim.ledger().remove(0);
    assert_eq!(settled.transfer.unwrap().amount, 1200);
    assert_eq!(settled.application_fee.unwrap().amount, FEE);
    assert_eq!(
        h.event_types()[1..],
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "charge.succeeded",
            "transfer.created",
            "application_fee.created"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_charge_without_a_destination_sends_charge_succeeded_and_moves_nothing_even_when_asked() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let refund = h.sim.refund_reversing(&pi, None, true, true).unwrap();

    assert_eq!(
        h.event_types(),
        [
            "checkout.session.completed",
            "charge.succeeded",
            "charge.refunded"
        ]
    );
    let succeeded = verified(
        &h.hook.wait_for_type("charge.succeeded").await[0],
        "charge.succeeded",
    );
    let EventObject::ChargeSucceeded(charge) = succeeded.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(charge.amount, 1200);
    assert!(charge.transfer.is_none() && charge.transfer_data.is_none());
    assert!(charge.application_fee.is_none() && charge.transfer_group.is_none());
    assert_eq!((refund.transfer_reversal, refund.fee_refund), (None, None));
    let entry = h.sim.ledger().remove(0);
    assert_eq!((entry.amount, entry.amount_refunded), (1200, 1200));
    assert_eq!(entry.destination, None);
    assert!(entry.transfer.is_none() && entry.application_fee.is_none());
}
