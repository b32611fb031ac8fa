//! Xano's `update_token` writes absolute counts, so a job that moves a token's limit (an upgrade)
//! or carries its installs to a new token (a rotation) sends back the installs count it read in
//! Xano's token list. When that list leaves the token out (cut short by an incident), the only
//! count at hand is our own last reading, which misses the installs the buyer made since: the
//! chaos suite caught an upgrade that wrote it and set a buyer's installs back. The job must wait
//! for a list that shows the token instead.

use std::time::Duration;

use market_core::audit::Actor;
use market_core::rotation;
use sandbox::xano::Endpoint;

use crate::common::{CANONICAL, World};
use crate::upgrades::{at_xano, bought, team_tier, upgrade};

/// Runs the jobs until `done` holds, the retries' backoff let pass between rounds.
async fn drain_until(world: &World, what: &str, done: impl AsyncFn() -> bool) {
    for _ in 0..50 {
        world.drain().await;
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn an_upgrade_whose_token_is_left_out_of_xanos_list_waits_and_keeps_the_buyers_installs() {
    // Arrange: two installs Xano counts and the database has not read yet; the upgrade's
    // payment arrives, and the next token list comes back empty.
    let world = World::new(1, 2).await;
    let team = team_tier(&world).await;
    let (base, token) = bought(&world).await;
    world.sim.install(CANONICAL, &token).unwrap();
    world.sim.install(CANONICAL, &token).unwrap();
    let (up, session) = upgrade(&world, base, team).await;
    world.deliver_paid("evt_up", up.purchase_id, &session).await;
    let before = world.calls_to(Endpoint::Tokens);
    world.sim.truncate_token_lists(CANONICAL, 1, 0);

    // Act
    drain_until(&world, "the upgrade applied", async || {
        world.status_of(up.purchase_id).await == "fulfilled"
    })
    .await;

    // Assert
    assert_eq!(
        world.sim.truncations_left(CANONICAL),
        0,
        "the cut list was read"
    );
    assert_eq!(
        at_xano(&world, &token),
        (20, 2),
        "the new limit, the buyer's installs kept"
    );
    assert!(
        world.calls_to(Endpoint::Tokens) >= before + 2,
        "read again after the cut one"
    );
    assert_eq!(world.live_tokens_of(base).await, vec![token]);
}

#[tokio::test]
async fn a_rotation_whose_old_token_is_left_out_of_xanos_list_waits_and_carries_the_installs() {
    // Arrange: two installs on the token, unknown to the database; the next list is empty.
    let world = World::new(1, 3).await;
    let (base, old) = bought(&world).await;
    world.sim.install(CANONICAL, &old).unwrap();
    world.sim.install(CANONICAL, &old).unwrap();
    rotation::request(world.pool(), base, &Actor::Buyer)
        .await
        .unwrap();
    world.sim.truncate_token_lists(CANONICAL, 1, 0);

    // Act
    drain_until(&world, "the rotation done", async || {
        let state: String =
            sqlx::query_scalar("select state from token_rotation where purchase_id = $1")
                .bind(base)
                .fetch_one(world.pool())
                .await
                .unwrap();
        state != "pending"
    })
    .await;

    // Assert
    let (state, carried): (String, Option<i64>) =
        sqlx::query_as("select state, installs_carried from token_rotation where purchase_id = $1")
            .bind(base)
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!((state.as_str(), carried), ("done", Some(2)));
    assert_eq!(
        world.sim.truncations_left(CANONICAL),
        0,
        "the cut list was read"
    );
    let live = world.live_tokens_of(base).await;
    assert_eq!(live.len(), 1);
    assert_eq!(
        at_xano(&world, &live[0]),
        (5, 2),
        "the installs carried over"
    );
    assert!(world.sim.tokens(CANONICAL).iter().all(|t| t.token != old));
}
