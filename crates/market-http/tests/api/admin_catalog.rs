//! Admin catalog: a listing can only be made for a snippet the Xano account has, and making it
//! switches the snippet to token-only installs; tiers are created once (applying the same spec again
//! changes nothing); changing a tier's price or `max_installs` makes a new version while earlier
//! buyers keep what they bought, and a new `max_installs` retires the old pool, whose tokens are
//! deleted at Xano; deactivating takes a tier off sale; the snippets list says which are listed.
//! Every change is audited under the admin's name.

use std::time::Duration;

use sandbox::xano::InstallAccess;
use serde_json::{Value, json};

use crate::admin_ops::settled;
use crate::admin_purchases::{actors, admin_view, audit_mark, buy, checkout, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};

const NEW_SNIPPET: &str = "webhooks-kit_03";

fn solo_spec(amount: i64, max_installs: i64) -> Value {
    json!({
        "name": "Solo",
        "price": { "amount": amount, "currency": "usd" },
        "max_installs": max_installs,
        "pool_low_water": 3,
        "pool_target": 8,
    })
}

async fn put_tier(app: &TestApp, slug: &str, spec: &Value) -> Value {
    json_of(
        app.admin_put(
            &format!("/v1/admin/listings/{CANONICAL}/tiers/{slug}"),
            spec,
        )
        .await,
        200,
    )
    .await
}

/// `(token, state)` of every token of a tier version in the database.
async fn tokens_of_tier(app: &TestApp, tier: &str) -> Vec<(String, String)> {
    let tier = uuid::Uuid::parse_str(tier).unwrap();
    app.token_states_where(&format!("tier_id = '{tier}'")).await
}

/// The unsold tokens of a tier version.
async fn available_tokens(app: &TestApp, tier: &str) -> Vec<String> {
    tokens_of_tier(app, tier)
        .await
        .into_iter()
        .filter(|(_, state)| state == "available")
        .map(|(token, _)| token)
        .collect()
}

/// Live tokens at the Xano simulator with `max_installs`.
fn minted(app: &TestApp, max_installs: i64) -> usize {
    let tokens = app.xano.tokens(CANONICAL);
    tokens
        .iter()
        .filter(|t| t.max_installs == max_installs)
        .count()
}

/// `(version, active, price)` of each version of a tier in an admin change answer.
fn versions(changed: &Value, slug: &str) -> Vec<(i64, bool, i64)> {
    let tiers = changed["listing"]["tiers"].as_array().unwrap();
    tiers
        .iter()
        .filter(|t| t["slug"] == slug)
        .map(|t| {
            let version = t["version"].as_i64().unwrap();
            (
                version,
                t["active"] == true,
                t["price"]["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_is_made_for_a_snippet_at_xano_which_becomes_token_only() {
    // Arrange
    let app = spawn_app().await;
    app.xano.add_snippet(NEW_SNIPPET, "Webhooks kit");
    assert_eq!(
        app.xano.snippet(NEW_SNIPPET).unwrap().install_access,
        InstallAccess::Public
    );
    let path = format!("/v1/admin/listings/{NEW_SNIPPET}");
    let spec = json!({ "title": "Webhooks kit", "description": "Signed webhooks" });
    let mark = audit_mark(&app).await;

    // Act
    let created = json_of(app.admin_put(&path, &spec).await, 200).await;
    let again = json_of(app.admin_put(&path, &spec).await, 200).await;
    let renamed = json_of(
        app.admin_put(
            &path,
            &json!({ "title": "Webhook kit", "description": "Signed webhooks" }),
        )
        .await,
        200,
    )
    .await;

    // Assert
    assert_eq!(created["change"], json!({ "change": "created" }));
    assert_eq!(created["listing"]["canonical"], NEW_SNIPPET);
    assert_eq!(created["listing"]["active"], true);
    assert_eq!(created["listing"]["tiers"], json!([]));
    assert_eq!(again["change"], json!({ "change": "unchanged" }));
    assert_eq!(
        renamed["change"],
        json!({ "change": "updated", "fields": ["title"] })
    );
    assert_eq!(renamed["listing"]["title"], "Webhook kit");
    let snippet = app.xano.snippet(NEW_SNIPPET).unwrap();
    assert_eq!(snippet.install_access, InstallAccess::Token);
    assert!(snippet.install_access_description.contains("Webhook kit"));
    let logged = actors(&app, mark, "listing.applied").await;
    assert_eq!(
        logged, ["admin:tester"; 2],
        "created and updated; unchanged is not logged"
    );
    let all = json_of(app.admin_get("/v1/admin/listings").await, 200).await;
    assert!(all.to_string().contains(NEW_SNIPPET));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_for_a_canonical_the_xano_account_lacks_is_a_404_that_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    // The pools of the seeded catalog fill meanwhile, auditing each token: count what is about
    // listings only.
    let listing_audit = "audit_event where action like 'listing.%'";
    let (listings, audit) = (
        count(&app, "listing").await,
        count(&app, listing_audit).await,
    );

    // Act
    let response = app
        .admin_put(
            "/v1/admin/listings/not-at-xano_9",
            &json!({ "title": "Ghost" }),
        )
        .await;

    // Assert
    let body = json_of(response, 404).await;
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("snippet"),
        "{body}"
    );
    assert_eq!(count(&app, "listing").await, listings);
    assert_eq!(count(&app, listing_audit).await, audit);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tier_is_created_once_goes_on_sale_and_fills_its_pool_at_xano() {
    // Arrange
    let app = spawn_app().await;
    let spec = json!({
        "name": "Team",
        "price": { "amount": 4900, "currency": "usd" },
        "max_installs": 15,
        "pool_low_water": 1,
        "pool_target": 2,
    });

    let mark = audit_mark(&app).await;

    // Act
    let created = put_tier(&app, "team", &spec).await;
    let again = put_tier(&app, "team", &spec).await;

    // Assert
    assert_eq!(created["change"]["change"], "created");
    let team = created["change"]["tier_id"].as_str().unwrap().to_owned();
    assert_eq!(
        again["change"],
        json!({ "change": "unchanged", "tier_id": team })
    );
    assert_eq!(versions(&again, "team"), vec![(1, true, 4900)]);
    assert_eq!(app.tier_id(CANONICAL, "team").await, team);
    assert_eq!(
        actors(&app, mark, "tier.applied").await,
        vec!["admin:tester"]
    );
    app.eventually("the team pool at Xano", Duration::from_secs(20), || async {
        (minted(&app, 15) == 2).then_some(())
    })
    .await;

    let unknown = app
        .admin_put("/v1/admin/listings/not-a-listing/tiers/team", &spec)
        .await;
    assert_eq!(unknown.status(), 404);
    let invalid = app
        .admin_put(
            &format!("/v1/admin/listings/{CANONICAL}/tiers/team"),
            &json!({
                "name": "Team", "price": { "amount": 4900, "currency": "usd" }, "max_installs": 0,
            }),
        )
        .await;
    assert_eq!(invalid.status(), 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_makes_a_new_version_and_earlier_buyers_keep_their_tier_and_terms() {
    // Arrange: a settled pool (8), one buyer at $19.
    let app = spawn_app().await;
    settled(&app).await;
    let old = app.tier_id(CANONICAL, "solo").await;
    let earlier = buy(&app, &old, None).await;
    let unsold = available_tokens(&app, &old).await;
    let mark = audit_mark(&app).await;

    // Act
    let changed = put_tier(&app, "solo", &solo_spec(2500, 5)).await;

    // Assert: version 2 sells at $25 with the unsold tokens moved over; version 1 is off sale.
    let change = &changed["change"];
    assert_eq!(change["change"], "new_version");
    assert_eq!(change["old"], old.as_str());
    assert_eq!(change["version"], 2);
    assert_eq!(change["moved_tokens"], 7);
    assert_eq!(change["retired_tokens"], 0);
    let new = change["new"].as_str().unwrap().to_owned();
    assert_eq!(app.tier_id(CANONICAL, "solo").await, new);
    assert_eq!(
        versions(&changed, "solo"),
        vec![(1, false, 1900), (2, true, 2500)]
    );
    let on_new: Vec<String> = tokens_of_tier(&app, &new)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(
        unsold.iter().all(|t| on_new.contains(t)),
        "the unsold tokens moved"
    );

    let shown = admin_view(&app, &earlier.id).await;
    assert_eq!(shown["purchase"]["tier_id"], old.as_str());
    assert_eq!(shown["purchase"]["amount"], 1900);
    assert_eq!(shown["receipt"]["price"]["amount"], 1900);
    assert_eq!(shown["receipt"]["token"]["value"], earlier.token.as_str());
    assert!(app.xano_tokens().contains(&earlier.token));

    let (_, session, _) = checkout(&app, &new, None).await;
    assert_eq!(app.stripe.session(&session).unwrap().amount_total, 2500);
    let stale = app.checkout(&json!({ "tier_id": old })).await;
    assert_eq!(stale.status(), 409);
    assert_eq!(
        actors(&app, mark, "tier.applied").await,
        vec!["admin:tester"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_max_installs_retires_the_old_pool_and_its_tokens_are_deleted_at_xano() {
    // Arrange: a settled pool, one buyer holding a 5-install token.
    let app = spawn_app().await;
    settled(&app).await;
    let old = app.tier_id(CANONICAL, "solo").await;
    let earlier = buy(&app, &old, None).await;
    let unsold = available_tokens(&app, &old).await;
    assert_eq!(unsold.len(), 7);
    let mark = audit_mark(&app).await;

    // Act
    let changed = put_tier(&app, "solo", &solo_spec(1900, 10)).await;

    // Assert
    assert_eq!(changed["change"]["change"], "new_version");
    assert_eq!(changed["change"]["moved_tokens"], 0);
    assert_eq!(changed["change"]["retired_tokens"], 7);
    let new = changed["change"]["new"].as_str().unwrap().to_owned();
    app.eventually(
        "the retired tokens deleted at Xano",
        Duration::from_secs(20),
        || async {
            let live = app.xano_tokens();
            unsold.iter().all(|t| !live.contains(t)).then_some(())
        },
    )
    .await;
    app.eventually(
        "the retired tokens recorded as retired",
        Duration::from_secs(20),
        || async {
            let states = tokens_of_tier(&app, &old).await;
            let retired = states.iter().filter(|(_, s)| s == "retired").count();
            (retired == 7).then_some(())
        },
    )
    .await;
    assert_eq!(
        actors(&app, mark, "token.retiring").await,
        vec!["admin:tester"; 7]
    );
    app.eventually(
        "the new pool of 10-install tokens",
        Duration::from_secs(20),
        || async {
            (minted(&app, 10) == 8 && tokens_of_tier(&app, &new).await.len() == 8).then_some(())
        },
    )
    .await;
    let kept = app
        .xano
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == earlier.token);
    assert_eq!(
        kept.map(|t| t.max_installs),
        Some(5),
        "the buyer's token is untouched"
    );
    let receipt = json_of(app.purchase(&earlier.id, &earlier.receipt_key).await, 200).await;
    assert_eq!(receipt["max_installs"], 5);
    assert_eq!(receipt["token"]["value"], earlier.token.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_tier_takes_it_off_sale_and_deletes_its_unsold_tokens_at_xano() {
    // Arrange
    let app = spawn_app().await;
    settled(&app).await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let path = format!("/v1/admin/tiers/{agency}/deactivate");
    let mark = audit_mark(&app).await;

    // Act
    let first = json_of(app.admin_post(&path).await, 200).await;
    let second = json_of(app.admin_post(&path).await, 200).await;

    // Assert
    assert_eq!(
        first,
        json!({ "change": "deactivated", "tier_id": agency, "retired_tokens": 5 })
    );
    assert_eq!(second, json!({ "change": "unchanged", "tier_id": agency }));
    let on_sale = app.listings().await.to_string();
    assert!(
        !on_sale.contains(&agency),
        "off the public catalog: {on_sale}"
    );
    let refused = app.checkout(&json!({ "tier_id": agency })).await;
    assert_eq!(
        json_of(refused, 409).await["error"]["code"],
        "tier_not_on_sale"
    );
    app.eventually(
        "the agency tokens deleted at Xano",
        Duration::from_secs(20),
        || async { (minted(&app, 50) == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        actors(&app, mark, "tier.applied").await,
        vec!["admin:tester"]
    );
    assert_eq!(
        actors(&app, mark, "token.retiring").await,
        vec!["admin:tester"; 5]
    );
    let unknown = app
        .admin_post(&format!(
            "/v1/admin/tiers/{}/deactivate",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snippets_list_shows_every_snippet_of_the_account_and_whether_it_is_listed() {
    // Arrange
    let app = spawn_app().await;
    app.xano.add_snippet(NEW_SNIPPET, "Webhooks kit");

    // Act
    let snippets = json_of(app.admin_get("/v1/admin/snippets").await, 200).await;

    // Assert
    let find = |canonical: &str| {
        snippets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["canonical"] == canonical)
            .unwrap_or_else(|| panic!("{canonical} missing from {snippets}"))
            .clone()
    };
    for listed in [CANONICAL, "stripe-billing_02"] {
        let snippet = find(listed);
        assert_eq!(snippet["listed"], true);
        assert_eq!(snippet["install_access"], "token");
    }
    let unlisted = find(NEW_SNIPPET);
    assert_eq!(unlisted["listed"], false);
    assert_eq!(unlisted["install_access"], "public");
    assert_eq!(unlisted["name"], "Webhooks kit");
    app.stop().await;
}
