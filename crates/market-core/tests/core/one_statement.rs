//! The one-statement fulfilment (`payments::one_statement`, migration 31) when another transaction
//! changes what it checked between its check and its write: it must write nothing and leave the
//! fact to the general path, which then does what that path always did.
//!
//! Each race is made deterministic with a second connection holding rows the statement needs: its
//! checks read a snapshot (they see the rows as committed), its writes wait on or skip the locks.

use std::time::{Duration, Instant};

use crate::common::{World, audit_count, payment_intent_of};
use market_core::payments::{Effect, Outcome};
use market_core::{PurchaseId, PurchaseStatus};
use sqlx::{Connection, PgConnection};

async fn side_connection(world: &World) -> PgConnection {
    PgConnection::connect_with(&world.db.connect_options())
        .await
        .unwrap()
}

/// Waits until a statement calling `fulfil_paid_session` waits on a lock.
async fn until_the_statement_waits(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_stat_activity
                            where query like '%fulfil_paid_session%' and wait_event_type = 'Lock'
                              and pid <> pg_backend_pid())",
        )
        .fetch_one(world.pool())
        .await
        .unwrap();
        if waiting {
            return;
        }
        assert!(Instant::now() < deadline, "the statement never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn inbox_rows(world: &World, event_id: &str) -> Vec<(String, Option<PurchaseId>)> {
    sqlx::query_as("select outcome, purchase_id from stripe_event where stripe_event_id = $1")
        .bind(event_id)
        .fetch_all(world.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refund_committed_while_the_statement_waits_on_its_payment_ends_the_purchase_refunded_without_a_token()
 {
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let payment_intent = payment_intent_of(&session);
    // The payment is known, clean, when the statement checks it.
    sqlx::query("insert into stripe_payment (payment_intent_id) values ($1)")
        .bind(&payment_intent)
        .execute(world.pool())
        .await
        .unwrap();

    // A refund's transaction holds the payment's row while the payment arrives.
    let mut refund = side_connection(&world).await;
    let mut tx = refund.begin().await.unwrap();
    sqlx::query(
        "update stripe_payment set fully_refunded = true, amount_refunded = 1900
         where payment_intent_id = $1",
    )
    .bind(&payment_intent)
    .execute(&mut *tx)
    .await
    .unwrap();
    let paying = {
        let pool = world.pool().clone();
        let session = session.clone();
        tokio::spawn(async move {
            let facts = World::session_facts(
                purchase,
                &session,
                market_core::payments::SessionPayment::Paid,
            );
            let fact = market_core::payments::Fact::CheckoutCompleted(facts);
            let delivery = market_core::payments::Delivery {
                event_id: "evt_paid_racing_a_refund",
                event_type: "checkout.session.completed",
                livemode: false,
            };
            market_core::payments::apply(
                &pool,
                Some(delivery),
                &fact,
                &market_core::audit::Actor::Stripe,
            )
            .await
            .unwrap()
        })
    };
    until_the_statement_waits(&world).await;
    tx.commit().await.unwrap();
    let outcome: Outcome = paying.await.unwrap();

    assert_eq!(
        outcome.status,
        Some(PurchaseStatus::Refunded),
        "{outcome:?}"
    );
    assert_eq!(world.status_of(purchase).await, "refunded");
    assert!(world.live_tokens_of(purchase).await.is_empty());
    assert_eq!(
        audit_count(world.pool(), "token.assigned", purchase).await,
        0
    );
    assert_eq!(
        inbox_rows(&world, "evt_paid_racing_a_refund").await,
        vec![(outcome.effect.as_str().to_owned(), Some(purchase))],
        "one inbox row, written by the general path"
    );
    let available: i64 =
        sqlx::query_scalar("select count(*) from install_token where state = 'available'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(available, 3, "the pool keeps every token");
}

#[tokio::test]
async fn a_pool_whose_tokens_are_all_taken_meanwhile_leaves_the_purchase_paid_and_a_mint_queued() {
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;

    // Another transaction holds every available token: the statement's check still sees them, its
    // claim (`for update skip locked`) finds none.
    let mut other = side_connection(&world).await;
    let mut tx = other.begin().await.unwrap();
    let held: Vec<i64> = sqlx::query_scalar(
        "select install_token_id from install_token where state = 'available' for update",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(held.len(), 2);

    let outcome = world
        .deliver_paid("evt_paid_pool_taken", purchase, &session)
        .await;
    tx.rollback().await.unwrap();

    assert_eq!(outcome.effect, Effect::AwaitingToken, "{outcome:?}");
    assert_eq!(world.status_of(purchase).await, "paid");
    assert_eq!(
        audit_count(world.pool(), "purchase.paid", purchase).await,
        1
    );
    assert_eq!(
        audit_count(world.pool(), "token.assigned", purchase).await,
        0
    );
    assert_eq!(
        inbox_rows(&world, "evt_paid_pool_taken").await,
        vec![("awaiting_token".to_owned(), Some(purchase))]
    );
    let mints: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'mint_for_purchase' and subject = $1::text",
    )
    .bind(purchase)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(mints, 1);

    // Once the job runs, the purchase holds exactly one token.
    world.drain().await;
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
}

#[tokio::test]
async fn the_statement_fulfils_as_the_general_path_would_with_the_same_trail() {
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;

    let outcome = world
        .deliver_paid("evt_paid_once", purchase, &session)
        .await;
    let again = world
        .deliver_paid("evt_paid_once", purchase, &session)
        .await;

    let Effect::Fulfilled { token } = outcome.effect else {
        panic!("{outcome:?}")
    };
    assert_eq!(again.effect, Effect::Duplicate);
    let trail: Vec<(String, Option<i64>, serde_json::Value)> = sqlx::query_as(
        "select action, install_token_id, detail from audit_event
         where purchase_id = $1 and actor = 'stripe' order by audit_event_id",
    )
    .bind(purchase)
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert_eq!(
        trail,
        vec![
            (
                "purchase.paid".to_owned(),
                None,
                serde_json::json!({"from": "pending", "to": "paid"})
            ),
            (
                "purchase.fulfilled".to_owned(),
                None,
                serde_json::json!({"from": "paid", "to": "fulfilled"})
            ),
            (
                "token.assigned".to_owned(),
                Some(token.0),
                serde_json::json!({})
            ),
        ]
    );
    let (status, paid, fulfilled, pi): (String, bool, bool, Option<String>) = sqlx::query_as(
        "select status::text, paid_at is not null, fulfilled_at is not null, payment_intent_id
         from purchase where purchase_id = $1",
    )
    .bind(purchase)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), paid, fulfilled, pi),
        ("fulfilled", true, true, Some(payment_intent_of(&session)))
    );
    let linked: Option<PurchaseId> =
        sqlx::query_scalar("select purchase_id from stripe_payment where payment_intent_id = $1")
            .bind(payment_intent_of(&session))
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(
        linked,
        Some(purchase),
        "the payment is linked to its purchase"
    );
    assert_eq!(
        inbox_rows(&world, "evt_paid_once").await,
        vec![("fulfilled".to_owned(), Some(purchase))]
    );
}
