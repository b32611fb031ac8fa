//! One seller's key reaches nothing of another's: Bob, a seller with his own Xano, finds none of
//! Ada's listings, tiers, purchases, pools, jobs or API keys (another seller's ids answer `404`,
//! lists show nothing of theirs) and changes nothing of hers or the house's; the public catalog
//! names each listing's seller and lists one seller's alone. The sellers' setup is
//! `seller_work.rs`'s.

use sandbox::xano::SimAccount;
use serde_json::{Value, json};

use crate::admin_purchases::{buy, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::seller_work::{ADA_SNIPPET, ada_selling, get_as, put, set_credential};
use crate::sellers::invite;

/// Bob: another seller, with his own Xano account (and no snippet in it). His key.
async fn bob(app: &TestApp) -> String {
    let key = invite(app, "Bob", "bob@example.com").await;
    let xano_token = app.xano.add_account(SimAccount {
        id: "88".into(),
        name: "Bob".into(),
        email: "bob@example.test".into(),
    });
    set_credential(app, &key, &xano_token).await;
    key
}

/// A tier anyone would want to slip into another's listing: all but free, endless installs.
fn free_tier() -> Value {
    json!({
        "name": "Free", "price": { "amount": 1, "currency": "usd" }, "max_installs": 999,
        "pool_low_water": 0, "pool_target": 0,
    })
}

/// Every listing, as the admin sees it: to show that nothing changed.
/// An endpoint of `seller`'s with one delivered event: `(endpoint_id, delivery_id)`. Written
/// directly (a test app's strict SSRF guard cannot resolve a public name offline).
pub(crate) async fn endpoint_with_a_delivery(app: &TestApp, seller: &str) -> (String, String) {
    let endpoint: String = sqlx::query_scalar(
        "insert into webhook_endpoint (seller_id, url) values ($1::uuid, 'https://hooks.example.com/ada')
         returning endpoint_id::text",
    )
    .bind(seller)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let delivery: String = sqlx::query_scalar(
        "with event as (
             insert into webhook_event (type, seller_id, order_key, fact, data)
             values ('pool.low', $1::uuid, 'tier:test', 'test:' || gen_random_uuid(), '{}')
             returning seq)
         insert into webhook_delivery (event_seq, endpoint_id, order_key, state, delivered_at)
         select seq, $2::uuid, 'tier:test', 'delivered', now() from event
         returning delivery_id::text",
    )
    .bind(seller)
    .bind(&endpoint)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    (endpoint, delivery)
}

/// The request a seller route takes, with a body where it needs one (`template` is the route,
/// `path` with Ada's ids).
fn request_for(app: &TestApp, method: &str, template: &str, path: &str) -> reqwest::RequestBuilder {
    match (method, template.ends_with("{slug}")) {
        ("get", _) => app.client.get(app.url(path)),
        ("post", _) if template.ends_with("/replay") => app
            .client
            .post(app.url(path))
            .json(&json!({ "from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z" })),
        // Stripe onboarding, the dashboard link, a new key: Bob's own, never Ada's.
        ("post", _) => app.client.post(app.url(path)),
        ("patch", _) => app
            .client
            .patch(app.url(path))
            .json(&json!({ "enabled": false, "include_token": true })),
        ("delete", _) => app.client.delete(app.url(path)),
        (_, true) => app.client.put(app.url(path)).json(&free_tier()),
        (_, false) => app
            .client
            .put(app.url(path))
            .json(&json!({ "title": "mine", "description": "" })),
    }
}

/// Every webhook endpoint, its deliveries and its secrets, as one comparable string.
async fn webhooks_snapshot(app: &TestApp) -> String {
    sqlx::query_scalar(
        "select string_agg(endpoint_id || state || url || include_token, ',')
             || (select string_agg(state, ',') from webhook_delivery)
             || (select count(*) from webhook_secret)
         from webhook_endpoint",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

async fn admin_listings(app: &TestApp) -> Value {
    json_of(app.admin_get("/v1/admin/listings").await, 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sellers_key_finds_none_of_a_sellers_listings_and_changes_nothing() {
    let app = spawn_app().await;
    let (ada, _, _) = ada_selling(&app).await;
    let bob = bob(&app).await;
    let before = admin_listings(&app).await;

    let listing = put(
        &app,
        &bob,
        &format!("/v1/seller/listings/{ADA_SNIPPET}"),
        &json!({ "title": "mine now", "description": "" }),
    )
    .await;
    let on_adas = format!("/v1/seller/listings/{ADA_SNIPPET}/tiers/solo");
    let tier = put(&app, &bob, &on_adas, &free_tier()).await;
    let on_the_houses = format!("/v1/seller/listings/{CANONICAL}/tiers/solo");
    let house_tier = put(&app, &bob, &on_the_houses, &free_tier()).await;
    let bobs = get_as(&app, "/v1/seller/listings", &bob).await;

    assert_eq!(json_of(listing, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(tier, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(house_tier, 404).await["error"]["code"], "not_found");
    assert_eq!(bobs, json!([]));
    let after = admin_listings(&app).await;
    assert_eq!(before, after, "nothing changed");
    let adas = get_as(&app, "/v1/seller/listings", &ada).await;
    assert_eq!(adas[0]["title"], "Ada's snippet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seller_route_with_another_sellers_ids_is_a_404_or_shows_nothing_of_theirs() {
    // Arrange: Ada sells one purchase; Bob is another seller with his own Xano.
    let app = spawn_app().await;
    let (ada, _, tier) = ada_selling(&app).await;
    let sold = buy(&app, &tier, None).await;
    let bob = bob(&app).await;
    let ada_me = get_as(&app, "/v1/seller/me", &ada).await;
    let ada_job: i64 = sqlx::query_scalar(
        "select job_id from job where kind = 'replenish_pool' and subject = $1 limit 1",
    )
    .bind(&tier)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let ada_key_id = get_as(&app, "/v1/seller/keys", &ada).await[0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let adas = [
        ada_key_id.clone(),
        sold.id.clone(),
        tier.clone(),
        ADA_SNIPPET.to_owned(),
        ada_me["seller_id"].as_str().unwrap().to_owned(),
        sold.token.clone(),
    ];
    let (endpoint, delivery) =
        endpoint_with_a_delivery(&app, ada_me["seller_id"].as_str().unwrap()).await;
    let before = admin_listings(&app).await;
    let endpoints_before = webhooks_snapshot(&app).await;
    let routes: Vec<_> = crate::ops::ROUTES
        .iter()
        .filter(|(_, template)| template.starts_with("/v1/seller/"))
        .collect();
    assert_eq!(routes.len(), 27);

    for (method, template) in routes {
        if *template == "/v1/seller/xano" && *method == "put" {
            continue; // Bob's own credential: nothing of Ada's to name.
        }
        if *template == "/v1/seller/webhooks" && *method == "post" {
            continue; // Bob's own endpoint: nothing of Ada's to name.
        }
        let path = template
            .replace("{job_id}", &ada_job.to_string())
            .replace("{key_id}", &ada_key_id)
            .replace("{id}", &sold.id)
            .replace("{canonical}", ADA_SNIPPET)
            .replace("{slug}", "solo")
            .replace("{endpoint_id}", &endpoint)
            .replace("{delivery_id}", &delivery);
        let request = request_for(&app, method, template, &path);
        // Act
        let response = request.bearer_auth(&bob).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        // Assert
        if template.contains('{') {
            assert_eq!(status, 404, "{method} {path}: {body}");
        } else {
            assert!(
                [200, 201, 404, 409].contains(&status),
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
    let after = admin_listings(&app).await;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(
        webhooks_snapshot(&app).await,
        endpoints_before,
        "Ada's endpoint unchanged"
    );
    let ada_keys = get_as(&app, "/v1/seller/keys", &ada).await;
    assert!(ada_keys[0]["revoked_at"].is_null(), "Ada's key unrevoked");
    let own = get_as(&app, &format!("/v1/seller/purchases/{}", sold.id), &ada).await;
    assert_eq!(own["purchase_id"], sold.id.as_str(), "Ada sees her own");
    assert!(own["token"]["value"].is_null(), "never the buyer's token");
    // Sales reports: Ada's counts her sale; Bob naming her listing still sees nothing of hers.
    let ada_listing: uuid::Uuid =
        sqlx::query_scalar("select listing_id from listing where canonical = $1")
            .bind(ADA_SNIPPET)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let report = get_as(&app, "/v1/seller/reports/sales?group_by=seller", &ada).await;
    assert_eq!(
        report["rows"][0]["seller_id"], ada_me["seller_id"],
        "{report}"
    );
    assert_eq!(report["totals"][0]["sales"], 1, "{report}");
    let path = format!("/v1/seller/reports/sales?listing_id={ada_listing}");
    let bobs = get_as(&app, &path, &bob).await;
    assert_eq!(
        (bobs["rows"].clone(), bobs["totals"].clone()),
        (json!([]), json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_names_each_listings_seller_and_lists_one_sellers_alone() {
    let app = spawn_app().await;
    let (ada, _, _) = ada_selling(&app).await;
    let me = get_as(&app, "/v1/seller/me", &ada).await;
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
    assert_eq!(nobody, json!({ "listings": [], "next_cursor": null }));
    assert_eq!(bad["error"]["code"], "invalid_request");
}

/// A dead job about the listing of `canonical` (a reconciliation: harmless to run again).
async fn dead_reconciliation(app: &TestApp, canonical: &str) -> i64 {
    sqlx::query_scalar(
        "insert into job (kind, subject, state, attempt, finished_at, last_error)
         select 'reconcile_listing', listing_id::text, 'dead', 12, now(), 'gave up: test'
         from listing where canonical = $1
         returning job_id",
    )
    .bind(canonical)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_sees_and_requeues_its_own_jobs_and_never_the_houses() {
    // Arrange: a dead job of Ada's and one of the house's.
    let app = spawn_app().await;
    let (ada, _, tier) = ada_selling(&app).await;
    let sold = buy(&app, &tier, None).await;
    // A mint that died for a purchase since served: nothing live does its work (no live job
    // settles it), and running it again changes nothing.
    let adas: i64 = sqlx::query_scalar(
        "insert into job (kind, subject, state, attempt, finished_at, last_error)
         values ('mint_for_purchase', $1, 'dead', 12, now(), 'gave up: test') returning job_id",
    )
    .bind(&sold.id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let houses = dead_reconciliation(&app, CANONICAL).await;

    // Act
    let dead = get_as(&app, "/v1/seller/jobs?state=dead", &ada).await;
    let requeue = |job: i64| {
        app.client
            .post(app.url(&format!("/v1/seller/jobs/{job}/requeue")))
            .bearer_auth(&ada)
            .send()
    };
    let own = requeue(adas).await.unwrap();
    let house = requeue(houses).await.unwrap();
    let bad = app
        .client
        .get(app.url("/v1/seller/jobs?state=sleeping"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();

    // Assert
    let ids: Vec<i64> = dead
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [adas], "Ada's dead job, not the house's");
    // Hers to requeue: queued again, or refused only because the sweep already queued its work.
    let status = own.status().as_u16();
    let body: Value = own.json().await.unwrap();
    assert!(
        (status == 200 && body["state"] == "queued")
            || (status == 409 && body["error"]["code"] == "job_already_live"),
        "{status} {body}"
    );
    assert_eq!(json_of(house, 404).await["error"]["code"], "not_found");
    assert_eq!(json_of(bad, 400).await["error"]["code"], "invalid_request");
    app.stop().await;
}
