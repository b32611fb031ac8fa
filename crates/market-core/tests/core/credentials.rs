//! Xano refuses credentials one at a time (self-healing, finding 1): an instance left running with
//! an old access token during a rotation meets 401s while the others' token works.
//!
//! Proves: the stale instance records the refusal on its own credential's row only, hands back (does
//! not park) what it claimed, and claims nothing more; purchases paid past an empty pool all get
//! their tokens through the instance whose credential works; the two instances' rows never flip each
//! other; the stale instance is drained (not ready) only while another credential in use works; and
//! a 403 that `GET /auth/me` confirms refuses the credential the same way, without parking anything.

use std::time::Duration;

use crate::common::{World, test_jobs_config};
use market_core::jobs::runner::Runner;
use market_core::payments::Effect;
use market_core::{JobsConfig, Market, PurchaseId, health};
use sandbox::xano::TokenState;
use uuid::Uuid;

/// Probes far apart, so that nothing in a test heals by waiting.
fn patient_probes() -> JobsConfig {
    JobsConfig {
        probe_interval: Duration::from_secs(3600),
        ..test_jobs_config()
    }
}

/// `count` purchases paid while the pool is empty: one mint job each.
async fn paid_past_an_empty_pool(world: &World, count: usize) -> Vec<PurchaseId> {
    let mut purchases = Vec::new();
    for n in 0..count {
        let (purchase, session) = world.checkout().await;
        let paid = world
            .deliver_paid(&format!("evt_{n}"), purchase, &session)
            .await;
        assert_eq!(paid.effect, Effect::AwaitingToken, "the pool is empty");
        purchases.push(purchase);
    }
    purchases
}

/// (state, attempt, lease_owner) of every mint job, by id.
async fn mint_jobs(world: &World) -> Vec<(String, i32, Option<Uuid>)> {
    sqlx::query_as(
        "select state::text, attempt, lease_owner from job
         where kind = 'mint_for_purchase' order by job_id",
    )
    .fetch_all(world.pool())
    .await
    .unwrap()
}

/// A good instance (the account's fresh token) and a stale one (the old token, now expired).
fn rotation(world: &World) -> (Market, Market) {
    let fresh = world.sim.add_access_token();
    let good = world.instance_with_token(&fresh);
    world.sim.set_access_token_state(TokenState::Expired);
    (good, world.market.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_paid_past_an_empty_pool_all_get_tokens_from_the_good_instance_while_a_stale_one_takes_nothing()
 {
    // Arrange: 12 purchases wait for a mint; the stale instance is the first to look.
    let world = World::with_config(0, 0, patient_probes()).await;
    world.fill_pool().await;
    let (good, stale) = rotation(&world);
    let purchases = paid_past_an_empty_pool(&world, 12).await;
    let (good_runner, stale_runner) = (Runner::new(good.clone()), Runner::new(stale.clone()));

    // Act
    let stale_ran = stale_runner.drain().await.unwrap();
    let after_stale = mint_jobs(&world).await;
    let stale_again = stale_runner.drain().await.unwrap();
    let good_ran = good_runner.drain().await.unwrap();

    // Assert: the stale instance met the 401 on its first batch, handed it back and stopped.
    assert_eq!(
        stale_ran,
        test_jobs_config().workers,
        "one batch, then nothing"
    );
    assert_eq!(stale_again, 0, "a refused instance claims nothing");
    assert!(
        after_stale
            .iter()
            .all(|(state, attempt, owner)| state == "queued" && *attempt == 0 && owner.is_none()),
        "released, not parked, the attempt not counted: {after_stale:?}"
    );
    assert_eq!(good_ran, 12);
    for purchase in &purchases {
        assert_eq!(world.status_of(*purchase).await, "fulfilled");
        assert_eq!(world.live_tokens_of(*purchase).await.len(), 1);
    }
    let left: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select kind, state::text, last_error from job
             where state <> 'done' and kind <> 'reconcile_listing'",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert!(left.is_empty(), "nothing parked, dead or waiting: {left:?}");
    assert_eq!(health::own(&stale).await.unwrap().state, "unauthorized");
    assert_eq!(health::own(&good).await.unwrap().state, "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_and_a_good_credential_each_keep_their_own_row_and_never_flip_each_other() {
    // Arrange
    let world = World::with_config(0, 0, test_jobs_config()).await;
    let (good, stale) = rotation(&world);
    for running in [&good, &stale] {
        health::touch(running).await.unwrap();
    }
    health::record_refusal(&stale, &master_api::Error::Unauthorized)
        .await
        .unwrap();

    // Act: the good instance's calls succeed, then the stale one's probe fails again.
    health::record_success(&good).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    health::probe_if_due(&stale).await.unwrap();
    health::probe_if_due(&good).await.unwrap();

    // Assert
    assert!(health::refused(&stale).await.unwrap());
    assert!(!health::refused(&good).await.unwrap());
    let rows = health::credentials(world.pool()).await.unwrap();
    let state_of = |market: &Market| {
        let id = market.credential().display_id();
        rows.iter()
            .find(|c| c.display_id == id)
            .map(|c| c.state.clone())
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(state_of(&stale).as_deref(), Some("unauthorized"));
    assert_eq!(state_of(&good).as_deref(), Some("healthy"));
    assert_ne!(good.credential(), stale.credential());
    let token = world.sim.access_token();
    assert!(
        !format!("{rows:?} {:?}", stale.credential()).contains(&token),
        "rows and names never hold the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_instance_is_drained_only_while_another_credential_in_use_works() {
    // Arrange: the fleet's only credential is refused.
    let world = World::with_config(0, 0, test_jobs_config()).await;
    let (good, stale) = rotation(&world);
    health::record_refusal(&stale, &master_api::Error::Unauthorized)
        .await
        .unwrap();
    let alone = health::readiness(&stale).await.unwrap();

    // Act: an instance with the fresh token starts and sweeps (which marks its credential in use).
    Runner::new(good.clone()).sweep().await.unwrap();
    let with_a_good_one = health::readiness(&stale).await.unwrap();
    let good_itself = health::readiness(&good).await.unwrap();

    // Assert
    assert!(
        !alone.should_drain(),
        "draining every instance helps nobody"
    );
    assert!(with_a_good_one.should_drain());
    assert_eq!(
        with_a_good_one.working_elsewhere,
        Some(good.credential().display_id())
    );
    assert_eq!(with_a_good_one.credential.state, "unauthorized");
    assert!(!good_itself.should_drain());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_that_auth_me_confirms_refuses_the_credential_and_hands_the_jobs_back_without_parking()
 {
    // Arrange
    let world = World::with_config(0, 0, patient_probes()).await;
    paid_past_an_empty_pool(&world, 2).await;
    world.sim.set_access_token_state(TokenState::Forbidden);

    // Act
    world.drain().await;

    // Assert
    assert_eq!(health::own(&world.market).await.unwrap().state, "forbidden");
    let all = mint_jobs(&world).await;
    assert!(
        all.iter()
            .all(|(state, attempt, _)| state == "queued" && *attempt == 0),
        "{all:?}"
    );
    assert!(
        health::forbidden_listings(world.pool())
            .await
            .unwrap()
            .is_empty(),
        "no listing is blamed for the credential"
    );
}
