//! Creating and retrieving sessions with async-stripe, and paying or cancelling on the hosted
//! page as a browser would.

use reqwest::StatusCode;
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_shared::{CheckoutSessionPaymentStatus, CheckoutSessionStatus};
use stripe_webhook::EventObject;

use crate::helpers::{CANCEL_URL, Harness, NEW_SECRET, OLD_SECRET, verify};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_created_with_async_stripe_reads_back_the_same() {
    let h = Harness::start().await;

    let created = h.create_session_with_key("purchase:pur_42").await;

    assert!(created.id.as_str().starts_with("cs_test_"));
    assert_eq!(created.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(created.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert_eq!(created.amount_total, Some(1200));
    assert_eq!(created.client_reference_id.as_deref(), Some("pur_42"));
    assert_eq!(created.metadata.as_ref().unwrap()["purchase_id"], "pur_42");
    assert!(
        created.payment_intent.is_none(),
        "created when the buyer pays"
    );
    let page = created.url.clone().unwrap();
    assert_eq!(page, format!("{}pay/{}", h.sim.base_url(), created.id));

    let read = RetrieveCheckoutSession::new(created.id.clone())
        .expand(vec!["line_items".to_owned()])
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(read.id, created.id);
    let items = read.line_items.expect("expanded");
    assert_eq!(items.data.len(), 1);
    assert_eq!(
        items.data[0].description.as_deref(),
        Some("Token Share Test — 5 installs")
    );
    assert_eq!(items.data[0].amount_total, 1200);

    let sim_view = h.sim.session(created.id.as_str()).unwrap();
    assert_eq!(sim_view.payment_intent_metadata["purchase_id"], "pur_42");
    let calls = h.sim.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/v1/checkout/sessions");
    assert_eq!(calls[0].idempotency_key.as_deref(), Some("purchase:pur_42"));
    assert_eq!(
        calls[0].stripe_version.as_deref(),
        Some(stripe_shared::version::VERSION.as_str())
    );
    assert_eq!(
        calls[1].path,
        format!("/v1/checkout/sessions/{}", created.id)
    );
    assert!(calls[1].query.contains("line_items"));
}

#[tokio::test(flavor = "multi_thread")]
async fn paying_on_the_hosted_page_redirects_and_sends_a_signed_completed_event() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    let page_url = session.url.clone().unwrap();

    let page = h.http.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Token Share Test — 5 installs"), "{html}");
    assert!(html.contains("$12.00"));
    assert!(html.contains("id=\"pay\"") && html.contains("id=\"cancel\""));
    assert!(html.contains("<label for=\"email\""));

    let paid = h.press_pay(&session).await;

    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let location = paid.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("https://shop.example/done?session={}", session.id)
    );
    let view = h.sim.session(session.id.as_str()).unwrap();
    assert_eq!(view.status, sandbox::stripe::SessionStatus::Complete);
    assert_eq!(view.payment_status, sandbox::stripe::PaymentStatus::Paid);
    let pi = view.payment_intent.clone().unwrap();
    assert!(pi.starts_with("pi_") && view.charge.as_deref().unwrap().starts_with("ch_"));

    let delivery = &h.hook.wait_for(1).await[0];
    assert_eq!(delivery.content_type, "application/json; charset=utf-8");
    assert_eq!(
        delivery.signature.matches(",v1=").count(),
        2,
        "one v1 per secret"
    );
    for secret in [OLD_SECRET, NEW_SECRET] {
        let event = verify(delivery, secret);
        assert_eq!(event.type_.as_str(), "checkout.session.completed");
        let EventObject::CheckoutSessionCompleted(completed) = event.data.object else {
            panic!("wrong variant");
        };
        assert_eq!(completed.id, session.id);
        assert_eq!(completed.payment_status, CheckoutSessionPaymentStatus::Paid);
        assert_eq!(completed.client_reference_id.as_deref(), Some("pur_42"));
        assert_eq!(completed.payment_intent.unwrap().id().as_str(), pi);
        assert_eq!(
            completed.customer_details.unwrap().email.as_deref(),
            Some("buyer@shop.example")
        );
    }
    let forged = stripe_webhook::Webhook::construct_event(
        &delivery.body,
        &delivery.signature,
        "whsec_wrong",
    );
    assert!(forged.is_err());

    let read = RetrieveCheckoutSession::new(session.id.clone())
        .send(&h.client)
        .await
        .unwrap();
    assert_eq!(read.status, Some(CheckoutSessionStatus::Complete));
    assert!(read.url.is_none(), "a closed session has no URL");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_goes_back_to_the_shop_and_leaves_the_session_open() {
    let h = Harness::start().await;
    let session = h.create_session().await;

    let cancel = h
        .http
        .post(format!("{}/cancel", session.url.clone().unwrap()))
        .send()
        .await
        .unwrap();

    assert_eq!(cancel.status(), StatusCode::SEE_OTHER);
    assert_eq!(cancel.headers()["location"], CANCEL_URL);
    let view = h.sim.session(session.id.as_str()).unwrap();
    assert_eq!(view.status, sandbox::stripe::SessionStatus::Open);
    assert!(h.sim.events().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_or_expired_session_cannot_be_paid_and_says_why() {
    let h = Harness::start().await;
    let paid = h.create_session().await;
    assert_eq!(h.press_pay(&paid).await.status(), StatusCode::SEE_OTHER);

    let again = h.press_pay(&paid).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("already complete"));

    let expired = h.create_session().await;
    h.sim.expire(expired.id.as_str()).unwrap();
    let page = h
        .http
        .get(expired.url.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("has expired"));
    assert_eq!(h.press_pay(&expired).await.status(), StatusCode::GONE);

    let unknown = h.http.get(h.url("/pay/cs_test_nope")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // The payment's two events (completed, charge.succeeded), one expired: the refused payments
    // emitted nothing.
    assert_eq!(h.sim.events().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_without_a_prefilled_email_uses_the_one_typed_on_the_page() {
    let h = Harness::start().await;
    let session = h.create_session().await;
    h.press_pay(&session).await;
    let event = verify(&h.hook.wait_for(1).await[0], NEW_SECRET);
    let EventObject::CheckoutSessionCompleted(completed) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(completed.customer_email, None);
    assert_eq!(
        completed.customer_details.unwrap().email.as_deref(),
        Some("buyer@shop.example")
    );
}
