//! Sellers share an instance's job workers fairly: one seller whose Xano is slow holds at most half
//! of them, and the house's work (and any other seller's) goes on meanwhile. The chaos suite's seller
//! isolation run found the opposite: a storming seller's jobs held every worker of every instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::listings::ListingSpec;
use market_core::tiers::TierSpec;
use market_core::{Canonical, Currency, Email, Money, Slug, seller_xano, sellers};
use sandbox::xano::{Fault, SimAccount};
use secrecy::SecretString;
use uuid::Uuid;

use crate::common::World;

/// Carol: a seller with three listings of her own, each a tier whose pool wants two tokens.
async fn carol_with_three_pools(world: &World) -> Uuid {
    let email = Email::parse("carol@example.com").unwrap();
    let (carol, _) = sellers::invite(world.pool(), "Carol", &email, &Actor::System)
        .await
        .unwrap();
    let token = world.sim.add_account(SimAccount {
        id: "88".into(),
        name: "Carol".into(),
        email: "carol@example.test".into(),
    });
    seller_xano::set(
        &world.market,
        carol.seller_id,
        SecretString::from(token.clone()),
        None,
        &Actor::System,
    )
    .await
    .unwrap();
    for n in 1..=3 {
        let canonical = format!("carol-{n}_01");
        assert!(world.sim.add_snippet_for(&token, &canonical, "Carol's"));
        let listing = ListingSpec {
            canonical: Canonical::parse(&canonical).unwrap(),
            title: format!("Carol's {n}"),
            description: String::new(),
            active: true,
        };
        sellers::save_listing(&world.market, carol.seller_id, &listing, &Actor::System)
            .await
            .unwrap();
        let tier = TierSpec {
            slug: Slug::parse("solo").unwrap(),
            name: "Solo".into(),
            price: Money::new(900, Currency::parse("usd").unwrap()).unwrap(),
            max_installs: 3,
            pool_low_water: 1,
            pool_target: 2,
            active: true,
        };
        sellers::save_tier(
            world.pool(),
            carol.seller_id,
            &canonical,
            &tier,
            &Actor::System,
        )
        .await
        .unwrap();
    }
    carol.seller_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sellers_slow_xano_holds_at_most_half_the_workers_and_the_house_is_served_meanwhile() {
    // Arrange: Carol's Xano answers after 1.5 s; three refills of hers are due; the house's pool
    // (four workers on this instance) is empty and wants three tokens.
    let world = World::new(2, 3).await;
    let carol = carol_with_three_pools(&world).await;
    world.sim.inject(
        Fault::Latency {
            min: Duration::from_millis(1500),
            max: Duration::from_millis(1500),
            only: None,
        }
        .for_account("88"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (pool, stop, most) = (world.pool().clone(), stop.clone(), most.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let running: i64 = sqlx::query_scalar(
                    "select count(*) from job where state = 'running' and seller_id = $1",
                )
                .bind(carol)
                .fetch_one(&pool)
                .await
                .unwrap();
                most.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Act: one instance runs its workers for a while.
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(Runner::new(world.market.clone()).run(
        async move {
            let _ = shutdown_rx.await;
        },
        Duration::from_secs(5),
    ));
    let house_served = async {
        for _ in 0..200 {
            if world.sim_tokens().len() >= 3 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
    .await;
    let carol_busy = most.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = shutdown_tx.send(());
    runner.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();

    // Assert: Carol's work ran, but never on more than half the workers; the house was served
    // while her calls were slow.
    let most = most.load(Ordering::SeqCst);
    assert!(most >= 1, "Carol's refills ran");
    assert!(most <= 2, "Carol's jobs held {most} of 4 workers");
    assert!(
        house_served,
        "the house's pool filled while Carol's Xano was slow ({carol_busy} of hers running)"
    );
}
