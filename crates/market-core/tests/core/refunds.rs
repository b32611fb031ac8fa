//! Refunds, disputes and the other ways a purchase closes, in every order Stripe may deliver them.
//!
//! Proves: a refund or dispute seen before the payment is a tombstone (no token is ever assigned
//! and Xano is never asked for one); a refund or dispute after fulfilment deletes the token at Xano
//! and repeats change nothing; a partial refund keeps the token; a refund that lands while the
//! purchase waits for a token leaves the minted token in the pool, never with the buyer; expiry
//! and failed delayed payments are final.

use std::time::{Duration, Instant};

use crate::common::{CANONICAL, World, payment_intent_of};
use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::payments::{self, DisputeStage, Effect, Fact, Outcome, SessionPayment};
use market_core::purchases;
use market_core::{PurchaseId, PurchaseStatus};
use sandbox::xano::{Endpoint, Fault};

/// Counts of the rows that say what happened: jobs, audit entries and inbox entries.
async fn trail(world: &World) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from job), (select count(*) from audit_event),
                (select count(*) from stripe_event)",
    )
    .fetch_one(world.pool())
    .await
    .unwrap()
}

fn calls_to(world: &World, endpoint: Endpoint) -> usize {
    let calls = world.sim.calls();
    calls
        .iter()
        .filter(|c| c.endpoint == Some(endpoint))
        .count()
}

/// Every trace a token could leave on `purchase`: a token row held by it, an assignment in the
/// audit log, a mint job for it.
async fn assert_never_tokened(world: &World, purchase: PurchaseId) {
    let (tokens, assigned, mint_jobs): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from install_token where purchase_id = $1),
                (select count(*) from audit_event where purchase_id = $1 and action = 'token.assigned'),
                (select count(*) from job where kind = 'mint_for_purchase' and subject = $1::text)",
    )
    .bind(purchase)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(
        (tokens, assigned, mint_jobs),
        (0, 0, 0),
        "tokens held, assignments, mint jobs"
    );
}

fn refund_of(session: &str, amount_refunded: i64, fully_refunded: bool) -> Fact {
    let payment_intent = payment_intent_of(session);
    Fact::ChargeRefunded {
        payment_intent,
        amount_refunded,
        fully_refunded,
    }
}

fn dispute_of(session: &str) -> Fact {
    let payment_intent = payment_intent_of(session);
    Fact::Dispute {
        payment_intent,
        stage: DisputeStage::Opened,
    }
}

/// Says "paid" every way Stripe can: `checkout.session.completed`, `async_payment_succeeded`
/// (new event ids tagged `tag`) and the success page.
async fn say_paid(world: &World, purchase: PurchaseId, session: &str, tag: &str) -> Vec<Outcome> {
    let facts = World::session_facts(purchase, session, SessionPayment::Paid);
    let completed = Fact::CheckoutCompleted(facts.clone());
    let succeeded = Fact::AsyncPaymentSucceeded(facts);
    let async_type = "checkout.session.async_payment_succeeded";
    vec![
        world
            .deliver_paid(&format!("evt_{tag}_paid"), purchase, session)
            .await,
        world
            .deliver(&format!("evt_{tag}_async"), async_type, &succeeded)
            .await,
        payments::apply(world.pool(), None, &completed, &Actor::Stripe)
            .await
            .unwrap(),
    ]
}

/// The state of the purchase's token as its receipt shows it, and the value if it shows one.
async fn receipt_token(world: &World, purchase: PurchaseId) -> (String, Option<String>) {
    let row = purchases::by_id(world.pool(), purchase)
        .await
        .unwrap()
        .unwrap();
    let receipt = purchases::receipt_of(world.pool(), &world.market.envelope, &row)
        .await
        .unwrap();
    let token = receipt.token.expect("the receipt names the token");
    (token.state, token.value.map(|v| v.expose().to_owned()))
}

async fn count(world: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

/// The tombstone scenario, once with an empty pool (a wrong "paid" would mint at Xano) and once
/// with a full one (a wrong "paid" would take a pool token).
async fn closing_fact_before_payment_mints_nothing(
    event_type: &str,
    closing: fn(&str) -> Fact,
    status: &str,
) {
    for pool_size in [0, 2] {
        // Arrange
        let world = World::new(pool_size, pool_size).await;
        world.fill_pool().await;
        let (purchase, session) = world.checkout().await;
        world.sim.clear_calls();

        // Act: the closing fact first, then every way of saying "paid", twice over.
        let first = world
            .deliver("evt_close", event_type, &closing(&session))
            .await;
        let mut late = say_paid(&world, purchase, &session, "a").await;
        late.extend(say_paid(&world, purchase, &session, "b").await);
        world.drain().await;

        // Assert
        assert_eq!(first.effect, Effect::TombstoneRecorded, "{first:?}");
        // The first "paid" finds the tombstone and closes the purchase; the rest change nothing.
        assert_eq!(late[0].status.map(PurchaseStatus::as_str), Some(status));
        assert_eq!(late[0].effect, Effect::StatusChanged, "{:?}", late[0]);
        for outcome in &late[1..] {
            assert_eq!(outcome.effect, Effect::NoChange, "{outcome:?}");
        }
        assert_eq!(world.status_of(purchase).await, status);
        assert_never_tokened(&world, purchase).await;
        assert_eq!(
            calls_to(&world, Endpoint::CreateToken),
            0,
            "pool {pool_size}"
        );
        let available = "select count(*) from install_token where state = 'available'";
        let available = count(&world, available).await;
        assert_eq!(available, i64::from(pool_size), "the pool is untouched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_before_payment_never_mints_a_token() {
    closing_fact_before_payment_mints_nothing(
        "charge.refunded",
        |session| refund_of(session, 1900, true),
        "refunded",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_before_payment_never_mints_a_token() {
    closing_fact_before_payment_mints_nothing("charge.dispute.created", dispute_of, "disputed")
        .await;
}

/// A world with one fulfilled purchase; returns it, its session and its token string.
pub(crate) async fn fulfilled(world: &World) -> (PurchaseId, String, String) {
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert!(matches!(paid.effect, Effect::Fulfilled { .. }), "{paid:?}");
    let tokens = world.live_tokens_of(purchase).await;
    assert_eq!(tokens.len(), 1);
    assert!(world.sim_tokens().contains(&tokens[0]));
    (purchase, session, tokens[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_after_fulfilment_deletes_the_token_and_repeats_change_nothing() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, token) = fulfilled(&world).await;

    // Act
    let refund = world.deliver_refund("evt_refund", &session).await;
    world.drain().await;

    // Assert: deleted at Xano, and the receipt says so without showing the value.
    assert_eq!(refund.effect, Effect::Revoking { tokens: 1 });
    assert!(!world.sim_tokens().contains(&token), "deleted at Xano");
    assert_eq!(world.status_of(purchase).await, "refunded");
    assert_eq!(
        receipt_token(&world, purchase).await,
        ("revoked".into(), None)
    );
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());

    // Act again: a second refund, a redelivery of the first, a dispute, a late "paid".
    let before = trail(&world).await;
    world.sim.clear_calls();
    let second = world.deliver_refund("evt_refund_2", &session).await;
    let duplicate = world.deliver_refund("evt_refund", &session).await;
    let dispute = world
        .deliver(
            "evt_dispute",
            "charge.dispute.created",
            &dispute_of(&session),
        )
        .await;
    let late = say_paid(&world, purchase, &session, "late").await;
    world.drain().await;

    // Assert: only the four new event ids reached the inbox; nothing else moved.
    assert_eq!(second.effect, Effect::NoChange, "{second:?}");
    assert_eq!(duplicate.effect, Effect::Duplicate, "{duplicate:?}");
    assert_eq!(dispute.effect, Effect::NoChange, "{dispute:?}");
    assert!(
        late.iter().all(|o| o.effect == Effect::NoChange),
        "{late:?}"
    );
    let after = trail(&world).await;
    let expected = (before.0, before.1, before.2 + 4);
    assert_eq!(after, expected, "(jobs, audit, inbox)");
    assert!(world.sim.calls().is_empty(), "no call to Xano");
    assert_eq!(world.status_of(purchase).await, "refunded");
    assert!(world.live_tokens_of(purchase).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_refund_is_recorded_and_the_token_kept() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, token) = fulfilled(&world).await;

    // Act
    let partial = world
        .deliver(
            "evt_partial",
            "charge.refunded",
            &refund_of(&session, 500, false),
        )
        .await;
    world.drain().await;

    // Assert
    assert_eq!(partial.effect, Effect::PartialRefund, "{partial:?}");
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await, vec![token.clone()]);
    assert!(world.sim_tokens().contains(&token), "still live at Xano");
    let row = purchases::by_id(world.pool(), purchase).await.unwrap();
    assert_eq!(row.unwrap().amount_refunded, 500);
    let shown = receipt_token(&world, purchase).await;
    assert_eq!(shown, ("assigned".into(), Some(token)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_after_fulfilment_revokes_the_token() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, token) = fulfilled(&world).await;

    // Act
    let dispute = world
        .deliver(
            "evt_dispute",
            "charge.dispute.created",
            &dispute_of(&session),
        )
        .await;
    world.drain().await;

    // Assert
    assert_eq!(dispute.effect, Effect::Revoking { tokens: 1 });
    assert_eq!(world.status_of(purchase).await, "disputed");
    assert!(!world.sim_tokens().contains(&token), "deleted at Xano");
    assert_eq!(
        receipt_token(&world, purchase).await,
        ("revoked".into(), None)
    );
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_before_the_mint_job_runs_means_no_mint_at_all() {
    // Arrange: an empty pool that nobody fills, so "paid" queues a mint job.
    let world = World::new(0, 0).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert_eq!(paid.effect, Effect::AwaitingToken);
    world.sim.clear_calls();

    // Act
    world.deliver_refund("evt_refund", &session).await;
    world.drain().await;

    // Assert
    assert_eq!(world.status_of(purchase).await, "refunded");
    assert_eq!(calls_to(&world, Endpoint::CreateToken), 0);
    assert_eq!(count(&world, "select count(*) from install_token").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_while_the_mint_job_calls_xano_leaves_its_token_in_the_pool() {
    // Arrange: the purchase waits for a token; Xano answers token creations slowly.
    let world = World::new(0, 0).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert_eq!(paid.effect, Effect::AwaitingToken);
    let latency = Duration::from_millis(1200);
    world.sim.inject(Fault::Latency {
        min: latency,
        max: latency,
        only: Some(Endpoint::CreateToken),
    });

    // Act: start the mint job; once it has looked at the pool (its last step before calling Xano)
    // and while Xano holds the creation, the refund arrives.
    let worker = Runner::new(world.market.clone());
    let jobs = tokio::spawn(async move { worker.drain().await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let looked: bool = sqlx::query_scalar(
            "select exists (select 1 from audit_event
                            where purchase_id = $1 and action = 'purchase.awaiting_token' and actor = 'system')",
        )
        .bind(purchase)
        .fetch_one(world.pool())
        .await
        .unwrap();
        if looked {
            break;
        }
        assert!(Instant::now() < deadline, "the mint job never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refund = world.deliver_refund("evt_refund", &session).await;
    let refunded_while_minting = world.sim.tokens(CANONICAL).is_empty();
    jobs.await.unwrap();
    world.drain().await;

    // Assert: Xano did create a token, and it went to the pool, not to the refunded buyer.
    assert!(
        refunded_while_minting,
        "the refund landed after Xano answered"
    );
    assert_eq!(refund.status, Some(PurchaseStatus::Refunded));
    assert_eq!(world.status_of(purchase).await, "refunded");
    let held = "select (select count(*) from install_token where purchase_id is not null)
                     + (select count(*) from audit_event where action = 'token.assigned')";
    assert_eq!(count(&world, held).await, 0, "no token was ever held");
    let states: Vec<String> = sqlx::query_scalar("select state::text from install_token")
        .fetch_all(world.pool())
        .await
        .unwrap();
    assert_eq!(
        states,
        ["available"],
        "Xano's token is recorded, in the pool"
    );
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_or_a_failed_delayed_payment_is_final() {
    // Arrange: a full pool, so a wrongly accepted "paid" would take a token at once.
    let world = World::new(2, 2).await;
    world.fill_pool().await;
    let (expired, expired_session) = world.checkout().await;
    let (failed, failed_session) = world.checkout().await;
    world.sim.clear_calls();
    let facts = |p, s: &str, pay| World::session_facts(p, s, pay);

    // Act
    let expiry = world
        .deliver(
            "evt_exp",
            "checkout.session.expired",
            &Fact::CheckoutExpired(facts(expired, &expired_session, SessionPayment::Unpaid)),
        )
        .await;
    let unpaid = world
        .deliver(
            "evt_unpaid",
            "checkout.session.completed",
            &Fact::CheckoutCompleted(facts(failed, &failed_session, SessionPayment::Unpaid)),
        )
        .await;
    let failure = world
        .deliver(
            "evt_fail",
            "checkout.session.async_payment_failed",
            &Fact::AsyncPaymentFailed(facts(failed, &failed_session, SessionPayment::Unpaid)),
        )
        .await;
    let mut late = say_paid(&world, expired, &expired_session, "x").await;
    late.extend(say_paid(&world, failed, &failed_session, "f").await);
    world.drain().await;

    // Assert
    assert_eq!(expiry.status, Some(PurchaseStatus::Expired));
    assert_eq!(unpaid.effect, Effect::NoChange, "{unpaid:?}");
    assert_eq!(failure.status, Some(PurchaseStatus::Failed));
    for outcome in late {
        assert_eq!(outcome.effect, Effect::NoChange, "{outcome:?}");
    }
    assert_eq!(world.status_of(expired).await, "expired");
    assert_eq!(world.status_of(failed).await, "failed");
    assert_never_tokened(&world, expired).await;
    assert_never_tokened(&world, failed).await;
    assert_eq!(calls_to(&world, Endpoint::CreateToken), 0);
    let pool = world.db_live_tokens().await;
    assert_eq!(pool.len(), 2, "the pool is untouched");
}
