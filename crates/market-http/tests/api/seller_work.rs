//! A seller's listing runs on the seller's own Xano: its pool is minted with the seller's token (the
//! snippet exists in no other account), its buyers get tokens of it, and when Xano refuses the
//! seller's token only that seller's work parks, while the house goes on selling, until the seller
//! replaces the token. Who sees whose listings is `seller_isolation.rs`.

use std::time::Duration;

use reqwest::Response;
use sandbox::xano::{SimAccount, TokenState};
use serde_json::{Value, json};

use crate::admin_purchases::{buy, checkout, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::sellers::invite;

pub(crate) const ADA_SNIPPET: &str = "ada-snip_01";

pub(crate) async fn put(app: &TestApp, key: &str, path: &str, body: &Value) -> Response {
    app.client
        .put(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A GET with a seller's key: asserts `200` and returns the JSON body.
pub(crate) async fn get_as(app: &TestApp, path: &str, key: &str) -> Value {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    json_of(response, 200).await
}

/// Sets the seller's Xano credential, asserting `200`.
pub(crate) async fn set_credential(app: &TestApp, key: &str, xano_token: &str) {
    let body = json!({ "access_token": xano_token });
    json_of(put(app, key, "/v1/seller/xano", &body).await, 200).await;
}

/// Ada: a seller with her own Xano account holding one snippet, listed with a tier of 3 installs
/// whose pool keeps 1 to 2 tokens, and onboarded at Stripe so the tier is on sale. Her key, her
/// Xano token and the tier's id.
pub(crate) async fn ada_selling(app: &TestApp) -> (String, String, String) {
    let (key, xano_token, tier) = ada_listed(app).await;
    crate::connect::onboard(app, &key).await;
    (key, xano_token, tier)
}

/// [`ada_selling`] before Stripe onboarding: listed, not yet on sale.
pub(crate) async fn ada_listed(app: &TestApp) -> (String, String, String) {
    let key = invite(app, "Ada", "ada@example.com").await;
    let xano_token = app.xano.add_account(SimAccount {
        id: "77".into(),
        name: "Ada".into(),
        email: "ada@example.test".into(),
    });
    assert!(
        app.xano
            .add_snippet_for(&xano_token, ADA_SNIPPET, "Ada's snippet")
    );
    let listing = json!({ "title": "Ada's snippet", "description": "" });
    let path = format!("/v1/seller/listings/{ADA_SNIPPET}");
    assert_eq!(
        json_of(put(app, &key, &path, &listing).await, 409).await["error"]["code"],
        "no_xano_credential"
    );
    set_credential(app, &key, &xano_token).await;
    json_of(put(app, &key, &path, &listing).await, 200).await;
    let tier = json!({
        "name": "Solo", "price": { "amount": 1500, "currency": "usd" }, "max_installs": 3,
        "pool_low_water": 1, "pool_target": 2,
    });
    let saved = json_of(
        put(app, &key, &format!("{path}/tiers/solo"), &tier).await,
        200,
    )
    .await;
    let tier_id = saved["listing"]["tiers"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (key, xano_token, tier_id)
}

pub(crate) fn ada_tokens(app: &TestApp) -> Vec<String> {
    app.xano
        .tokens(ADA_SNIPPET)
        .into_iter()
        .map(|t| t.token)
        .collect()
}

/// Waits until Ada's pool holds its target of 2 tokens.
async fn pool_filled(app: &TestApp) {
    app.eventually("Ada's pool filled", Duration::from_secs(20), || async {
        (ada_tokens(app).len() >= 2).then_some(())
    })
    .await;
}

/// [`ada_selling`] from a filled pool, then Xano refuses her token.
async fn ada_selling_refused(app: &TestApp) -> (String, String, String) {
    let (key, xano_token, tier) = ada_selling(app).await;
    pool_filled(app).await;
    assert!(
        app.xano
            .set_access_token_state_for(&xano_token, TokenState::Expired)
    );
    (key, xano_token, tier)
}

/// `n` buyers check out and pay for the tier without waiting for their tokens: each one's purchase
/// id and receipt key.
async fn pay_and_wait(app: &TestApp, tier: &str, n: usize) -> Vec<(String, String)> {
    let mut waiting = Vec::new();
    for _ in 0..n {
        let (id, session, receipt_key) = checkout(app, tier, None).await;
        app.stripe.pay(&session).unwrap();
        waiting.push((id, receipt_key));
    }
    waiting
}

/// Every waiting buyer is served with one of Ada's tokens.
async fn all_served_by_ada(app: &TestApp, waiting: &[(String, String)]) {
    for (id, receipt_key) in waiting {
        let token = app.token_of(id, receipt_key).await;
        assert!(ada_tokens(app).contains(&token), "{token} is Ada's");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_pool_is_minted_with_the_sellers_own_token_and_its_buyers_get_those_tokens() {
    let app = spawn_app().await;
    let (_, _, tier) = ada_selling(&app).await;

    pool_filled(&app).await;
    let bought = buy(&app, &tier, None).await;

    assert!(
        ada_tokens(&app).contains(&bought.token),
        "a token of Ada's snippet"
    );
    let at_xano = app.xano.tokens(ADA_SNIPPET);
    assert!(at_xano.iter().all(|t| t.max_installs == 3));
    assert!(
        app.xano
            .tokens(CANONICAL)
            .iter()
            .all(|t| t.token != bought.token),
        "nothing of Ada's at the house's snippet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_seller_token_parks_only_that_sellers_work_until_the_seller_replaces_it() {
    // Arrange: Ada sells from her pool; then Xano refuses her token.
    let app = spawn_app().await;
    let (key, xano_token, tier) = ada_selling_refused(&app).await;

    // Act: Ada's buyers empty her pool and wait; the house's buyer is served meanwhile.
    let waiting = pay_and_wait(&app, &tier, 3).await;
    let parked = app
        .eventually("Ada's work parked", Duration::from_secs(20), || async {
            let parked: i64 = sqlx::query_scalar(
                "select count(*) from job where state = 'parked' and parked_for_seller is not null",
            )
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            (parked > 0).then_some(parked)
        })
        .await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let house_buyer = buy(&app, &solo, None).await;

    // Assert: the house sold; the service's own credential stayed healthy; Ada's credential shows
    // refused.
    assert!(!house_buyer.token.is_empty());
    assert!(parked > 0);
    let health = json_of(app.admin_get("/v1/admin/health").await, 200).await;
    assert!(!health.to_string().contains("unauthorized"), "{health}");
    let own = get_as(&app, "/v1/seller/xano", &key).await;
    assert_eq!(own["state"], "unauthorized", "{own}");
    assert!(own["parked_jobs"].as_i64().unwrap() > 0, "{own}");
    let refused = r#"market_seller_xano_credentials{state="unauthorized"}"#;
    app.eventually(
        "the gauge operators alert on",
        Duration::from_secs(10),
        || async {
            let text = crate::xano_refusals::metrics(&app).await;
            (crate::xano_refusals::sample(&text, refused) == Some(1.0)).then_some(())
        },
    )
    .await;

    // Act: Ada replaces her token; her buyers are all served.
    let fresh = app.xano.add_access_token_for(&xano_token).unwrap();
    set_credential(&app, &key, &fresh).await;
    all_served_by_ada(&app, &waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_token_that_works_again_is_healed_by_the_probe_and_its_work_resumes() {
    let app = spawn_app().await;
    let (key, xano_token, tier) = ada_selling_refused(&app).await;
    let waiting = pay_and_wait(&app, &tier, 3).await;
    app.eventually("Ada's work parked", Duration::from_secs(20), || async {
        (get_as(&app, "/v1/seller/xano", &key).await["parked_jobs"].as_i64() > Some(0))
            .then_some(())
    })
    .await;
    let listing = json!({ "title": "Ada's snippet", "description": "" });
    let refused = put(
        &app,
        &key,
        &format!("/v1/seller/listings/{ADA_SNIPPET}"),
        &listing,
    )
    .await;
    assert_eq!(
        json_of(refused, 409).await["error"]["code"],
        "seller_xano_refused"
    );

    // Act: Xano accepts the same token again (an outage at Xano, not a revocation).
    assert!(
        app.xano
            .set_access_token_state_for(&xano_token, TokenState::Valid)
    );

    // Assert: the probe heals it; every waiting buyer is served with one of Ada's tokens.
    all_served_by_ada(&app, &waiting).await;
    let healed = get_as(&app, "/v1/seller/xano", &key).await;
    assert_eq!(healed["state"], "healthy");
    assert_eq!(healed["parked_jobs"], 0);
    let audited: i64 =
        sqlx::query_scalar("select count(*) from audit_event where action = 'seller.xano_healthy'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert!(audited >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_sellers_listings_leave_the_catalog_and_cannot_be_bought() {
    let app = spawn_app().await;
    let (_, _, tier) = ada_selling(&app).await;
    sqlx::query("update seller set status = 'suspended' where name = 'Ada'")
        .execute(app.db.pool())
        .await
        .unwrap();

    let refused = json_of(app.checkout(&json!({ "tier_id": tier })).await, 409).await;

    assert_eq!(refused["error"]["code"], "tier_not_on_sale");
    // The catalog is a cached copy, at most a second behind a change made in the database.
    app.eventually(
        "Ada's listing off the catalog",
        Duration::from_secs(5),
        || async {
            let catalog = json_of(app.get("/v1/listings").await, 200).await;
            (!catalog.to_string().contains(ADA_SNIPPET)).then_some(())
        },
    )
    .await;
}
