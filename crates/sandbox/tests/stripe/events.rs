//! Every event type the simulator emits verifies and parses with async-stripe-webhook into the
//! right `EventObject` variant, with the envelope Stripe sends.

use sandbox::stripe::API_VERSION;
use serde_json::Value;
use stripe_shared::{CheckoutSessionPaymentStatus, CheckoutSessionStatus, DisputeStatus};
use stripe_webhook::{Event, EventObject};

use crate::helpers::{Harness, NEW_SECRET, OLD_SECRET, verify};

/// Waits for the delivery of `type_` and checks it under both secrets.
async fn delivered(h: &Harness, type_: &str) -> Event {
    let deliveries = h.hook.wait_for_type(type_).await;
    let delivery = deliveries.last().unwrap();
    let event = verify(delivery, OLD_SECRET);
    assert_eq!(verify(delivery, NEW_SECRET).id, event.id);
    assert_eq!(event.type_.as_str(), type_);
    event
}

#[test]
fn events_are_rendered_in_the_api_version_async_stripe_was_built_for() {
    assert_eq!(API_VERSION, stripe_shared::version::VERSION.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_envelope_is_stripes() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    h.sim.pay(session.id.as_str()).unwrap();

    let event = delivered(&h, "checkout.session.completed").await;

    assert!(event.id.as_str().starts_with("evt_"));
    assert!(!event.livemode);
    assert_eq!(event.pending_webhooks, 1);
    assert_eq!(event.api_version, Some(stripe_shared::version::VERSION));
    let request = event.request.unwrap();
    assert_eq!(request.id, None, "a buyer's payment has no API request");
    assert_eq!(request.idempotency_key, None);
    let raw = h.hook.received()[0].body.clone();
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["object"], "event");
    assert_eq!(body["data"]["object"]["object"], "checkout.session");
    // The delivered bytes are exactly the recorded event.
    assert_eq!(h.sim.events()[0].payload, raw);
    assert_eq!(h.sim.events()[0].id, event.id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_payment_completes_unpaid_then_succeeds() {
    let h = Harness::start().await;
    let session = h.create_session().await;

    let view = h.sim.pay_delayed(session.id.as_str()).unwrap();
    assert_eq!(view.payment_status, sandbox::stripe::PaymentStatus::Unpaid);
    let completed = delivered(&h, "checkout.session.completed").await;
    let EventObject::CheckoutSessionCompleted(object) = completed.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(object.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert!(
        h.sim
            .refund(view.payment_intent.as_deref().unwrap(), None)
            .is_err()
    );

    let settled = h.sim.settle(session.id.as_str(), true).unwrap();
    assert_eq!(settled.payment_status, sandbox::stripe::PaymentStatus::Paid);
    let event = delivered(&h, "checkout.session.async_payment_succeeded").await;
    let EventObject::CheckoutSessionAsyncPaymentSucceeded(object) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.id, session.id);
    assert_eq!(object.payment_status, CheckoutSessionPaymentStatus::Paid);
    assert!(matches!(
        h.sim.settle(session.id.as_str(), true),
        Err(sandbox::stripe::SimError::NotAwaitingSettlement(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_payment_can_fail() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    h.sim.pay_delayed(session.id.as_str()).unwrap();

    let view = h.sim.settle(session.id.as_str(), false).unwrap();

    assert_eq!(view.payment_status, sandbox::stripe::PaymentStatus::Unpaid);
    let event = delivered(&h, "checkout.session.async_payment_failed").await;
    let EventObject::CheckoutSessionAsyncPaymentFailed(object) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert!(
        h.sim
            .refund(view.payment_intent.as_deref().unwrap(), None)
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_sends_checkout_session_expired() {
    let h = Harness::start().await;
    let session = h.create_session().await;

    h.sim.expire(session.id.as_str()).unwrap();

    let event = delivered(&h, "checkout.session.expired").await;
    let EventObject::CheckoutSessionExpired(object) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.status, Some(CheckoutSessionStatus::Expired));
    assert!(object.url.is_none());
    assert!(h.sim.pay(session.id.as_str()).is_err());
    assert!(h.sim.expire(session.id.as_str()).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_send_charge_refunded_with_cumulative_amounts() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let partial = h.sim.refund(&pi, Some(200)).unwrap();
    assert!(!partial.charge_refunded);
    let event = delivered(&h, "charge.refunded").await;
    let EventObject::ChargeRefunded(charge) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(charge.amount, 1200);
    assert_eq!(charge.amount_refunded, 200);
    assert!(!charge.refunded, "refunded only when fully refunded");
    assert_eq!(charge.payment_intent.unwrap().id().as_str(), pi);
    assert_eq!(charge.metadata["purchase_id"], "pur_42");
    assert_eq!(charge.refunds.unwrap().data.len(), 1);

    let rest = h.sim.refund(&pi, None).unwrap();
    assert_eq!(rest.amount, 1000);
    assert!(rest.charge_refunded);
    // completed, charge.succeeded, then the two charge.refunded.
    h.hook.wait_for(4).await;
    let last = verify(h.hook.received().last().unwrap(), NEW_SECRET);
    let EventObject::ChargeRefunded(charge) = last.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(charge.amount_refunded, 1200);
    assert!(charge.refunded);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_sends_charge_dispute_created() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    let paid = h.sim.pay(session.id.as_str()).unwrap();
    let pi = paid.payment_intent.unwrap();

    let dispute = h.sim.dispute(&pi).unwrap();

    let event = delivered(&h, "charge.dispute.created").await;
    let EventObject::ChargeDisputeCreated(object) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(object.id.as_str(), dispute.id);
    assert_eq!(object.charge.id().as_str(), paid.charge.unwrap());
    assert_eq!(object.payment_intent.unwrap().id().as_str(), pi);
    assert_eq!(object.amount, 1200);
    assert_eq!(object.status, DisputeStatus::NeedsResponse);
    assert_eq!(object.reason, "fraudulent");
    assert!(h.sim.dispute(&pi).is_err(), "one dispute per charge");
    assert!(matches!(
        h.sim.refund(&pi, None),
        Err(sandbox::stripe::SimError::Disputed(_))
    ));
}
