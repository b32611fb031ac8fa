//! The whole path once, end to end inside market-core: pool fill, payment, fulfilment, refund.

use crate::common::World;
use market_core::payments::Effect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_purchase_takes_a_pool_token_and_a_refund_deletes_it_at_xano() {
    let world = World::new(2, 4).await;
    world.fill_pool().await;
    assert_eq!(world.sim_tokens().len(), 4, "the pool filled to its target");

    let (purchase, session) = world.checkout().await;
    let outcome = world.deliver_paid("evt_1", purchase, &session).await;
    assert!(
        matches!(outcome.effect, Effect::Fulfilled { .. }),
        "{outcome:?}"
    );
    let tokens = world.live_tokens_of(purchase).await;
    assert_eq!(tokens.len(), 1);
    assert!(world.sim_tokens().contains(&tokens[0]));

    let refund = world.deliver_refund("evt_2", &session).await;
    assert_eq!(refund.effect, Effect::Revoking { tokens: 1 });
    world.drain().await;
    assert!(
        !world.sim_tokens().contains(&tokens[0]),
        "the token was deleted at Xano"
    );
    assert_eq!(world.status_of(purchase).await, "refunded");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}
