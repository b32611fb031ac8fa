//! Disputes from inquiry to close: an inquiry keeps access, an open dispute suspends it, a won one
//! gives it back with a new token exactly once, a lost one is final; in any order of events.

use crate::common::{World, audit_count, payment_intent_of};
use crate::refunds::fulfilled;
use market_core::payments::{DisputeStage, Effect, Fact, Outcome};

fn dispute(session: &str, stage: DisputeStage) -> Fact {
    Fact::Dispute {
        payment_intent: payment_intent_of(session),
        stage,
    }
}

async fn deliver_dispute(
    world: &World,
    event_id: &str,
    session: &str,
    stage: DisputeStage,
) -> Outcome {
    let type_ = match stage {
        DisputeStage::Inquiry | DisputeStage::Opened => "charge.dispute.created",
        _ => "charge.dispute.closed",
    };
    world
        .deliver(event_id, type_, &dispute(session, stage))
        .await
}

/// Purchases holding more than one live token, in the database.
async fn doubled(world: &World) -> i64 {
    sqlx::query_scalar(
        "select count(*) from (select purchase_id from install_token
                               where state in ('assigned', 'revoking') and purchase_id is not null
                               group by purchase_id having count(*) > 1) d",
    )
    .fetch_one(world.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inquiry_leaves_the_buyer_their_token_and_is_audited() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, token) = fulfilled(&world).await;

    // Act
    let inquiry = deliver_dispute(&world, "evt_inq", &session, DisputeStage::Inquiry).await;
    let closed = deliver_dispute(
        &world,
        "evt_inq_closed",
        &session,
        DisputeStage::InquiryClosed,
    )
    .await;
    world.drain().await;

    // Assert: nothing moved, the token is still live at Xano, and an operator can see both.
    assert_eq!(inquiry.effect, Effect::NoChange, "{inquiry:?}");
    assert_eq!(closed.effect, Effect::NoChange, "{closed:?}");
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await, vec![token.clone()]);
    assert!(world.sim_tokens().contains(&token), "still live at Xano");
    assert_eq!(
        audit_count(world.pool(), "purchase.inquiry_opened", purchase).await,
        1
    );
    assert_eq!(
        audit_count(world.pool(), "purchase.inquiry_closed", purchase).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_dispute_gives_the_buyer_one_new_token_and_late_events_change_nothing() {
    // Arrange: a dispute opened and its token deleted at Xano.
    let world = World::new(1, 2).await;
    let (purchase, session, old) = fulfilled(&world).await;
    let opened = deliver_dispute(&world, "evt_open", &session, DisputeStage::Opened).await;
    assert_eq!(opened.effect, Effect::Revoking { tokens: 1 });
    world.drain().await;
    assert!(
        !world.sim_tokens().contains(&old),
        "suspended: deleted at Xano"
    );

    // Act: won; then the same close again, a late "created", a late "lost" and a late "paid".
    let won = deliver_dispute(&world, "evt_won", &session, DisputeStage::Won).await;
    world.drain().await;
    let again = deliver_dispute(&world, "evt_won_2", &session, DisputeStage::Won).await;
    let created = deliver_dispute(&world, "evt_open_2", &session, DisputeStage::Opened).await;
    let lost = deliver_dispute(&world, "evt_lost", &session, DisputeStage::Lost).await;
    let paid = world.deliver_paid("evt_paid_2", purchase, &session).await;
    world.drain().await;

    // Assert
    assert!(matches!(won.effect, Effect::Fulfilled { .. }), "{won:?}");
    assert_eq!(won.status, Some(market_core::PurchaseStatus::Reinstated));
    for late in [again, created, lost] {
        assert_eq!(late.effect, Effect::NoChange, "{late:?}");
    }
    assert_eq!(paid.effect, Effect::AlreadyFulfilled, "{paid:?}");
    assert_eq!(world.status_of(purchase).await, "reinstated");
    let live = world.live_tokens_of(purchase).await;
    assert_eq!(live.len(), 1, "one live token: {live:?}");
    assert_ne!(live[0], old, "a new token, not the deleted one");
    assert!(world.sim_tokens().contains(&live[0]), "live at Xano");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
    assert_eq!(
        audit_count(world.pool(), "purchase.reinstated", purchase).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_won_while_its_token_is_still_being_deleted_is_served_by_the_deletion() {
    // Arrange: opened, and the deletion at Xano not run yet.
    let world = World::new(1, 2).await;
    let (purchase, session, old) = fulfilled(&world).await;
    deliver_dispute(&world, "evt_open", &session, DisputeStage::Opened).await;

    // Act: won before the delete job ran.
    let won = deliver_dispute(&world, "evt_won", &session, DisputeStage::Won).await;
    let waiting = world.live_tokens_of(purchase).await;
    world.drain().await;

    // Assert: it waited (one live token per purchase), then the deletion's finish served it.
    assert_eq!(won.effect, Effect::AwaitingToken, "{won:?}");
    assert_eq!(
        waiting,
        vec![old.clone()],
        "only the revoking token meanwhile"
    );
    assert_eq!(doubled(&world).await, 0);
    let live = world.live_tokens_of(purchase).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live[0], old);
    assert!(
        !world.sim_tokens().contains(&old),
        "the old token is gone at Xano"
    );
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_dispute_with_an_empty_pool_mints_the_new_token() {
    // Arrange: a pool nobody refills, emptied by the one sale.
    let world = World::new(0, 0).await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    world.drain().await;
    let old = world.live_tokens_of(purchase).await;
    assert_eq!(old.len(), 1, "minted for the sale");
    deliver_dispute(&world, "evt_open", &session, DisputeStage::Opened).await;
    world.drain().await;

    // Act
    let won = deliver_dispute(&world, "evt_won", &session, DisputeStage::Won).await;
    world.drain().await;

    // Assert
    assert_eq!(won.effect, Effect::AwaitingToken, "{won:?}");
    let live = world.live_tokens_of(purchase).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live, old);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_dispute_stays_revoked_and_nothing_reopens_it() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, token) = fulfilled(&world).await;
    deliver_dispute(&world, "evt_open", &session, DisputeStage::Opened).await;

    // Act
    let lost = deliver_dispute(&world, "evt_lost", &session, DisputeStage::Lost).await;
    let won = deliver_dispute(&world, "evt_won", &session, DisputeStage::Won).await;
    let paid = world.deliver_paid("evt_paid_2", purchase, &session).await;
    world.drain().await;

    // Assert
    assert_eq!(lost.status, Some(market_core::PurchaseStatus::DisputeLost));
    assert_eq!(won.effect, Effect::NoChange, "{won:?}");
    assert_eq!(paid.effect, Effect::NoChange, "{paid:?}");
    assert_eq!(world.status_of(purchase).await, "dispute_lost");
    assert!(world.live_tokens_of(purchase).await.is_empty());
    assert!(!world.sim_tokens().contains(&token), "deleted at Xano");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_move_a_purchase_back_or_out_of_a_lost_dispute() {
    // Arrange
    let world = World::new(1, 2).await;
    let (purchase, session, _) = fulfilled(&world).await;
    deliver_dispute(&world, "evt_lost", &session, DisputeStage::Lost).await;
    world.drain().await;

    // Act: a bug that writes the status directly.
    let mut refused = Vec::new();
    for status in ["reinstated", "paid", "fulfilled", "disputed", "pending"] {
        let moved =
            sqlx::query("update purchase set status = $2::purchase_status where purchase_id = $1")
                .bind(purchase)
                .bind(status)
                .execute(world.pool())
                .await;
        refused.push((status, moved.is_err()));
    }

    // Assert
    assert!(refused.iter().all(|(_, refused)| *refused), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_events_in_any_order_end_with_one_token_when_won_and_none_when_lost() {
    // Arrange: one purchase per order of (paid, dispute opened, dispute closed), won and lost.
    let world = World::new(2, 4).await;
    world.fill_pool().await;
    let orders: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut cases = Vec::new();
    for outcome in [DisputeStage::Won, DisputeStage::Lost] {
        for order in orders {
            let (purchase, session) = world.checkout().await;
            for step in order {
                let id = format!("evt_{}_{step}", purchase.0.simple());
                match step {
                    0 => {
                        world.deliver_paid(&id, purchase, &session).await;
                    }
                    1 => {
                        deliver_dispute(&world, &id, &session, DisputeStage::Opened).await;
                    }
                    _ => {
                        deliver_dispute(&world, &id, &session, outcome).await;
                    }
                }
                world.drain().await;
            }
            cases.push((outcome, order, purchase));
        }
    }

    // Assert
    for (outcome, order, purchase) in cases {
        let status = world.status_of(purchase).await;
        let live = world.live_tokens_of(purchase).await.len();
        if outcome == DisputeStage::Won {
            let held = ["fulfilled", "reinstated"].contains(&status.as_str());
            assert!(held, "won, {order:?}: {status}");
            assert_eq!(live, 1, "won, {order:?}: {status}");
        } else {
            assert_eq!(status, "dispute_lost", "{order:?}");
            assert_eq!(live, 0, "lost, {order:?}");
        }
    }
    assert_eq!(doubled(&world).await, 0);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triggers_rank_of_every_status_is_the_state_machines() {
    let world = World::new(0, 0).await;
    for status in market_core::PurchaseStatus::ALL {
        let rank: i32 = sqlx::query_scalar("select purchase_status_rank($1::purchase_status)")
            .bind(status.as_str())
            .fetch_one(world.pool())
            .await
            .unwrap();
        assert_eq!(rank, i32::from(status.rank()), "{status:?}");
    }
}
