//! Refunds through async-stripe (`POST /v1/refunds`), as the service's admin refund makes them.

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::charge::RetrieveCharge;
use stripe_core::refund::{CreateRefund, CreateRefundReason};
use stripe_shared::ApiErrorsCode;
use stripe_webhook::EventObject;

use crate::helpers::{Harness, NEW_SECRET, verify};

fn stripe_error(error: StripeError) -> (Box<stripe::ApiErrors>, u16) {
    match error {
        StripeError::Stripe(error, status) => (error, status),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_through_the_api_sends_charge_refunded_naming_the_request() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let refund = CreateRefund::new()
        .payment_intent(pi.clone())
        .reason(CreateRefundReason::RequestedByCustomer)
        .metadata([("purchase_id".to_owned(), "pur_42".to_owned())])
        .customize()
        .request_strategy(RequestStrategy::Idempotent(
            IdempotencyKey::new("refund:pur_42").unwrap(),
        ))
        .send(&h.client)
        .await
        .unwrap();

    assert!(refund.id.as_str().starts_with("re_"));
    assert_eq!(refund.amount, 1200);
    assert_eq!(refund.payment_intent.unwrap().id().as_str(), pi);
    assert_eq!(refund.metadata.unwrap()["purchase_id"], "pur_42");
    let deliveries = h.hook.wait_for_type("charge.refunded").await;
    let event = verify(&deliveries[0], NEW_SECRET);
    let request = event.request.unwrap();
    assert!(request.id.unwrap().starts_with("req_"));
    assert_eq!(request.idempotency_key.as_deref(), Some("refund:pur_42"));
    let EventObject::ChargeRefunded(charge) = event.data.object else {
        panic!("wrong variant");
    };
    assert!(charge.refunded);
    assert_eq!(charge.amount_refunded, 1200);

    let charge = RetrieveCharge::new(charge.id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(charge.refunds.unwrap().data[0].id, refund.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_refunds_add_up_and_cannot_exceed_the_charge() {
    let h = Harness::start().await;
    let pi = h.paid_intent().await;

    let first = CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(500)
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(first.amount, 500);

    let too_much = CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(701)
        .send(&h.client)
        .await
        .unwrap_err();
    let (error, status) = stripe_error(too_much);
    assert_eq!(status, 400);
    assert_eq!(error.param.as_deref(), Some("amount"));
    assert_eq!(error.code, Some(ApiErrorsCode::AmountTooLarge));

    let rest = CreateRefund::new()
        .payment_intent(pi.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(rest.amount, 700);

    let again = CreateRefund::new()
        .payment_intent(pi.clone())
        .send(&h.client)
        .await
        .unwrap_err();
    let (error, status) = stripe_error(again);
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ChargeAlreadyRefunded));
    // The payment's two events, then one per refund; the refused ones emitted nothing.
    assert_eq!(h.sim.events().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn refunding_an_unknown_or_disputed_payment_is_refused() {
    let h = Harness::start().await;

    let unknown = CreateRefund::new()
        .payment_intent("pi_3nothing")
        .send(&h.client)
        .await
        .unwrap_err();
    let (error, status) = stripe_error(unknown);
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("payment_intent"));

    let neither = CreateRefund::new().send(&h.client).await.unwrap_err();
    assert_eq!(stripe_error(neither).1, 400);

    let pi = h.paid_intent().await;
    h.sim.dispute(&pi).unwrap();
    let disputed = CreateRefund::new()
        .payment_intent(pi)
        .send(&h.client)
        .await
        .unwrap_err();
    let (error, _) = stripe_error(disputed);
    assert_eq!(error.code, Some(ApiErrorsCode::ChargeDisputed));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_can_name_the_charge_instead_of_the_payment_intent() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    let paid = h.sim.pay(session.id.as_str()).unwrap();

    let refund = CreateRefund::new()
        .charge(paid.charge.clone().unwrap())
        .amount(100)
        .send(&h.client)
        .await
        .unwrap();

    assert_eq!(refund.charge.unwrap().id().as_str(), paid.charge.unwrap());
    assert_eq!(
        refund.payment_intent.unwrap().id().as_str(),
        paid.payment_intent.unwrap()
    );
}
