//! A Checkout Session applies to a purchase only when it is that purchase's session: anyone can
//! make a session on the account (a Payment Link lets the payer set `client_reference_id`) that
//! names a stranger's purchase, whose id is public.

use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::payments::{DisputeStage, Effect, Fact, SessionFacts, SessionPayment};
use market_core::purchases::{self, NewPurchase};
use market_core::{Currency, Money, PurchaseId};

use crate::common::{World, audit_count};

fn usd(amount: i64) -> Money {
    Money {
        amount,
        currency: Currency::parse("usd").unwrap(),
    }
}

fn completed(purchase: PurchaseId, session: &str, charge: Option<Money>) -> Fact {
    Fact::CheckoutCompleted(SessionFacts {
        payer_email: None,
        purchase,
        session_id: session.to_owned(),
        payment_intent: Some(format!("pi_of_{session}")),
        payment: SessionPayment::Paid,
        charge,
    })
}

async fn linked_purchase_of(world: &World, payment_intent: &str) -> Option<PurchaseId> {
    sqlx::query_scalar("select purchase_id from stripe_payment where payment_intent_id = $1")
        .bind(payment_intent)
        .fetch_optional(world.pool())
        .await
        .unwrap()
        .flatten()
}

/// Found from outside (security issue, finding 3): a $1 session made elsewhere, naming a victim's
/// fulfilled purchase, linked its PaymentIntent to that purchase; a dispute of the $1 charge then
/// turned the purchase `disputed` and revoked the victim's token. Before the fix the foreign
/// session's PaymentIntent was linked (and this test's dispute revoked the token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_elsewhere_naming_a_paid_purchase_links_nothing_and_its_dispute_revokes_nothing()
 {
    // Arrange: the victim's purchase, paid and holding its token.
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let (victim, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", victim, &session).await;
    assert!(matches!(paid.effect, Effect::Fulfilled { .. }), "{paid:?}");
    let token = world.live_tokens_of(victim).await;

    // Act: the attacker's own $1 session names the victim's purchase, is paid, then disputed.
    let foreign = world
        .deliver(
            "evt_foreign",
            "checkout.session.completed",
            &completed(victim, "cs_test_attacker", Some(usd(100))),
        )
        .await;
    let dispute = world
        .deliver(
            "evt_dispute",
            "charge.dispute.created",
            &Fact::Dispute {
                stage: DisputeStage::Opened,
                payment_intent: "pi_of_cs_test_attacker".into(),
            },
        )
        .await;

    // Assert
    assert_eq!(foreign.effect, Effect::ForeignSession);
    assert_eq!(
        dispute.effect,
        Effect::TombstoneRecorded,
        "it touches no purchase"
    );
    assert_eq!(world.status_of(victim).await, "fulfilled");
    assert_eq!(world.live_tokens_of(victim).await, token);
    assert_eq!(
        linked_purchase_of(&world, "pi_of_cs_test_attacker").await,
        None
    );
    assert_eq!(
        audit_count(world.pool(), "payment.foreign_session", victim).await,
        1,
        "operators see it on the purchase's trail"
    );
}

/// Before the purchase's own session is recorded, a session counts as the purchase's only when it
/// charges exactly its price in a one-time payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_its_session_is_recorded_a_purchase_is_paid_only_by_a_session_charging_its_price() {
    // Arrange: a pending purchase with no session recorded yet (the tier costs $19).
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let created = purchases::create(
        world.pool(),
        &world.receipts,
        &NewPurchase {
            tier: world.tier,
            email: None,
            idempotency_key: None,
        },
        FeeRate::DEFAULT,
        &Actor::Buyer,
    )
    .await
    .unwrap();
    let purchase = created.purchase.purchase_id;

    // Act
    let cheaper = completed(purchase, "cs_test_cheaper", Some(usd(100)));
    let not_a_payment = completed(purchase, "cs_test_subscription", None);
    let other_currency = completed(
        purchase,
        "cs_test_eur",
        Some(Money {
            amount: 1900,
            currency: Currency::parse("eur").unwrap(),
        }),
    );
    let mut refused = Vec::new();
    for (n, fact) in [cheaper, not_a_payment, other_currency].iter().enumerate() {
        let event = format!("evt_refused_{n}");
        refused.push(
            world
                .deliver(&event, "checkout.session.completed", fact)
                .await,
        );
    }
    let own = world
        .deliver(
            "evt_own",
            "checkout.session.completed",
            &completed(purchase, "cs_test_own", Some(usd(1900))),
        )
        .await;

    // Assert
    for outcome in &refused {
        assert_eq!(outcome.effect, Effect::ForeignSession, "{outcome:?}");
    }
    assert!(matches!(own.effect, Effect::Fulfilled { .. }), "{own:?}");
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(
        linked_purchase_of(&world, "pi_of_cs_test_own").await,
        Some(purchase)
    );
    assert_eq!(
        linked_purchase_of(&world, "pi_of_cs_test_cheaper").await,
        None
    );
}

/// `no_payment_required` pays only for a purchase that costs nothing; every purchase costs
/// something, so it never pays one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_payment_required_does_not_pay_a_purchase_that_has_a_price() {
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;

    let outcome = world
        .deliver(
            "evt_free",
            "checkout.session.completed",
            &Fact::CheckoutCompleted(World::session_facts(
                purchase,
                &session,
                SessionPayment::NoPaymentRequired,
            )),
        )
        .await;

    assert_eq!(outcome.effect, Effect::NoChange);
    assert_eq!(world.status_of(purchase).await, "pending");
    assert!(world.live_tokens_of(purchase).await.is_empty());
}
