//! The public catalog, answered from each instance's memory (`catalog_cache`): a change made through
//! this instance's admin API shows in the very next read, one made elsewhere (another instance,
//! `market tiers apply`) shows within the cache's second, and both endpoints tell the same story.

use std::time::Duration;

use market_core::TierId;
use market_core::audit::Actor;
use serde_json::{Value, json};

use crate::admin_purchases::json_of;
use crate::helpers::{CANONICAL, TestApp, spawn_app};

/// The price of `slug` in `listing`, or `None` when the tier is not on sale.
fn price_in(listing: &Value, slug: &str) -> Option<i64> {
    listing["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == slug)
        .map(|t| t["price"]["amount"].as_i64().unwrap())
}

async fn listing(app: &TestApp) -> Value {
    json_of(app.get(&format!("/v1/listings/{CANONICAL}")).await, 200).await
}

fn in_list(listings: &Value) -> Value {
    listings["listings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["canonical"] == CANONICAL)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_changed_through_the_admin_api_shows_in_the_very_next_catalog_read() {
    // Arrange: both endpoints read once, so the catalog sits in the instance's memory.
    let app = spawn_app().await;
    assert_eq!(
        price_in(&in_list(&app.listings().await), "solo"),
        Some(1900)
    );
    assert_eq!(price_in(&listing(&app).await, "solo"), Some(1900));

    // Act
    let spec = json!({
        "name": "Solo",
        "price": { "amount": 2400, "currency": "usd" },
        "max_installs": 5,
    });
    let path = format!("/v1/admin/listings/{CANONICAL}/tiers/solo");
    json_of(app.admin_put(&path, &spec).await, 200).await;

    // Assert: no read of the old copy, on either endpoint.
    assert_eq!(
        price_in(&in_list(&app.listings().await), "solo"),
        Some(2400)
    );
    assert_eq!(price_in(&listing(&app).await, "solo"), Some(2400));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_taken_off_sale_by_another_process_leaves_the_catalog_within_the_cache_second() {
    // Arrange
    let app = spawn_app().await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    assert!(price_in(&listing(&app).await, "agency").is_some());

    // Act: the change another instance or `market tiers apply` would make, straight in PostgreSQL,
    // so this instance hears nothing of it.
    let mut tx = app.db.pool().begin().await.unwrap();
    let tier = TierId(agency.parse().unwrap());
    market_core::tiers::deactivate(&mut tx, tier, &Actor::System)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Assert: both endpoints drop it once the cached copy expires (1 s; the limit leaves slack
    // for a loaded machine).
    app.eventually(
        "the tier off the catalog",
        Duration::from_secs(10),
        || async {
            let gone = price_in(&in_list(&app.listings().await), "agency").is_none()
                && price_in(&listing(&app).await, "agency").is_none();
            gone.then_some(())
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_read_alone_is_the_same_as_its_entry_in_the_list() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let alone = listing(&app).await;
    let listed = in_list(&app.listings().await);

    // Assert
    assert_eq!(alone, listed);
    let unknown = app.get("/v1/listings/not-for-sale_01").await;
    assert_eq!(json_of(unknown, 404).await["error"]["code"], "not_found");
    app.stop().await;
}
