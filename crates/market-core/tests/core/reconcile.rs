//! Reconciliation of a listing with what Xano really holds.
//!
//! Proves the documented policy (src/reconcile.rs) on seeded differences: unknown unused tokens with
//! a tier's `max_installs` are adopted into its pool, unknown unused ones with no matching tier are
//! removed at Xano, used ones are recorded as foreign and left alone; our tokens deleted at Xano
//! behind our back are flagged missing, and a buyer whose token vanished gets a new one; installs
//! counts are refreshed; a limit Xano holds wrongly is written again. The Report counts each of these, and a second run right after the first
//! (before or after the jobs it queued have run) changes nothing.

use crate::common::{CANONICAL, World};
use market_core::audit::Actor;
use market_core::payments::Effect;
use market_core::purchases;
use market_core::reconcile::{self, Report};
use market_core::{PurchaseId, PurchaseStatus};
use master_api::TokenValue;

/// A full pool of 4 (low water 2) and two fulfilled purchases, which leaves 2 tokens available.
async fn world_with_two_sales() -> (World, PurchaseId, PurchaseId) {
    let world = World::new(2, 4).await;
    world.fill_pool().await;
    let mut sold = Vec::new();
    for n in 0..2 {
        let (purchase, session) = world.checkout().await;
        let paid = world
            .deliver_paid(&format!("evt_{n}"), purchase, &session)
            .await;
        assert!(matches!(paid.effect, Effect::Fulfilled { .. }), "{paid:?}");
        sold.push(purchase);
    }
    world.drain().await;
    assert_eq!(world.sim_tokens().len(), 4);
    (world, sold[0], sold[1])
}

async fn reconcile_now(world: &World) -> Report {
    reconcile::listing(&world.market, world.listing, &Actor::Admin("ops".into()))
        .await
        .unwrap()
}

fn expected(world: &World, at_xano: u64) -> Report {
    Report {
        listing_id: Some(world.listing),
        canonical: CANONICAL.to_owned(),
        at_xano,
        ..Report::default()
    }
}

/// (state, origin, has a tier, current_installs) of the token row holding `token`.
async fn row_of(world: &World, token: &str) -> (String, String, bool, i64) {
    sqlx::query_as(
        "select state::text, origin, tier_id is not null, current_installs
         from install_token where token_fingerprint = $1",
    )
    .bind(world.fingerprint(token))
    .fetch_one(world.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_at_xano_are_adopted_removed_or_recorded_as_foreign() {
    // Arrange: someone else's client creates four tokens on our snippet.
    let (world, _, _) = world_with_two_sales().await;
    let other = crate::common::xano_client(&world.sim);
    let mut seed = Vec::new();
    for max_installs in [5, 7, 3, 5] {
        let token = other.create_token(CANONICAL, max_installs).await.unwrap();
        seed.push(token.token.expose().to_owned());
    }
    let [unused, unmatched, used, used_matching] = seed.try_into().unwrap();
    world.sim.install(CANONICAL, &used).unwrap();
    world.sim.install(CANONICAL, &used_matching).unwrap();

    // Act
    let report = reconcile_now(&world).await;
    let before_jobs = reconcile_now(&world).await;

    // Assert: the report, then each token's fate.
    assert_eq!(
        report,
        Report {
            adopted: 1,
            removed: 1,
            foreign: 2,
            ..expected(&world, 8)
        }
    );
    assert!(!before_jobs.changed(), "{before_jobs:?}");
    let adopted_row = row_of(&world, &unused).await;
    assert_eq!(adopted_row, ("available".into(), "adopted".into(), true, 0));
    let tier: market_core::TierId =
        sqlx::query_scalar("select tier_id from install_token where token_fingerprint = $1")
            .bind(world.fingerprint(&unused))
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(
        tier, world.tier,
        "adopted into the tier with max_installs 5"
    );
    assert_eq!(
        row_of(&world, &unmatched).await,
        ("retiring".into(), "found".into(), false, 0)
    );
    for token in [&used, &used_matching] {
        assert_eq!(
            row_of(&world, token).await,
            ("foreign".into(), "found".into(), false, 1),
            "a used token is never sold again"
        );
    }

    // Act: the removal runs.
    world.drain().await;
    let after_jobs = reconcile_now(&world).await;

    // Assert
    let sim = world.sim_tokens();
    assert!(!sim.contains(&unmatched), "removed at Xano");
    assert_eq!(row_of(&world, &unmatched).await.0, "retired");
    assert!(
        sim.contains(&used) && sim.contains(&used_matching),
        "left alone"
    );
    assert!(sim.contains(&unused));
    assert!(!after_jobs.changed(), "{after_jobs:?}");
    assert_eq!(world.db_live_tokens().await, sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_deleted_at_xano_behind_our_back_are_flagged_and_a_buyers_token_is_reissued() {
    // One unsold token is gone too: the reissue is served from the pool.
    deleted_behind_our_back(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_vanished_token_is_reminted_when_the_pool_is_empty_too() {
    // Both unsold tokens are gone too: the reissue mints at Xano.
    deleted_behind_our_back(2).await;
}

async fn deleted_behind_our_back(unsold_deleted: i64) {
    // Arrange: unsold tokens and a buyer's token are deleted at Xano by someone else.
    let (world, buyer, _) = world_with_two_sales().await;
    let mut gone: Vec<String> = world
        .tokens_where(&format!(
            "install_token_id in (select install_token_id from install_token
                                  where state = 'available' order by install_token_id limit {unsold_deleted})"
        ))
        .await;
    let bought = world.live_tokens_of(buyer).await.remove(0);
    gone.push(bought.clone());
    let other = crate::common::xano_client(&world.sim);
    for token in &gone {
        other
            .delete_token(CANONICAL, &TokenValue::new(token.as_str()))
            .await
            .unwrap();
    }

    // Act
    let report = reconcile_now(&world).await;
    let before_jobs = reconcile_now(&world).await;

    // Assert
    let missing = u64::try_from(unsold_deleted).unwrap() + 1;
    assert_eq!(
        report,
        Report {
            missing,
            reissued: 1,
            ..expected(&world, 4 - missing)
        }
    );
    assert!(!before_jobs.changed(), "{before_jobs:?}");
    for token in &gone {
        assert_eq!(row_of(&world, token).await.0, "missing");
    }
    assert!(world.live_tokens_of(buyer).await.is_empty());

    // Act: the reissue runs.
    world.drain().await;
    let after_jobs = reconcile_now(&world).await;

    // Assert: the buyer holds a new live token, shown on the receipt.
    let reissued = world.live_tokens_of(buyer).await;
    assert_eq!(reissued.len(), 1);
    assert_ne!(reissued[0], bought);
    assert!(world.sim_tokens().contains(&reissued[0]));
    let purchase = purchases::by_id(world.pool(), buyer)
        .await
        .unwrap()
        .unwrap();
    let receipt = purchases::receipt_of(world.pool(), &world.market.envelope, &purchase)
        .await
        .unwrap();
    assert_eq!(receipt.status, PurchaseStatus::Fulfilled);
    let shown = receipt.token.unwrap();
    assert_eq!(shown.state, "assigned");
    assert_eq!(shown.value.unwrap().expose(), reissued[0]);
    assert!(!after_jobs.changed(), "{after_jobs:?}");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_counts_are_refreshed_from_xano() {
    // Arrange: a buyer installs twice.
    let (world, buyer, _) = world_with_two_sales().await;
    let token = world.live_tokens_of(buyer).await.remove(0);
    world.sim.install(CANONICAL, &token).unwrap();
    assert_eq!(world.sim.install(CANONICAL, &token).unwrap(), 2);

    // Act
    let report = reconcile_now(&world).await;
    let again = reconcile_now(&world).await;

    // Assert
    assert_eq!(
        report,
        Report {
            refreshed: 1,
            ..expected(&world, 4)
        }
    );
    assert!(!again.changed(), "{again:?}");
    // (Its origin may be `minted` or `adopted`: the listing's first reconciliation runs beside the
    // first replenisher and may record a fresh token before the replenisher does.)
    let (state, _, in_tier, installs) = row_of(&world, &token).await;
    assert_eq!((state.as_str(), in_tier, installs), ("assigned", true, 2));
    let purchase = purchases::by_id(world.pool(), buyer)
        .await
        .unwrap()
        .unwrap();
    let receipt = purchases::receipt_of(world.pool(), &world.market.envelope, &purchase)
        .await
        .unwrap();
    assert_eq!(receipt.token.unwrap().current_installs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_set_back_at_xano_by_a_late_update_is_written_again_keeping_the_installs() {
    // Arrange: a buyer installs once; then an update that reached Xano after its client gave up
    // leaves the token at 2 installs where the purchase has 5.
    let (world, buyer, _) = world_with_two_sales().await;
    let token = world.live_tokens_of(buyer).await.remove(0);
    world.sim.install(CANONICAL, &token).unwrap();
    world
        .market
        .xano
        .update_token(CANONICAL, &TokenValue::new(token.as_str()), 2, 1)
        .await
        .unwrap();

    // Act
    let report = reconcile_now(&world).await;
    world.drain().await;
    let again = reconcile_now(&world).await;

    // Assert
    assert_eq!(
        report,
        Report {
            refreshed: 1,
            limits_drifted: 1,
            ..expected(&world, 4)
        }
    );
    assert!(!again.changed(), "{again:?}");
    let at_xano = world
        .sim
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token)
        .map(|t| (t.max_installs, t.current_installs));
    assert_eq!(
        at_xano,
        Some((5, 1)),
        "the purchase's limit, the installs kept"
    );
    let (state, _, _, installs) = row_of(&world, &token).await;
    assert_eq!((state.as_str(), installs), ("assigned", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installs_count_set_back_at_xano_by_a_late_update_is_written_again() {
    // Arrange: a buyer installs three times and a pass reads the count; then an update of ours
    // that Xano applies late sets it back to 0, and the buyer installs once more.
    let (world, buyer, _) = world_with_two_sales().await;
    let token = world.live_tokens_of(buyer).await.remove(0);
    for _ in 0..3 {
        world.sim.install(CANONICAL, &token).unwrap();
    }
    reconcile_now(&world).await;
    let value = TokenValue::new(token.as_str());
    let xano = &world.market.xano;
    xano.update_token(CANONICAL, &value, 5, 0).await.unwrap();
    world.sim.install(CANONICAL, &token).unwrap();

    // Act
    let report = reconcile_now(&world).await;
    world.drain().await;
    let again = reconcile_now(&world).await;

    // Assert: the count read before is kept and written back with the limit; the install made
    // after the late update is the one counted from the lower figure.
    assert_eq!(
        report,
        Report {
            counts_set_back: 1,
            ..expected(&world, 4)
        }
    );
    assert!(!again.changed(), "{again:?}");
    let at_xano = world
        .sim
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token);
    assert_eq!(
        at_xano.map(|t| (t.max_installs, t.current_installs)),
        Some((5, 3))
    );
    assert_eq!(row_of(&world, &token).await.3, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_in_step_with_xano_reconciles_to_no_change() {
    // Arrange
    let (world, _, _) = world_with_two_sales().await;

    // Act
    let reports = reconcile::all(&world.market, &Actor::System).await.unwrap();

    // Assert
    assert_eq!(reports, vec![expected(&world, 4)]);
    assert!(!reports[0].changed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_waits_for_a_purchase_a_payment_path_holds_before_it_writes_that_purchases_token() {
    // Arrange: a refunded buyer's token was deleted at Xano, and the deletion job holds the
    // purchase's row (as every path does before it writes a purchase's tokens) to record it.
    let world = World::new(2, 4).await;
    world.fill_pool().await;
    let (buyer, session) = world.checkout().await;
    world.deliver_paid("evt_paid", buyer, &session).await;
    world.drain().await;
    let token = world.live_tokens_of(buyer).await.remove(0);
    world.deliver_refund("evt_refund", &session).await;
    assert_eq!(row_of(&world, &token).await.0, "revoking");
    crate::common::xano_client(&world.sim)
        .delete_token(CANONICAL, &TokenValue::new(token.as_str()))
        .await
        .unwrap();
    let mut job = world.pool().begin().await.unwrap();
    sqlx::query("select 1 from purchase where purchase_id = $1 for update")
        .bind(buyer)
        .execute(&mut *job)
        .await
        .unwrap();

    // Act: the pass starts and comes to wait for a lock; then the job records the deletion.
    let pass = tokio::spawn({
        let (market, listing) = (world.market.clone(), world.listing);
        async move { reconcile::listing(&market, listing, &Actor::System).await }
    });
    let waiting = "select exists (select 1 from pg_stat_activity
                                  where datname = current_database() and wait_event_type = 'Lock')";
    let mut polls = 0;
    while !sqlx::query_scalar::<_, bool>(waiting)
        .fetch_one(world.pool())
        .await
        .unwrap()
    {
        polls += 1;
        assert!(polls < 2_000, "the pass never waited for the purchase");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let recorded = sqlx::query(
        "update install_token set state = 'revoked', released_at = now()
         where token_fingerprint = $1 and state = 'revoking'",
    )
    .bind(world.fingerprint(&token))
    .execute(&mut *job)
    .await
    .map(|done| done.rows_affected());
    job.commit().await.unwrap();
    let pass = pass.await.unwrap();

    // Assert: neither was aborted as a deadlock victim (the pass used to write the token first,
    // then wait for the purchase in the revocation's webhook trigger); the pass found the deletion
    // already recorded (its compare-and-set wrote nothing).
    assert_eq!(recorded.unwrap(), 1);
    let report = pass.unwrap();
    assert_eq!(report.confirmed_deleted, 0, "{report:?}");
    assert_eq!(row_of(&world, &token).await.0, "revoked");
}
