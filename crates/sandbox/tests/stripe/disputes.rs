//! A dispute's whole life, as Stripe tells it: chargebacks and inquiries, escalation, won, lost,
//! with every event's `data.object` a dispute async-stripe parses.

use chrono::Utc;
use reqwest::StatusCode;
use sandbox::stripe::{DisputeOutcome, DisputeStatus, SimDispute, SimError};
use serde_json::{Value, json};
use stripe_shared::{Dispute, DisputePaymentMethodDetailsCardCaseType};
use stripe_webhook::{Event, EventObject, Webhook};

use crate::helpers::{Harness, NEW_SECRET, OLD_SECRET, verify};

/// The types of the events emitted so far, oldest first.
fn types(h: &Harness) -> Vec<String> {
    h.sim
        .events()
        .into_iter()
        .map(|event| event.type_)
        .collect()
}

/// The last event of `type_`, parsed by async-stripe as a receiver would (signed now), and its
/// raw JSON.
fn last_event(h: &Harness, type_: &str) -> (Event, Value) {
    let event = h
        .sim
        .events()
        .into_iter()
        .rev()
        .find(|event| event.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} event"));
    let header = h.sim.sign(&event.payload, Utc::now().timestamp());
    let parsed = Webhook::construct_event(&event.payload, &header, OLD_SECRET).unwrap();
    (parsed, serde_json::from_str(&event.payload).unwrap())
}

/// The dispute the last event of `type_` carries, parsed as one of the dispute variants.
fn dispute_in(h: &Harness, type_: &str) -> Dispute {
    let (event, _) = last_event(h, type_);
    assert_eq!(event.type_.as_str(), type_);
    match event.data.object {
        EventObject::ChargeDisputeCreated(dispute)
        | EventObject::ChargeDisputeUpdated(dispute)
        | EventObject::ChargeDisputeClosed(dispute)
        | EventObject::ChargeDisputeFundsWithdrawn(dispute)
        | EventObject::ChargeDisputeFundsReinstated(dispute) => *dispute,
        other => panic!("{type_} parsed as {other:?}"),
    }
}

fn case_type(dispute: &Dispute) -> DisputePaymentMethodDetailsCardCaseType {
    dispute
        .payment_method_details
        .clone()
        .and_then(|details| details.card)
        .map(|card| card.case_type)
        .unwrap()
}

const PAID: &str = "checkout.session.completed";
/// Sent right after [`PAID`] for every charge that succeeds.
const SUCCEEDED: &str = "charge.succeeded";

#[tokio::test(flavor = "multi_thread")]
async fn a_chargeback_withdraws_the_funds_after_announcing_the_dispute() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let opened = h.sim.dispute(&pi).unwrap();

    assert_eq!(opened.status, DisputeStatus::NeedsResponse);
    assert_eq!(
        types(&h),
        [
            PAID,
            SUCCEEDED,
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn"
        ]
    );
    let delivered = h.hook.wait_for_type("charge.dispute.funds_withdrawn").await;
    let event = verify(&delivered[0], NEW_SECRET);
    let EventObject::ChargeDisputeFundsWithdrawn(withdrawn) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(withdrawn.id.as_str(), opened.id);
    assert_eq!(
        withdrawn.status,
        stripe_shared::DisputeStatus::NeedsResponse
    );
    assert!(!withdrawn.is_charge_refundable);
    assert_eq!(
        case_type(&withdrawn),
        DisputePaymentMethodDetailsCardCaseType::Chargeback
    );
    let withdrawal = &withdrawn.balance_transactions[0];
    assert_eq!(withdrawn.balance_transactions.len(), 1);
    assert_eq!((withdrawal.amount, withdrawal.fee), (-1200, 1500));
    assert_eq!(withdrawal.net, -2700);
    assert!(matches!(
        h.sim.refund(&pi, None),
        Err(SimError::Disputed(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inquiry_moves_no_money_and_leaves_the_charge_refundable() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let inquiry = h.sim.dispute_inquiry(&pi).unwrap();

    assert_eq!(inquiry.status, DisputeStatus::WarningNeedsResponse);
    assert_eq!(types(&h), [PAID, SUCCEEDED, "charge.dispute.created"]);
    let created = dispute_in(&h, "charge.dispute.created");
    assert_eq!(
        created.status,
        stripe_shared::DisputeStatus::WarningNeedsResponse
    );
    assert!(created.is_charge_refundable);
    assert!(created.balance_transactions.is_empty());
    assert_eq!(
        case_type(&created),
        DisputePaymentMethodDetailsCardCaseType::Inquiry
    );
    assert!(h.sim.dispute(&pi).is_err(), "one dispute per charge");
    let refund = h.sim.refund(&pi, Some(200)).unwrap();
    assert_eq!(refund.charge_amount_refunded, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escalated_inquiry_is_updated_to_a_chargeback_naming_its_old_status() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;
    let inquiry = h.sim.dispute_inquiry(&pi).unwrap();

    let escalated = h.sim.escalate_dispute(&inquiry.id).unwrap();

    assert_eq!(escalated.status, DisputeStatus::NeedsResponse);
    assert_eq!(
        types(&h),
        [
            PAID,
            SUCCEEDED,
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.funds_withdrawn"
        ]
    );
    let (event, raw) = last_event(&h, "charge.dispute.updated");
    let previous = &raw["data"]["previous_attributes"];
    assert_eq!(previous["status"], "warning_needs_response");
    assert_eq!(previous["is_charge_refundable"], true);
    assert_eq!(previous["balance_transactions"], json!([]));
    assert!(previous.get("id").is_none(), "only what changed");
    assert!(event.data.previous_attributes.is_some());
    let EventObject::ChargeDisputeUpdated(updated) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(updated.status, stripe_shared::DisputeStatus::NeedsResponse);
    assert_eq!(
        case_type(&updated),
        DisputePaymentMethodDetailsCardCaseType::Chargeback
    );
    let withdrawn = dispute_in(&h, "charge.dispute.funds_withdrawn");
    assert_eq!(withdrawn.balance_transactions[0].amount, -1200);
    assert!(matches!(
        h.sim.refund(&pi, None),
        Err(SimError::Disputed(_))
    ));
    assert!(matches!(
        h.sim.escalate_dispute(&inquiry.id),
        Err(SimError::DisputeNotInquiry { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_won_chargeback_reinstates_the_funds_and_the_charge_can_be_refunded() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;
    let dispute = h.sim.dispute(&pi).unwrap();

    let won = h
        .sim
        .close_dispute(&dispute.id, DisputeOutcome::Won)
        .unwrap();

    assert_eq!(won.status, DisputeStatus::Won);
    assert_eq!(
        types(&h)[4..],
        ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    );
    let closed = dispute_in(&h, "charge.dispute.closed");
    assert_eq!(closed.status, stripe_shared::DisputeStatus::Won);
    let reinstated = dispute_in(&h, "charge.dispute.funds_reinstated");
    let amounts: Vec<i64> = reinstated
        .balance_transactions
        .iter()
        .map(|txn| txn.amount)
        .collect();
    assert_eq!(amounts, [-1200, 1200]);
    assert!(reinstated.is_charge_refundable);
    assert_eq!(h.sim.refund(&pi, None).unwrap().amount, 1200);
    assert!(matches!(
        h.sim.close_dispute(&dispute.id, DisputeOutcome::Won),
        Err(SimError::DisputeClosed {
            status: DisputeStatus::Won,
            ..
        })
    ));
    assert!(matches!(
        h.sim.escalate_dispute(&dispute.id),
        Err(SimError::DisputeClosed { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_chargeback_closes_without_giving_the_funds_back() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;
    let dispute = h.sim.dispute(&pi).unwrap();

    let lost = h
        .sim
        .close_dispute(&dispute.id, DisputeOutcome::Lost)
        .unwrap();

    assert_eq!(lost.status, DisputeStatus::Lost);
    assert_eq!(types(&h).last().unwrap(), "charge.dispute.closed");
    assert_eq!(types(&h).len(), 5);
    let closed = dispute_in(&h, "charge.dispute.closed");
    assert_eq!(closed.status, stripe_shared::DisputeStatus::Lost);
    assert_eq!(closed.balance_transactions.len(), 1);
    assert!(!closed.is_charge_refundable);
    assert!(matches!(
        h.sim.refund(&pi, None),
        Err(SimError::Disputed(_))
    ));
    assert!(
        h.sim
            .close_dispute(&dispute.id, DisputeOutcome::Lost)
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inquiry_closes_as_warning_closed_whatever_the_outcome() {
    let h = Harness::start().await;
    for outcome in [DisputeOutcome::Won, DisputeOutcome::Lost] {
        let pi = h.paid_intent().await;
        let inquiry = h.sim.dispute_inquiry(&pi).unwrap();

        let closed = h.sim.close_dispute(&inquiry.id, outcome).unwrap();

        assert_eq!(closed.status, DisputeStatus::WarningClosed);
        assert_eq!(types(&h).last().unwrap(), "charge.dispute.closed");
        let object = dispute_in(&h, "charge.dispute.closed");
        assert_eq!(object.status, stripe_shared::DisputeStatus::WarningClosed);
        assert!(object.balance_transactions.is_empty());
        assert!(matches!(
            h.sim.close_dispute(&inquiry.id, outcome),
            Err(SimError::DisputeClosed { .. })
        ));
        assert!(h.sim.refund(&pi, None).is_ok());
    }
    assert!(!types(&h).iter().any(|t| t.contains("funds_")));
    assert!(matches!(
        h.sim.close_dispute("dp_1nothing", DisputeOutcome::Won),
        Err(SimError::UnknownDispute(_))
    ));
    assert!(matches!(
        h.sim.escalate_dispute("dp_1nothing"),
        Err(SimError::UnknownDispute(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inquiry_refunded_in_full_escalates_without_withdrawing_anything() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;
    let inquiry = h.sim.dispute_inquiry(&pi).unwrap();
    h.sim.refund(&pi, None).unwrap();

    h.sim.escalate_dispute(&inquiry.id).unwrap();
    h.sim
        .close_dispute(&inquiry.id, DisputeOutcome::Won)
        .unwrap();

    assert_eq!(
        types(&h)[3..],
        [
            "charge.refunded",
            "charge.dispute.updated",
            "charge.dispute.closed"
        ]
    );
    assert!(
        dispute_in(&h, "charge.dispute.closed")
            .balance_transactions
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispute_lifecycle_can_be_driven_over_http() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let opened = h
        .control_post(
            "/dispute",
            &json!({ "payment_intent": pi, "inquiry": true }),
        )
        .await;
    let opened: SimDispute = opened.json().await.unwrap();
    assert_eq!(opened.status, DisputeStatus::WarningNeedsResponse);
    let path = format!("/disputes/{}", opened.id);
    let escalated: SimDispute = h
        .control_post(&format!("{path}/escalate"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(escalated.status, DisputeStatus::NeedsResponse);
    let won = h
        .control_post(&format!("{path}/close"), &json!({ "outcome": "won" }))
        .await;
    assert_eq!(won.status(), StatusCode::OK);
    let won: Value = won.json().await.unwrap();
    assert_eq!(won["status"], "won");
    let seen: SimDispute = h.control_get(&path).await;
    assert_eq!(seen.status, DisputeStatus::Won);

    let again = h
        .control_post(&format!("{path}/close"), &json!({ "outcome": "lost" }))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "dispute_closed");
    let unknown = h
        .control_post("/disputes/dp_1nothing/close", &json!({ "outcome": "won" }))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "unknown_dispute");
    let bad = h
        .control_post(&format!("{path}/close"), &json!({ "outcome": "drawn" }))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
