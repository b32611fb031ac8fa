//! Reconciliation that converges and is hard to fool: a token marked missing that Xano lists again
//! is given back or deleted, never left live beside its replacement; and one pass that would mark
//! a large share of a listing's tokens missing waits for a second pass to confirm.

use market_core::PurchaseId;
use market_core::audit::Actor;
use market_core::payments::Effect;
use market_core::reconcile::{self, Report};
use master_api::TokenValue;

use crate::common::{CANONICAL, World, xano_client};

async fn reconcile_now(world: &World) -> Report {
    reconcile::listing(&world.market, world.listing, &Actor::System)
        .await
        .unwrap()
}

/// Whether the listing is flagged as having met a suspiciously short list.
async fn flagged(world: &World) -> bool {
    sqlx::query_scalar("select missing_suspected_at is not null from listing")
        .fetch_one(world.pool())
        .await
        .unwrap()
}

async fn sold(world: &World, n: usize) -> PurchaseId {
    let (purchase, session) = world.checkout().await;
    let paid = world
        .deliver_paid(&format!("evt_{n}"), purchase, &session)
        .await;
    assert!(matches!(paid.effect, Effect::Fulfilled { .. }), "{paid:?}");
    purchase
}

/// As a pass that met a short list would leave it: the buyer's token marked missing, a
/// replacement queued, though Xano still holds the token.
async fn marked_missing_but_live(world: &World, purchase: PurchaseId) -> String {
    let token = world.live_tokens_of(purchase).await.remove(0);
    sqlx::query("update install_token set state = 'missing' where purchase_id = $1")
        .bind(purchase)
        .execute(world.pool())
        .await
        .unwrap();
    sqlx::query("insert into job (kind, subject) values ('mint_for_purchase', $1)")
        .bind(purchase.0.to_string())
        .execute(world.pool())
        .await
        .unwrap();
    token
}

/// Found reading the code (self-healing issue, finding 3): a token marked missing that reappeared at
/// Xano stayed missing here and live there, beside the buyer's replacement: two working tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reappeared_token_whose_buyer_has_a_replacement_is_deleted_at_xano() {
    // Arrange: the buyer's token marked missing while still live at Xano, and the replacement made.
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let buyer = sold(&world, 0).await;
    let first = marked_missing_but_live(&world, buyer).await;
    world.drain().await;
    let replacement = world.live_tokens_of(buyer).await;
    assert_eq!(replacement.len(), 1);
    assert_ne!(replacement[0], first);

    // Act
    let report = reconcile_now(&world).await;
    world.drain().await;
    let again = reconcile_now(&world).await;

    // Assert: the old token is gone at Xano; the buyer keeps exactly the replacement.
    assert_eq!(report.reappeared, 1, "{report:?}");
    assert!(!world.sim_tokens().contains(&first));
    assert_eq!(world.live_tokens_of(buyer).await, replacement);
    assert!(!again.changed(), "{again:?}");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reappeared_token_of_a_buyer_still_waiting_is_given_back_and_no_second_token_is_made() {
    // Arrange: the buyer's token marked missing while still live at Xano; the mint not yet run.
    let world = World::new(0, 0).await;
    world.drain().await;
    sqlx::query("update tier set pool_low_water = 1, pool_target = 1")
        .execute(world.pool())
        .await
        .unwrap();
    market_core::jobs::runner::sweep(&world.market)
        .await
        .unwrap();
    world.drain().await;
    let buyer = sold(&world, 0).await;
    let token = marked_missing_but_live(&world, buyer).await;
    let at_xano_before = world.sim_tokens().len();

    // Act: reconciliation first, then the queued mint.
    let report = reconcile_now(&world).await;
    world.drain().await;

    // Assert: the same token is the buyer's again, and the mint made nothing.
    assert_eq!(report.reappeared, 1, "{report:?}");
    assert_eq!(world.live_tokens_of(buyer).await, [token]);
    assert!(
        world.sim_tokens().len() <= at_xano_before + 1,
        "only the pool refills"
    );
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

/// Found reading the code (finding 3): one truncated or empty token list from Xano would mark every
/// token of the listing missing and re-issue every buyer's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_would_mark_most_tokens_missing_holds_back_until_a_second_pass_confirms() {
    // Arrange: ten tokens, six of them deleted at Xano at once (two of them sold).
    let world = World::new(8, 8).await;
    world.fill_pool().await;
    for n in 0..2 {
        sold(&world, n).await;
    }
    world.drain().await;
    let all = world.db_live_tokens().await;
    assert_eq!(all.len(), 10);
    let other = xano_client(&world.sim);
    for token in &all[..6] {
        other
            .delete_token(CANONICAL, &TokenValue::new(token.as_str()))
            .await
            .unwrap();
    }

    // Act
    let first = reconcile_now(&world).await;
    let flagged_after_first = flagged(&world).await;
    let second = reconcile_now(&world).await;
    let flagged_after_second = flagged(&world).await;

    // Assert: the first pass changed nothing destructive and said so; the second acted.
    assert_eq!((first.missing, first.held_back), (0, 6), "{first:?}");
    assert!(flagged_after_first);
    assert_eq!((second.missing, second.held_back), (6, 0), "{second:?}");
    assert!(!flagged_after_second);
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action = 'reconcile.mass_missing_held_back'",
    )
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_pass_clears_a_flag_an_earlier_short_list_left() {
    // Arrange: a listing flagged by an earlier pass, and a Xano that lists everything again.
    let world = World::new(2, 3).await;
    world.fill_pool().await;
    sqlx::query("update listing set missing_suspected_at = now()")
        .execute(world.pool())
        .await
        .unwrap();

    // Act
    let report = reconcile_now(&world).await;

    // Assert
    assert!(!report.changed(), "{report:?}");
    assert!(!flagged(&world).await);
}

/// Found by the chaos suite's truncated-list nemesis: a pass that held back marking tokens missing
/// still believed the same short list about a token being deleted, recorded it as deleted while
/// Xano kept it, and the next pass had to delete it again (`reconcile.redelete`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_meets_an_empty_list_confirms_no_deletion_either() {
    // Arrange: ten tokens live, one buyer's being deleted (refunded, the delete job not run yet).
    let world = World::new(5, 10).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    world.deliver_refund("evt_refund", &session).await;
    let revoking = world.tokens_where("state = 'revoking'").await;
    assert_eq!(revoking.len(), 1);
    world.sim.truncate_token_lists(CANONICAL, 1, 0);

    // Act
    let cut = reconcile_now(&world).await;
    let state: String =
        sqlx::query_scalar("select state::text from install_token where purchase_id = $1")
            .bind(purchase)
            .fetch_one(world.pool())
            .await
            .unwrap();
    world.drain().await;
    let after = reconcile_now(&world).await;

    // Assert: nothing believed from the empty list; the delete job deleted it; nothing to repair.
    assert!(cut.held_back >= 10, "{cut:?}");
    assert_eq!(
        state, "revoking",
        "not confirmed deleted from an empty list"
    );
    assert!(
        !world.sim_tokens().contains(&revoking[0]),
        "deleted by its job"
    );
    assert!(!after.changed(), "{after:?}");
    let redeleted: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action in ('reconcile.redelete', 'reconcile.confirmed_revoked')",
    )
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(redeleted, 0);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

/// Found by the chaos suite (seed 947641495798716958): the truncated-list nemesis cut the list
/// early in a run, when the listing knew only two live tokens, below the guard's floor of five. The
/// pass believed the empty list: both buyers were given new tokens while their old ones worked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_is_held_back_once_even_when_the_listing_knows_fewer_tokens_than_the_floor() {
    // Arrange: two buyers' tokens, no pool; the next list comes back empty.
    let world = World::new(0, 0).await;
    let buyers = [sold_minted(&world, 0).await, sold_minted(&world, 1).await];
    let tokens: Vec<String> = {
        let mut all = Vec::new();
        for buyer in buyers {
            all.extend(world.live_tokens_of(buyer).await);
        }
        all
    };
    assert_eq!(tokens.len(), 2);
    world.sim.truncate_token_lists(CANONICAL, 1, 0);

    // Act
    let cut = reconcile_now(&world).await;
    let after = reconcile_now(&world).await;

    // Assert: nothing marked missing, no buyer re-issued, and the flag cleared by the full list.
    assert_eq!(
        (cut.at_xano, cut.missing, cut.held_back),
        (0, 0, 2),
        "{cut:?}"
    );
    assert_eq!((after.missing, after.held_back), (0, 0), "{after:?}");
    for (buyer, token) in buyers.iter().zip(&tokens) {
        assert_eq!(world.live_tokens_of(*buyer).await, vec![token.clone()]);
    }
    assert!(!flagged(&world).await);
}

/// And a listing whose every token really went is re-issued, one pass later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_whose_only_token_was_deleted_by_hand_is_re_issued_on_the_second_pass() {
    // Arrange: one buyer's token, deleted at Xano by hand.
    let world = World::new(0, 0).await;
    let buyer = sold_minted(&world, 0).await;
    let token = world.live_tokens_of(buyer).await.remove(0);
    xano_client(&world.sim)
        .delete_token(CANONICAL, &TokenValue::new(token.as_str()))
        .await
        .unwrap();

    // Act
    let first = reconcile_now(&world).await;
    let second = reconcile_now(&world).await;
    world.drain().await;

    // Assert
    assert_eq!((first.missing, first.held_back), (0, 1), "{first:?}");
    assert_eq!((second.missing, second.reissued), (1, 1), "{second:?}");
    let now = world.live_tokens_of(buyer).await;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], token, "a new token");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

/// A purchase paid while its tier's pool is empty, its token minted for it.
async fn sold_minted(world: &World, n: usize) -> PurchaseId {
    let (purchase, session) = world.checkout().await;
    world
        .deliver_paid(&format!("evt_minted_{n}"), purchase, &session)
        .await;
    world.drain().await;
    assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
    purchase
}
