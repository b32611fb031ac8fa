//! The public catalog, answered from each instance's memory (`catalog_cache`): a change made through
//! this instance's admin API shows in the very next read, one made elsewhere (another instance,
//! `market tiers apply`) shows within the cache's second, and both endpoints tell the same story.
//! The list comes in cursor pages ordered by canonical: every listing once, also while listings are
//! added, with or without the seller filter; a bad cursor or limit is a 400.

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

/// Puts a listing with one tier on sale through the admin API (its snippet made at Xano first).
async fn put_on_sale(app: &TestApp, canonical: &str) {
    app.xano.add_snippet(canonical, canonical);
    let listing = format!("/v1/admin/listings/{canonical}");
    json_of(
        app.admin_put(&listing, &json!({ "title": canonical }))
            .await,
        200,
    )
    .await;
    let tier = json!({
        "name": "Solo",
        "price": { "amount": 900, "currency": "usd" },
        "max_installs": 1,
        "pool_low_water": 0,
        "pool_target": 0,
    });
    json_of(
        app.admin_put(&format!("{listing}/tiers/solo"), &tier).await,
        200,
    )
    .await;
}

fn canonicals(page: &Value) -> Vec<String> {
    page["listings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["canonical"].as_str().unwrap().to_owned())
        .collect()
}

/// Follows `next_cursor` from `first` (a path with its query) to the last page; `between` runs
/// after the first page. Returns every page's canonicals.
async fn walk(app: &TestApp, first: &str, between: impl AsyncFnOnce()) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = first.to_owned();
    let mut between = Some(between);
    loop {
        let page = json_of(app.get(&path).await, 200).await;
        pages.push(canonicals(&page));
        if let Some(between) = between.take() {
            between().await;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{first}&cursor={cursor}"),
            None => return pages,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_pages_hold_every_listing_once_in_order_even_while_listings_are_added() {
    // Arrange: more listings than fit on two pages of five.
    let app = spawn_app().await;
    for n in 0..8 {
        put_on_sale(&app, &format!("paged-{n}_01")).await;
    }
    let before = canonicals(&json_of(app.get("/v1/listings?limit=200").await, 200).await);

    // Act: page by five; after the first page, one listing is added before the cursor (too late
    // to be seen) and one after it (seen on a later page).
    let pages = walk(&app, "/v1/listings?limit=5", async || {
        put_on_sale(&app, "0-early_01").await;
        put_on_sale(&app, "zz-late_01").await;
    })
    .await;

    // Assert: in byte order, none twice, all of them, the late one included; full pages but
    // the last.
    let seen: Vec<String> = pages.concat();
    let mut expected = before.clone();
    expected.push("zz-late_01".to_owned());
    expected.sort();
    assert_eq!(seen, expected);
    assert!(before.windows(2).all(|w| w[0] < w[1]), "{before:?}");
    let (last, full) = pages.split_last().unwrap();
    assert!(full.iter().all(|p| p.len() == 5), "{pages:?}");
    assert!((1..=5).contains(&last.len()), "{pages:?}");
    let everything = canonicals(&app.listings().await);
    assert_eq!(
        everything.len(),
        expected.len() + 1,
        "the early one is on sale too"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sellers_listings_come_in_pages_of_their_own() {
    // Arrange: a few more of the house's listings.
    let app = spawn_app().await;
    for n in 0..4 {
        put_on_sale(&app, &format!("house-{n}_01")).await;
    }
    let all = app.get("/v1/listings?limit=200").await;
    let all = json_of(all, 200).await;
    let house = all["listings"][0]["seller"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let houses: Vec<String> = all["listings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["seller"]["id"] == house.as_str())
        .map(|l| l["canonical"].as_str().unwrap().to_owned())
        .collect();

    // Act
    let pages = walk(
        &app,
        &format!("/v1/listings?seller={house}&limit=2"),
        async || {},
    )
    .await;
    let nobody = app.get(&format!("/v1/listings?seller={}", uuid::Uuid::new_v4()));
    let nobody = json_of(nobody.await, 200).await;

    // Assert
    assert_eq!(pages.concat(), houses);
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.iter().all(|p| p.len() <= 2), "{pages:?}");
    assert_eq!(nobody, json!({ "listings": [], "next_cursor": null }));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_or_limit_is_a_400_in_the_error_envelope() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        ("cursor=not-hex", "invalid_cursor"),
        ("cursor=abc", "invalid_cursor"),
        ("cursor=ff", "invalid_cursor"),
        ("cursor=", "invalid_cursor"),
        ("limit=0", "invalid_request"),
        ("limit=201", "invalid_request"),
    ];

    for (query, code) in cases {
        // Act
        let response = app.get(&format!("/v1/listings?{query}")).await;

        // Assert
        assert_eq!(
            json_of(response, 400).await["error"]["code"],
            code,
            "{query}"
        );
    }
    for query in ["limit=ten", "limit=-1", "page=2"] {
        let response = app.get(&format!("/v1/listings?{query}")).await;
        assert!(
            json_of(response, 400).await["error"]["code"].is_string(),
            "{query}"
        );
    }
    app.stop().await;
}
