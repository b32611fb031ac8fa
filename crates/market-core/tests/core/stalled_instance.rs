//! An instance that stalls (a VM pause, `SIGSTOP`, a starved runtime) in the middle of a
//! transaction keeps its row locks until PostgreSQL ends that transaction. The other instances
//! must not fail meanwhile: PostgreSQL has to end the stalled transaction
//! (`idle_in_transaction_session_timeout`) before their lock waits give up (`lock_timeout`).
//!
//! Found by the chaos suite (`tests/chaos.rs`): with the idle timeout (30 s) far above the lock
//! timeout (5 s), every webhook and success page for a purchase whose row a paused instance had
//! locked answered 500 on the healthy instances for as long as the pause lasted.

use std::time::{Duration, Instant};

use crate::common::World;
use market_core::audit::Actor;
use market_core::db::{self, DbConfig};
use market_core::payments::{self, Delivery, Effect, Fact, SessionPayment};

#[test]
fn postgres_ends_a_stalled_transaction_before_a_waiter_gives_up_on_its_lock() {
    let config = DbConfig::default();
    assert!(
        config.idle_in_transaction_timeout + Duration::from_secs(2) <= config.lock_timeout,
        "a lock held by a stalled transaction must be freed well before waiters time out: {config:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_a_purchase_locked_by_a_stalled_instance_is_applied_by_another_instance() {
    // Arrange: a purchase, and two "instances" with the service's pool settings.
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let stalled = db::connect(world.db.connect_options(), &DbConfig::default())
        .await
        .unwrap();
    let healthy = db::connect(world.db.connect_options(), &DbConfig::default())
        .await
        .unwrap();
    // The stalled instance locked the purchase (as `payments::apply` does) and then froze: it
    // sends nothing more, neither a statement nor a commit.
    let mut frozen = stalled.begin().await.unwrap();
    sqlx::query("select 1 from purchase where purchase_id = $1 for update")
        .bind(purchase)
        .execute(&mut *frozen)
        .await
        .unwrap();

    // Act: Stripe delivers the payment to the healthy instance.
    let started = Instant::now();
    let fact = Fact::CheckoutCompleted(World::session_facts(
        purchase,
        &session,
        SessionPayment::Paid,
    ));
    let outcome = payments::apply(
        &healthy,
        Some(Delivery {
            event_id: "evt_stalled_peer",
            event_type: "checkout.session.completed",
            livemode: false,
        }),
        &fact,
        &Actor::Stripe,
    )
    .await;

    // Assert: applied (not a lock timeout), within the lock timeout, and the stalled
    // transaction was ended by PostgreSQL.
    let outcome = outcome.unwrap_or_else(|e| {
        panic!(
            "the healthy instance failed after {:?}: {e}",
            started.elapsed()
        )
    });
    assert!(
        matches!(outcome.effect, Effect::Fulfilled { .. }),
        "{outcome:?}"
    );
    assert!(started.elapsed() < DbConfig::default().lock_timeout);
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert!(
        frozen.commit().await.is_err(),
        "PostgreSQL ended the stalled transaction's session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_postgres_ended_for_idling_is_run_again_and_succeeds() {
    // Arrange: the service's pool settings; the first run of a transaction stalls past the idle
    // timeout between two statements (a starved or paused process), as the chaos suite saw a
    // webhook's do under load.
    let world = World::new(1, 2).await;
    let pool = db::connect(world.db.connect_options(), &DbConfig::default())
        .await
        .unwrap();
    let runs = std::sync::atomic::AtomicU32::new(0);

    // Act
    let result = db::retry_transient(|| async {
        let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut tx = pool.begin().await?;
        sqlx::query("select 1").execute(&mut *tx).await?;
        if run == 0 {
            tokio::time::sleep(
                DbConfig::default().idle_in_transaction_timeout + Duration::from_secs(1),
            )
            .await;
        }
        let value: i32 = sqlx::query_scalar("select 42").fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(value)
    })
    .await;

    // Assert: the first run was ended by PostgreSQL (and rolled back); the second went through.
    assert_eq!(result.unwrap(), 42);
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
}
