//! Taking a destination charge's money back: a refund's `reverse_transfer` and
//! `refund_application_fee`, or a transfer reversal and a fee refund afterwards.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe::StripeError;
use stripe_connect::application_fee::RetrieveApplicationFee;
use stripe_connect::application_fee_refund::CreateIdApplicationFeeRefund;
use stripe_connect::transfer::RetrieveTransfer;
use stripe_connect::transfer_reversal::CreateIdTransferReversal;
use stripe_core::refund::CreateRefund;
use stripe_shared::{ApplicationFeeId, TransferId};
use stripe_webhook::EventObject;

use crate::connect_helpers::{FEE, verified};
use crate::helpers::Harness;

/// A paid destination charge: its PaymentIntent, transfer and application fee.
async fn paid(h: &Harness) -> (String, TransferId, ApplicationFeeId) {
    let seller = h.onboarded_account().await;
    let pi = h.paid_destination(&seller).await;
    let entry = h.sim.ledger().remove(0);
    let transfer = entry.transfer.unwrap().id;
    let fee = entry.application_fee.unwrap().id;
    (pi, TransferId::from(transfer), ApplicationFeeId::from(fee))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_refund_with_both_flags_reverses_the_whole_transfer_and_refunds_the_whole_fee() {
    let h = Harness::start().await;
    let (pi, transfer_id, fee_id) = paid(&h).await;

    let refund = CreateRefund::new()
        .payment_intent(pi.clone())
        .reverse_transfer(true)
        .refund_application_fee(true)
        .send(&h.client)
        .await
        .unwrap();

    assert_eq!(
        h.event_types()[5..],
        [
            "charge.refunded",
            "transfer.reversed",
            "application_fee.refunded"
        ]
    );
    let reversal_id = refund.transfer_reversal.clone().unwrap().id().clone();
    let transfer = RetrieveTransfer::new(transfer_id)
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!((transfer.amount_reversed, transfer.reversed), (1200, true));
    let reversal = &transfer.reversals.data[0];
    assert_eq!((&reversal.id, reversal.amount), (&reversal_id, 1200));
    assert_eq!(reversal.source_refund.as_ref().unwrap().id(), &refund.id);
    let fee = RetrieveApplicationFee::new(fee_id)
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!((fee.amount_refunded, fee.refunded), (FEE, true));
    assert_eq!(fee.refunds.data[0].amount, FEE);
    let entry = h.sim.ledger().remove(0);
    assert_eq!(entry.amount_refunded, 1200);
    let (sent, kept) = (entry.transfer.unwrap(), entry.application_fee.unwrap());
    assert_eq!(
        sent.amount_reversed, transfer.amount_reversed,
        "ledger and API agree"
    );
    assert_eq!(kept.amount_refunded, fee.amount_refunded);
    let reversed = h.hook.wait_for_type("transfer.reversed").await;
    let EventObject::TransferReversed(object) =
        verified(&reversed[0], "transfer.reversed").data.object
    else {
        panic!("wrong variant");
    };
    assert!(object.reversed);
    let refunded = h.hook.wait_for_type("application_fee.refunded").await;
    let EventObject::ApplicationFeeRefunded(object) =
        verified(&refunded[0], "application_fee.refunded")
            .data
            .object
    else {
        panic!("wrong variant");
    };
    assert!(object.refunded);
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_refunds_with_the_flags_reverse_the_transfer_and_refund_the_fee_in_proportion() {
    let h = Harness::start().await;
    let (pi, _, _) = paid(&h).await;

    let third = h.sim.refund_reversing(&pi, Some(400), true, true).unwrap();
    let cent = h.sim.refund_reversing(&pi, Some(1), true, true).unwrap();
    let rest = h.sim.refund_reversing(&pi, None, true, true).unwrap();

    let (_, reversal) = h.api_get(&format!("/v1/refunds/{}", third.id)).await;
    let reversal_id = reversal["transfer_reversal"].as_str().unwrap().to_owned();
    assert_eq!(Some(reversal_id), third.transfer_reversal);
    assert!(cent.transfer_reversal.is_some());
    assert_eq!(
        cent.fee_refund, None,
        "a cent's share of the fee rounds to nothing"
    );
    assert!(rest.fee_refund.is_some());
    let entry = h.sim.ledger().remove(0);
    let transfer = entry.transfer.unwrap().id;
    let (_, transfer) = h.api_get(&format!("/v1/transfers/{transfer}")).await;
    let amounts: Vec<i64> = transfer["reversals"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reversal| reversal["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [799, 1, 400], "newest first");
    let fee = entry.application_fee.unwrap().id;
    let (_, fee) = h.api_get(&format!("/v1/application_fees/{fee}")).await;
    let amounts: Vec<i64> = fee["refunds"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|refund| refund["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        [120, 60],
        "each its share: 400 → 60, 1 → 0, 799 → 120"
    );
    assert_eq!(
        (fee["amount_refunded"].as_i64(), &fee["refunded"]),
        (Some(FEE), &json!(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_without_flags_reverses_nothing_and_a_later_reversal_and_fee_refund_complete_it() {
    let h = Harness::start().await;
    let (pi, transfer_id, fee_id) = paid(&h).await;

    let refund = CreateRefund::new()
        .payment_intent(pi)
        .send(&h.client)
        .await
        .unwrap();

    assert!(refund.transfer_reversal.is_none());
    assert_eq!(h.event_types().last().unwrap(), "charge.refunded");
    let untouched = h.sim.ledger().remove(0);
    assert_eq!(untouched.transfer.unwrap().amount_reversed, 0);
    assert_eq!(untouched.application_fee.unwrap().amount_refunded, 0);

    let reversal = CreateIdTransferReversal::new(transfer_id.clone())
        .send(&h.client)
        .await
        .unwrap();
    let fee_refund = CreateIdApplicationFeeRefund::new(fee_id.clone())
        .send(&h.client)
        .await
        .unwrap();

    assert_eq!(reversal.amount, 1200);
    assert!(reversal.source_refund.is_none());
    assert_eq!(reversal.transfer.id(), &transfer_id);
    assert_eq!(fee_refund.amount, FEE);
    assert_eq!(fee_refund.fee.id(), &fee_id);
    assert_eq!(
        h.event_types()[5..],
        [
            "charge.refunded",
            "transfer.reversed",
            "application_fee.refunded"
        ]
    );
    let entry = h.sim.ledger().remove(0);
    assert_eq!(entry.transfer.unwrap().amount_reversed, 1200);
    assert_eq!(entry.application_fee.unwrap().amount_refunded, FEE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reversal_or_fee_refund_beyond_what_is_left_is_refused() {
    let h = Harness::start().await;
    let (_, transfer_id, fee_id) = paid(&h).await;
    let client = &h.client;
    let reverse = |amount: Option<i64>| {
        let mut request = CreateIdTransferReversal::new(transfer_id.clone());
        if let Some(amount) = amount {
            request = request.amount(amount);
        }
        async move { request.send(client).await }
    };
    let refund_fee = |amount: i64| {
        let request = CreateIdApplicationFeeRefund::new(fee_id.clone()).amount(amount);
        async move { request.send(client).await }
    };

    assert_eq!(reverse(Some(500)).await.unwrap().amount, 500);
    let too_much = reverse(Some(701)).await.unwrap_err();
    assert_eq!(
        reverse(None).await.unwrap().amount,
        700,
        "the rest by default"
    );
    let nothing_left = reverse(None).await.unwrap_err();
    let fee_too_much = refund_fee(FEE + 1).await.unwrap_err();
    let zero = refund_fee(0).await.unwrap_err();

    for (refused, case) in [
        (too_much, "more than is left"),
        (nothing_left, "nothing left"),
        (fee_too_much, "more than the fee"),
        (zero, "nothing asked"),
    ] {
        let StripeError::Stripe(error, 400) = refused else {
            panic!("{case}: expected a 400, got {refused:?}");
        };
        assert_eq!(
            error.type_,
            stripe_shared::ApiErrorsType::InvalidRequestError,
            "{case}"
        );
    }
    let entry = h.sim.ledger().remove(0);
    assert_eq!(entry.transfer.unwrap().amount_reversed, 1200);
    assert_eq!(entry.application_fee.unwrap().amount_refunded, 0);
    let reversed = h
        .event_types()
        .iter()
        .filter(|t| *t == "transfer.reversed")
        .count();
    assert_eq!(reversed, 2, "the refused ones sent nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn reversals_and_fee_refunds_replay_for_the_same_idempotency_key() {
    let h = Harness::start().await;
    let (_, transfer_id, fee_id) = paid(&h).await;
    let reversals = format!("/v1/transfers/{transfer_id}/reversals");
    let fee_refunds = format!("/v1/application_fees/{fee_id}/refunds");

    let first = h
        .form_post(&reversals, Some("reverse:pur_42"), &[("amount", "300")])
        .await;
    let again = h
        .form_post(&reversals, Some("reverse:pur_42"), &[("amount", "300")])
        .await;
    let other = h
        .form_post(&reversals, Some("reverse:pur_42"), &[("amount", "301")])
        .await;
    let fee_first = h.form_post(&fee_refunds, Some("fee:pur_42"), &[]).await;
    let fee_again = h.form_post(&fee_refunds, Some("fee:pur_42"), &[]).await;

    assert_eq!(first, again);
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(other.0, StatusCode::BAD_REQUEST);
    assert_eq!(other.1["error"]["type"], "idempotency_error");
    assert_eq!(fee_first, fee_again);
    assert_eq!(fee_first.1["amount"], FEE);
    let entry = h.sim.ledger().remove(0);
    assert_eq!(
        entry.transfer.unwrap().amount_reversed,
        300,
        "reversed once"
    );
    assert_eq!(entry.application_fee.unwrap().amount_refunded, FEE);
    let replayed: Vec<bool> = h.sim.calls().iter().map(|call| call.replayed).collect();
    assert_eq!(replayed.iter().filter(|r| **r).count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reversal_can_refund_the_fee_in_proportion_and_unknown_ids_are_404s() {
    let h = Harness::start().await;
    let (_, transfer_id, fee_id) = paid(&h).await;

    let half = CreateIdTransferReversal::new(transfer_id.clone())
        .amount(600)
        .refund_application_fee(true)
        .send(&h.client)
        .await
        .unwrap();

    assert_eq!(half.amount, 600);
    let fee = RetrieveApplicationFee::new(fee_id)
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(fee.amount_refunded, FEE / 2);
    for path in ["/v1/transfers/tr_x", "/v1/application_fees/fee_x"] {
        let (status, body) = h.api_get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "resource_missing");
    }
    let (status, _) = h.form_post("/v1/transfers/tr_x/reversals", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .form_post("/v1/application_fees/fee_x/refunds", None, &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_refund_control_leaves_the_money_with_the_seller_unless_given_the_flags() {
    let h = Harness::start().await;
    let (pi, _, _) = paid(&h).await;

    let plain: Value = h
        .control_post("/refund", &json!({ "payment_intent": pi, "amount": 200 }))
        .await
        .json()
        .await
        .unwrap();
    let flagged: Value = h
        .control_post(
            "/refund",
            &json!({
                "payment_intent": pi,
                "amount": 600,
                "reverse_transfer": true,
                "refund_application_fee": true,
            }),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(plain["transfer_reversal"], Value::Null);
    assert!(
        flagged["transfer_reversal"]
            .as_str()
            .unwrap()
            .starts_with("trr_")
    );
    assert!(flagged["fee_refund"].as_str().unwrap().starts_with("fr_"));
    let ledger: Vec<sandbox::stripe::SimLedgerEntry> = h.control_get("/ledger").await;
    assert_eq!(ledger, h.sim.ledger());
    let transfer = ledger[0].transfer.clone().unwrap();
    assert_eq!(transfer.amount_reversed, 600);
    assert_eq!(
        ledger[0].application_fee.clone().unwrap().amount_refunded,
        90
    );
}
