//! The pools as the metrics show them: every active tier counted empty, low (under its low-water
//! mark) or stocked, as the dashboard says, and only the emptiest named, however many tiers there
//! are.

use market_core::audit::Actor;
use market_core::pool::{self, EMPTIEST};
use market_core::tiers;

use crate::common::{World, tier_spec};

#[tokio::test]
async fn a_pool_is_counted_empty_then_stocked_then_low_as_it_sells_under_its_low_water() {
    let world = World::new(3, 3).await;

    let empty = pool::gauges(world.pool()).await.unwrap();
    world.fill_pool().await;
    let stocked = pool::gauges(world.pool()).await.unwrap();
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let low = pool::gauges(world.pool()).await.unwrap();

    assert_eq!((empty.empty, empty.low, empty.stocked), (1, 0, 0));
    assert_eq!((stocked.empty, stocked.low, stocked.stocked), (0, 0, 1));
    assert_eq!((low.empty, low.low, low.stocked), (0, 1, 0));
    let named: Vec<_> = low
        .emptiest
        .iter()
        .map(|g| (g.tier_id, g.available, g.pool_target))
        .collect();
    assert_eq!(named, vec![(world.tier, 2, 3)]);
}

#[tokio::test]
async fn only_the_emptiest_tiers_are_named_and_every_tier_is_counted() {
    let world = World::new(2, 3).await;
    world.fill_pool().await;
    let mut conn = world.pool().acquire().await.unwrap();
    // More empty pools than are named, and three tiers that want no pool (target 0).
    let empty = EMPTIEST + 1;
    let targets = (0..empty).map(|_| 4).chain([0, 0, 0]);
    for (i, target) in targets.enumerate() {
        tiers::apply(
            &mut conn,
            world.listing,
            &tier_spec(&format!("t{i}"), 900, 1, 0, target),
            &Actor::Admin("test".into()),
        )
        .await
        .unwrap();
    }
    drop(conn);

    let gauges = pool::gauges(world.pool()).await.unwrap();

    assert_eq!(gauges.empty, empty);
    assert_eq!(gauges.low, 0);
    assert_eq!(
        gauges.stocked,
        1 + 3,
        "the world's stocked pool, and no pool wanted"
    );
    assert_eq!(gauges.emptiest.len(), usize::try_from(EMPTIEST).unwrap());
    assert!(
        gauges
            .emptiest
            .iter()
            .all(|g| g.available == 0 && g.pool_target == 4),
        "the empty pools come first: {:?}",
        gauges.emptiest
    );
}
