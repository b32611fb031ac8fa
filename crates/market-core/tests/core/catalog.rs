//! The catalog operators manage and buyers see: listings, tiers and their versioning rule,
//! checkout idempotency and receipts.
//!
//! Proves the rule of src/tiers.rs: a tier's terms never change under an earlier buyer. The same
//! spec twice is no change; a new price makes version 2 and moves the unsold tokens; a new
//! `max_installs` retires the old pool at Xano; deactivation retires the pool and stops sales.
//! Also: `prepare_snippet` puts the snippet on token access, the public catalog shows only what
//! is on sale, the same Idempotency-Key gives the same purchase, and a receipt needs its key.

use crate::common::{CANONICAL, World, tier_spec};
use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::listings::{self, ListingSpec};
use market_core::payments::Effect;
use market_core::purchases::{self, NewPurchase};
use market_core::receipt::ReceiptKey;
use market_core::tiers::{self, TierChange, TierSpec};
use market_core::{Canonical, Conflict, Email, Error, ListingId, PurchaseId, TierId, catalog};
use sandbox::xano::{Endpoint, InstallAccess};

fn access(world: &World, canonical: &str) -> InstallAccess {
    world.sim.snippet(canonical).unwrap().install_access
}

fn admin() -> Actor {
    Actor::Admin("ops".into())
}

async fn apply(world: &World, listing: ListingId, spec: &TierSpec) -> TierChange {
    let mut tx = world.pool().begin().await.unwrap();
    let change = tiers::apply(&mut tx, listing, spec, &admin())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    change
}

fn listing_spec(canonical: &str, active: bool) -> ListingSpec {
    ListingSpec {
        canonical: Canonical::parse(canonical).unwrap(),
        title: format!("Listing {canonical}"),
        description: String::new(),
        active,
    }
}

async fn prepare(world: &World, canonical: &str) -> Result<(), Error> {
    listings::prepare_snippet(&world.market.xano, &listing_spec(canonical, true)).await
}

async fn new_listing(world: &World, canonical: &str, active: bool) -> ListingId {
    world.sim.add_snippet(canonical, canonical);
    prepare(world, canonical).await.unwrap();
    let spec = listing_spec(canonical, active);
    let mut tx = world.pool().begin().await.unwrap();
    let (listing, _) = listings::upsert(&mut tx, &spec, &admin()).await.unwrap();
    tx.commit().await.unwrap();
    listing.listing_id
}

async fn add_tier(world: &World, listing: ListingId, spec: &TierSpec) -> TierId {
    match apply(world, listing, spec).await {
        TierChange::Created { tier_id } => tier_id,
        other => panic!("{other:?}"),
    }
}

async fn deactivate(world: &World, tier: TierId) -> TierChange {
    let mut tx = world.pool().begin().await.unwrap();
    let change = tiers::deactivate(&mut tx, tier, &admin()).await.unwrap();
    tx.commit().await.unwrap();
    change
}

fn new_version(change: TierChange) -> (TierId, TierId, i32, u64, u64) {
    match change {
        TierChange::NewVersion {
            old,
            new,
            version,
            moved_tokens,
            retired_tokens,
        } => (old, new, version, moved_tokens, retired_tokens),
        other => panic!("{other:?}"),
    }
}

fn deactivated(tier_id: TierId, retired_tokens: u64) -> TierChange {
    TierChange::Deactivated {
        tier_id,
        retired_tokens,
    }
}

async fn count(world: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

fn unchanged(tier: TierId) -> TierChange {
    TierChange::Unchanged {
        tier_id: Some(tier),
    }
}

type Checkout = Result<purchases::Created, Error>;

/// A checkout of `tier` with Idempotency-Key `key` ("" for none).
async fn checkout(world: &World, tier: TierId, email: Option<&str>, key: &str) -> Checkout {
    let new = NewPurchase {
        tier,
        email: email.map(|e| Email::parse(e).unwrap()),
        idempotency_key: (!key.is_empty()).then(|| key.to_owned()),
    };
    purchases::create(
        world.pool(),
        &world.receipts,
        &new,
        FeeRate::DEFAULT,
        &Actor::Buyer,
    )
    .await
}

fn conflict(result: Checkout) -> Conflict {
    match result {
        Err(Error::Conflict(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A pool of 3 (low water 2), filled, and one fulfilled purchase holding one of its tokens.
pub(crate) async fn world_with_a_sale() -> (World, PurchaseId, String) {
    let world = World::new(2, 3).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert!(matches!(paid.effect, Effect::Fulfilled { .. }), "{paid:?}");
    let token = world.live_tokens_of(purchase).await.remove(0);
    (world, purchase, token)
}

/// (tier, amount, max_installs) the purchase bought, from its receipt.
async fn bought_terms(world: &World, purchase: PurchaseId) -> (TierId, i64, i64) {
    let row = purchases::by_id(world.pool(), purchase)
        .await
        .unwrap()
        .unwrap();
    let receipt = purchases::receipt_of(world.pool(), &world.market.envelope, &row)
        .await
        .unwrap();
    (receipt.tier_id, receipt.price.amount, receipt.max_installs)
}

async fn tokens_in_state(world: &World, tier: TierId, state: &str) -> i64 {
    sqlx::query_scalar("select count(*) from install_token where tier_id = $1 and state::text = $2")
        .bind(tier)
        .bind(state)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_the_same_tier_spec_twice_changes_nothing() {
    // Arrange
    let world = World::new(1, 2).await;
    let audit = "select count(*) from audit_event";
    let audit_before = count(&world, audit).await;

    // Act
    let change = apply(&world, world.listing, &tier_spec("solo", 1900, 5, 1, 2)).await;

    // Assert
    assert_eq!(change, unchanged(world.tier));
    assert_eq!(count(&world, audit).await, audit_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_makes_version_two_and_keeps_what_earlier_buyers_got() {
    // Arrange
    let (world, buyer, token) = world_with_a_sale().await;

    // Act
    let change = apply(&world, world.listing, &tier_spec("solo", 2900, 5, 2, 3)).await;
    world.sim.clear_calls();
    world.drain().await;

    // Assert: version 2 replaces version 1 and sells the same unsold tokens.
    let (old, new, version, moved, retired) = new_version(change);
    assert_eq!((old, version, moved, retired), (world.tier, 2, 2, 0));
    let mut conn = world.pool().acquire().await.unwrap();
    let versions = tiers::for_listing(&mut conn, world.listing).await.unwrap();
    let summary: Vec<_> = versions
        .iter()
        .map(|t| (t.version, t.price.amount, t.active))
        .collect();
    assert_eq!(summary, vec![(1, 1900, false), (2, 2900, true)]);
    assert_eq!(
        tokens_in_state(&world, new, "available").await,
        3,
        "moved 2, topped up 1"
    );
    let deletions = world.calls_to(Endpoint::DeleteToken);
    assert_eq!(deletions, 0, "no unsold token was thrown away");

    // The earlier buyer keeps version 1's terms and token; new buyers pay version 2's price.
    assert_eq!(bought_terms(&world, buyer).await, (world.tier, 1900, 5));
    assert_eq!(world.live_tokens_of(buyer).await, vec![token.clone()]);
    assert!(world.sim_tokens().contains(&token));
    let new_sale = checkout(&world, new, None, "").await.unwrap();
    assert_eq!(new_sale.purchase.price.amount, 2900);
    let old_sale = checkout(&world, world.tier, None, "").await;
    assert_eq!(conflict(old_sale), Conflict::TierNotOnSale);
    let shown = catalog::listings(world.pool(), None).await.unwrap();
    let tiers_shown: Vec<_> = shown[0]
        .tiers
        .iter()
        .map(|t| (t.tier_id, t.price.amount))
        .collect();
    assert_eq!(tiers_shown, vec![(new, 2900)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_installs_change_retires_the_old_pool_at_xano() {
    // Arrange
    let (world, buyer, token) = world_with_a_sale().await;
    let unsold: Vec<String> = world.tokens_where("state = 'available'").await;

    // Act
    let change = apply(&world, world.listing, &tier_spec("solo", 1900, 10, 2, 3)).await;
    world.drain().await;

    // Assert
    let (old, new, version, moved, retired) = new_version(change);
    assert_eq!((old, version, moved, retired), (world.tier, 2, 0, 2));
    let sim = world.sim.tokens(CANONICAL);
    let unsold_left = sim.iter().filter(|s| unsold.contains(&s.token)).count();
    assert_eq!(unsold_left, 0, "the old pool was deleted at Xano");
    assert_eq!(tokens_in_state(&world, world.tier, "retired").await, 2);
    assert_eq!(tokens_in_state(&world, new, "available").await, 3);
    // (is it the buyer's token, its cap): the buyer's keeps 5, the new pool carries 10.
    let mut caps: Vec<_> = sim
        .iter()
        .map(|s| (s.token == token, s.max_installs))
        .collect();
    caps.sort_unstable();
    assert_eq!(caps, [(false, 10), (false, 10), (false, 10), (true, 5)]);
    assert_eq!(bought_terms(&world, buyer).await, (world.tier, 1900, 5));
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_tier_retires_its_pool_and_stops_sales() {
    // Arrange: one buyer checked out before the tier went off sale and pays after.
    let world = World::new(2, 3).await;
    world.fill_pool().await;
    let (late_buyer, session) = world.checkout().await;
    let agency = add_tier(&world, world.listing, &tier_spec("agency", 4900, 20, 0, 0)).await;

    // Act
    let change = deactivate(&world, world.tier).await;
    let again = deactivate(&world, world.tier).await;
    let by_spec = apply(
        &world,
        world.listing,
        &TierSpec {
            active: false,
            ..tier_spec("agency", 4900, 20, 0, 0)
        },
    )
    .await;
    world.drain().await;
    let paid = world.deliver_paid("evt_paid", late_buyer, &session).await;
    world.drain().await;

    // Assert: the pool is gone at Xano, nothing refills it, and nobody can start a checkout.
    assert_eq!(change, deactivated(world.tier, 3));
    assert_eq!(again, unchanged(world.tier));
    assert_eq!(by_spec, deactivated(agency, 0));
    assert_eq!(tokens_in_state(&world, world.tier, "retired").await, 3);
    for tier in [world.tier, agency] {
        assert_eq!(
            conflict(checkout(&world, tier, None, "").await),
            Conflict::TierNotOnSale
        );
    }
    let shown = catalog::listings(world.pool(), None).await.unwrap();
    assert!(shown.is_empty(), "nothing left on sale");

    // The buyer who had already checked out still gets what they paid for, and only that.
    assert_eq!(paid.effect, Effect::AwaitingToken);
    assert_eq!(world.status_of(late_buyer).await, "fulfilled");
    let held = world.live_tokens_of(late_buyer).await;
    assert_eq!(held.len(), 1);
    assert_eq!(world.sim_tokens(), held, "the pool was not refilled");
    assert_eq!(world.sim.tokens(CANONICAL)[0].max_installs, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_snippet_puts_the_snippet_on_token_access_and_refuses_an_unknown_one() {
    // Arrange
    let world = World::new(0, 0).await;
    world.sim.add_snippet("snip_B", "Another");
    assert_eq!(access(&world, "snip_B"), InstallAccess::Public);

    // Act
    prepare(&world, "snip_B").await.unwrap();
    world.sim.clear_calls();
    prepare(&world, "snip_B").await.unwrap();
    let unknown = prepare(&world, "snip_Nope").await;

    // Assert
    assert_eq!(access(&world, "snip_B"), InstallAccess::Token);
    assert_eq!(access(&world, CANONICAL), InstallAccess::Token);
    let updates = world.calls_to(Endpoint::UpdateSnippet);
    assert_eq!(updates, 0, "a prepared snippet is left as it is");
    let refused = matches!(&unknown, Err(Error::NotFound("snippet")));
    assert!(refused, "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_shows_only_active_listings_and_tiers() {
    // Arrange: listing A (solo, agency, and a retired "old" tier), listing B (one tier, later
    // deactivated), listing C (inactive, with a tier).
    let world = World::new(0, 0).await;
    let agency = add_tier(&world, world.listing, &tier_spec("agency", 4900, 20, 0, 0)).await;
    let old = add_tier(&world, world.listing, &tier_spec("old", 900, 1, 0, 0)).await;
    let b = new_listing(&world, "snip_B", true).await;
    let b_tier = add_tier(&world, b, &tier_spec("solo", 1000, 3, 0, 0)).await;
    let c = new_listing(&world, "snip_C", false).await;
    apply(&world, c, &tier_spec("solo", 1000, 3, 0, 0)).await;
    deactivate(&world, old).await;
    let shown_ids = |listings: Vec<catalog::CatalogListing>| -> Vec<(String, Vec<TierId>)> {
        listings
            .into_iter()
            .map(|l| (l.canonical, l.tiers.iter().map(|t| t.tier_id).collect()))
            .collect()
    };

    // Act
    let everything = catalog::listings(world.pool(), None).await.unwrap();
    let only = async |canonical| {
        catalog::listings(world.pool(), Some(canonical))
            .await
            .unwrap()
    };
    let (only_b, only_c) = (only("snip_B").await, only("snip_C").await);
    deactivate(&world, b_tier).await;
    let after = catalog::listings(world.pool(), None).await.unwrap();

    // Assert
    assert_eq!(
        everything[0].snippet_url,
        format!("https://www.xano.com/snippet/{CANONICAL}/")
    );
    assert_eq!(
        shown_ids(everything),
        vec![
            (CANONICAL.to_owned(), vec![world.tier, agency]),
            ("snip_B".to_owned(), vec![b_tier])
        ]
    );
    assert_eq!(shown_ids(only_b), vec![("snip_B".to_owned(), vec![b_tier])]);
    assert!(only_c.is_empty(), "an inactive listing is not shown");
    assert_eq!(
        shown_ids(after),
        vec![(CANONICAL.to_owned(), vec![world.tier, agency])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_purchase_and_refuses_another_request() {
    // Arrange
    let world = World::new(0, 0).await;
    let agency = add_tier(&world, world.listing, &tier_spec("agency", 4900, 20, 0, 0)).await;

    // Act
    let first = checkout(&world, world.tier, None, KEY_1).await.unwrap();
    let second = checkout(&world, world.tier, None, KEY_1).await.unwrap();
    let other_tier = checkout(&world, agency, None, KEY_1).await;
    let other_email = checkout(&world, world.tier, Some("a@example.com"), KEY_1).await;
    let fresh = checkout(&world, world.tier, None, KEY_2).await.unwrap();

    // Assert
    assert!(!first.replayed && second.replayed);
    assert_eq!(second.purchase.purchase_id, first.purchase.purchase_id);
    assert_eq!(second.receipt_key, first.receipt_key);
    assert_eq!(conflict(other_tier), Conflict::IdempotencyKeyReused);
    assert_eq!(conflict(other_email), Conflict::IdempotencyKeyReused);
    assert_ne!(fresh.purchase.purchase_id, first.purchase.purchase_id);
    assert_eq!(count(&world, "select count(*) from purchase").await, 2);
}

const KEY_1: &str = "3f1c2a9e-6b7d-4e1f-9a2b-5c8d7e6f1a01";
const KEY_2: &str = "3f1c2a9e-6b7d-4e1f-9a2b-5c8d7e6f1a02";

/// Found from outside (security issue, finding 1): a second client sending the first buyer's
/// `Idempotency-Key: order-1001` got the first buyer's purchase and receipt key. Before the fix a
/// one-character key was accepted; now a key shorter than a random UUID's hex is refused, and
/// nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_shorter_than_32_characters_is_refused_and_creates_nothing() {
    let world = World::new(0, 0).await;
    for key in [
        "order-1001",
        "1",
        &"k".repeat(31),
        &format!("{} ", "k".repeat(32)),
    ] {
        let refused = checkout(&world, world.tier, None, key).await;
        assert!(
            matches!(
                refused,
                Err(Error::Invalid {
                    field: "Idempotency-Key",
                    ..
                })
            ),
            "{key:?}: {refused:?}"
        );
    }
    assert!(
        checkout(&world, world.tier, None, &"k".repeat(32))
            .await
            .is_ok()
    );
    assert_eq!(count(&world, "select count(*) from purchase").await, 1);
}

/// The key is a secret: the database keeps its SHA-256 only, so a dump cannot replay a checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_stored_only_as_its_hash() {
    let world = World::new(0, 0).await;
    let created = checkout(&world, world.tier, None, KEY_1).await.unwrap();

    let row: String = sqlx::query_scalar("select row_to_json(p)::text from purchase p")
        .fetch_one(world.pool())
        .await
        .unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("select checkout_key_hash from purchase where purchase_id = $1")
            .bind(created.purchase.purchase_id)
            .fetch_one(world.pool())
            .await
            .unwrap();

    assert!(!row.contains(KEY_1), "{row}");
    assert_eq!(stored, sha2_of(KEY_1));
}

/// As at Stripe, a key is kept 24 hours: after that the same key is a new checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_older_than_24_hours_starts_a_new_purchase() {
    let world = World::new(0, 0).await;
    let old = checkout(&world, world.tier, None, KEY_1).await.unwrap();
    let recent = checkout(&world, world.tier, None, KEY_2).await.unwrap();
    sqlx::query(
        "update purchase set created_at = now() - interval '25 hours' where purchase_id = $1",
    )
    .bind(old.purchase.purchase_id)
    .execute(world.pool())
    .await
    .unwrap();
    sqlx::query(
        "update purchase set created_at = now() - interval '23 hours' where purchase_id = $1",
    )
    .bind(recent.purchase.purchase_id)
    .execute(world.pool())
    .await
    .unwrap();

    let again_old = checkout(&world, world.tier, None, KEY_1).await.unwrap();
    let again_recent = checkout(&world, world.tier, None, KEY_2).await.unwrap();

    assert!(!again_old.replayed);
    assert_ne!(again_old.purchase.purchase_id, old.purchase.purchase_id);
    assert!(again_recent.replayed);
    assert_eq!(
        again_recent.purchase.purchase_id,
        recent.purchase.purchase_id
    );
    assert_eq!(count(&world, "select count(*) from purchase").await, 3);
}

fn sha2_of(key: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_shown_only_with_its_own_key() {
    // Arrange
    let world = World::new(0, 0).await;
    let mine = checkout(&world, world.tier, None, "").await.unwrap();
    let theirs = checkout(&world, world.tier, None, "").await.unwrap();
    let id = mine.purchase.purchase_id;
    let read = async |id, key| {
        purchases::receipt(world.pool(), &world.market.envelope, id, key)
            .await
            .unwrap()
    };

    // Act
    let right = read(id, &mine.receipt_key).await;
    let forged = ReceiptKey::presented("rk_wrong");
    let wrong = read(id, &forged).await;
    let other = read(id, &theirs.receipt_key).await;
    let unknown = read(PurchaseId::random(), &mine.receipt_key).await;

    // Assert
    assert_eq!(right.unwrap().purchase_id, id);
    assert!(wrong.is_none());
    assert!(other.is_none(), "another purchase's key opens nothing");
    assert!(unknown.is_none());
}
