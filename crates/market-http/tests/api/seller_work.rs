//! A seller's listing runs on the seller's own Xano: its pool is minted with the seller's token (the
//! snippet exists in no other account), its buyers get tokens of it, and when Xano refuses the
//! seller's token only that seller's work parks, while the house goes on selling, until the seller
//! replaces the token.

use std::time::Duration;

use reqwest::Response;
use sandbox::xano::{SimAccount, TokenState};
use serde_json::{Value, json};

use crate::admin_purchases::{buy, checkout, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::sellers::invite;

const ADA_SNIPPET: &str = "ada-snip_01";

async fn put(app: &TestApp, key: &str, path: &str, body: &Value) -> Response {
    app.client
        .put(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Ada: a seller with her own Xano account holding one snippet, listed with a tier of 3 installs
/// whose pool keeps 1 to 2 tokens. Her key, her Xano token and the tier's id.
async fn ada_selling(app: &TestApp) -> (String, String, String) {
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
    json_of(
        put(
            app,
            &key,
            "/v1/seller/xano",
            &json!({ "access_token": xano_token }),
        )
        .await,
        200,
    )
    .await;
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

fn ada_tokens(app: &TestApp) -> Vec<String> {
    app.xano
        .tokens(ADA_SNIPPET)
        .into_iter()
        .map(|t| t.token)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_pool_is_minted_with_the_sellers_own_token_and_its_buyers_get_those_tokens() {
    let app = spawn_app().await;
    let (_, _, tier) = ada_selling(&app).await;

    app.eventually("Ada's pool filled", Duration::from_secs(20), || async {
        (ada_tokens(&app).len() >= 2).then_some(())
    })
    .await;
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
    let (key, xano_token, tier) = ada_selling(&app).await;
    app.eventually("Ada's pool filled", Duration::from_secs(20), || async {
        (ada_tokens(&app).len() >= 2).then_some(())
    })
    .await;
    assert!(
        app.xano
            .set_access_token_state_for(&xano_token, TokenState::Expired)
    );

    // Act: Ada's buyers empty her pool and wait; the house's buyer is served meanwhile.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let (id, session, receipt_key) = checkout(&app, &tier, None).await;
        app.stripe.pay(&session).unwrap();
        waiting.push((id, receipt_key));
    }
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
    let own = json_of(
        app.client
            .get(app.url("/v1/seller/xano"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(own["state"], "unauthorized", "{own}");
    assert!(own["parked_jobs"].as_i64().unwrap() > 0, "{own}");

    // Act: Ada replaces her token; her buyers are all served.
    let fresh = app.xano.add_access_token_for(&xano_token).unwrap();
    json_of(
        put(
            &app,
            &key,
            "/v1/seller/xano",
            &json!({ "access_token": fresh }),
        )
        .await,
        200,
    )
    .await;
    for (id, receipt_key) in &waiting {
        let token = app.token_of(id, receipt_key).await;
        assert!(ada_tokens(&app).contains(&token), "{token} is Ada's");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sellers_key_finds_none_of_a_sellers_listings_and_changes_nothing() {
    let app = spawn_app().await;
    let (ada, _, _) = ada_selling(&app).await;
    let bob = invite(&app, "Bob", "bob@example.com").await;
    let bob_xano = app.xano.add_account(SimAccount {
        id: "88".into(),
        name: "Bob".into(),
        email: "bob@example.test".into(),
    });
    json_of(
        put(
            &app,
            &bob,
            "/v1/seller/xano",
            &json!({ "access_token": bob_xano }),
        )
        .await,
        200,
    )
    .await;
    let before = json_of(app.admin_get("/v1/admin/listings").await, 200).await;

    let listing = put(
        &app,
        &bob,
        &format!("/v1/seller/listings/{ADA_SNIPPET}"),
        &json!({ "title": "mine now", "description": "" }),
    )
    .await;
    let tier = put(
        &app,
        &bob,
        &format!("/v1/seller/listings/{ADA_SNIPPET}/tiers/solo"),
        &json!({ "name": "Free", "price": { "amount": 1, "currency": "usd" }, "max_installs": 999,
                 "pool_low_water": 0, "pool_target": 0 }),
    )
    .await;
    let house_tier = put(
        &app,
        &bob,
        &format!("/v1/seller/listings/{CANONICAL}/tiers/solo"),
        &json!({ "name": "Free", "price": { "amount": 1, "currency": "usd" }, "max_installs": 999,
                 "pool_low_water": 0, "pool_target": 0 }),
    )
    .await;
    let bobs = json_of(
        app.client
            .get(app.url("/v1/seller/listings"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;

    assert_eq!(json_of(listing, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(tier, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(house_tier, 404).await["error"]["code"], "not_found");
    assert_eq!(bobs, json!([]));
    let after = json_of(app.admin_get("/v1/admin/listings").await, 200).await;
    assert_eq!(before, after, "nothing changed");
    let adas = json_of(
        app.client
            .get(app.url("/v1/seller/listings"))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(adas[0]["title"], "Ada's snippet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seller_route_with_another_sellers_ids_is_a_404_or_shows_nothing_of_theirs() {
    // Arrange: Ada sells one purchase; Bob is another seller with his own Xano.
    let app = spawn_app().await;
    let (ada, _, tier) = ada_selling(&app).await;
    let sold = buy(&app, &tier, None).await;
    let bob = invite(&app, "Bob", "bob@example.com").await;
    let bob_xano = app.xano.add_account(SimAccount {
        id: "88".into(),
        name: "Bob".into(),
        email: "bob@example.test".into(),
    });
    json_of(
        put(
            &app,
            &bob,
            "/v1/seller/xano",
            &json!({ "access_token": bob_xano }),
        )
        .await,
        200,
    )
    .await;
    let ada_me = json_of(
        app.client
            .get(app.url("/v1/seller/me"))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let adas = [
        sold.id.clone(),
        tier.clone(),
        ADA_SNIPPET.to_owned(),
        ada_me["seller_id"].as_str().unwrap().to_owned(),
        sold.token.clone(),
    ];
    let before = json_of(app.admin_get("/v1/admin/listings").await, 200).await;
    let routes: Vec<_> = crate::ops::ROUTES
        .iter()
        .filter(|(_, template)| template.starts_with("/v1/seller/"))
        .collect();
    assert_eq!(routes.len(), 9);

    for (method, template) in routes {
        if *template == "/v1/seller/xano" && *method == "put" {
            continue; // Bob's own credential: nothing of Ada's to name.
        }
        let path = template
            .replace("{id}", &sold.id)
            .replace("{canonical}", ADA_SNIPPET)
            .replace("{slug}", "solo");
        let request = match (*method, template.ends_with("{slug}")) {
            ("get", _) => app.client.get(app.url(&path)),
            (_, true) => app.client.put(app.url(&path)).json(&json!({
                "name": "Free", "price": { "amount": 1, "currency": "usd" }, "max_installs": 999,
                "pool_low_water": 0, "pool_target": 0,
            })),
            (_, false) => app
                .client
                .put(app.url(&path))
                .json(&json!({ "title": "mine", "description": "" })),
        };
        // Act
        let response = request.bearer_auth(&bob).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        // Assert
        if template.contains('{') {
            assert_eq!(status, 404, "{method} {path}: {body}");
        } else {
            assert!(
                [200, 404].contains(&status),
                "{method} {path}: {status} {body}"
            );
            for id in &adas {
                assert!(
                    !body.contains(id.as_str()),
                    "{method} {path} shows Ada's {id}: {body}"
                );
            }
        }
    }
    let after = json_of(app.admin_get("/v1/admin/listings").await, 200).await;
    assert_eq!(before, after, "nothing changed");
    let own = json_of(
        app.client
            .get(app.url(&format!("/v1/seller/purchases/{}", sold.id)))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(own["purchase_id"], sold.id.as_str(), "Ada sees her own");
    assert!(own["token"]["value"].is_null(), "never the buyer's token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_names_each_listings_seller_and_lists_one_sellers_alone() {
    let app = spawn_app().await;
    let (ada, _, _) = ada_selling(&app).await;
    let me = json_of(
        app.client
            .get(app.url("/v1/seller/me"))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let ada_id = me["seller_id"].as_str().unwrap();

    let all = json_of(app.get("/v1/listings").await, 200).await;
    let adas = json_of(app.get(&format!("/v1/listings?seller={ada_id}")).await, 200).await;
    let nobody = json_of(
        app.get(&format!("/v1/listings?seller={}", uuid::Uuid::new_v4()))
            .await,
        200,
    )
    .await;
    let bad = json_of(app.get("/v1/listings?seller=ada").await, 400).await;

    let sellers: Vec<_> = all["listings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["canonical"].as_str().unwrap().to_owned(),
                l["seller"]["name"].clone(),
            )
        })
        .collect();
    assert!(
        sellers.contains(&(ADA_SNIPPET.to_owned(), json!("Ada"))),
        "{sellers:?}"
    );
    assert!(
        sellers.contains(&(CANONICAL.to_owned(), json!("House"))),
        "{sellers:?}"
    );
    let only: Vec<_> = adas["listings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["canonical"].clone())
        .collect();
    assert_eq!(only, [json!(ADA_SNIPPET)]);
    assert_eq!(nobody, json!({ "listings": [] }));
    assert_eq!(bad["error"]["code"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_token_that_works_again_is_healed_by_the_probe_and_its_work_resumes() {
    let app = spawn_app().await;
    let (key, xano_token, tier) = ada_selling(&app).await;
    app.eventually("Ada's pool filled", Duration::from_secs(20), || async {
        (ada_tokens(&app).len() >= 2).then_some(())
    })
    .await;
    assert!(
        app.xano
            .set_access_token_state_for(&xano_token, TokenState::Expired)
    );
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let (id, session, receipt_key) = checkout(&app, &tier, None).await;
        app.stripe.pay(&session).unwrap();
        waiting.push((id, receipt_key));
    }
    let xano = |app: &TestApp, key: String| {
        let request = app.client.get(app.url("/v1/seller/xano")).bearer_auth(key);
        async move { json_of(request.send().await.unwrap(), 200).await }
    };
    app.eventually("Ada's work parked", Duration::from_secs(20), || async {
        (xano(&app, key.clone()).await["parked_jobs"].as_i64() > Some(0)).then_some(())
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
    for (id, receipt_key) in &waiting {
        let token = app.token_of(id, receipt_key).await;
        assert!(ada_tokens(&app).contains(&token));
    }
    let healed = xano(&app, key.clone()).await;
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
