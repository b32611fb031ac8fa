//! A seller's API keys after the invitation, and its suspension: the seller rotates its key without
//! downtime (old and new both work until the old one is revoked) but never revokes its last one;
//! the operator issues a key to a seller who lost theirs, revokes any (the last too), suspends a
//! seller (its keys open nothing, its listing leaves the catalog, its buyers keep what they paid
//! for) and reactivates it. The house has no key and cannot be suspended. Every change is audited
//! with its actor.

use std::num::NonZeroU32;
use std::time::Duration;

use market_http::limits::{Limit, RateLimits};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::admin_purchases::{buy, checkout, json_of};
use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app, spawn_app_with};
use crate::seller_work::{ADA_SNIPPET, ada_selling, get_as};
use crate::sellers::invite;

/// `method path` with `Authorization: Bearer <key>`.
async fn send(app: &TestApp, method: Method, path: &str, key: &str) -> Response {
    let request = app.client.request(method, app.url(path)).bearer_auth(key);
    request.send().await.unwrap()
}

async fn me(app: &TestApp, key: &str) -> Response {
    send(app, Method::GET, "/v1/seller/me", key).await
}

async fn seller_id(app: &TestApp, key: &str) -> String {
    let me = json_of(me(app, key).await, 200).await;
    me["seller_id"].as_str().unwrap().to_owned()
}

async fn issue(app: &TestApp, key: &str) -> Response {
    send(app, Method::POST, "/v1/seller/keys", key).await
}

async fn revoke(app: &TestApp, key: &str, key_id: &str) -> Response {
    let path = format!("/v1/seller/keys/{key_id}");
    send(app, Method::DELETE, &path, key).await
}

/// The ids of the seller's keys (as `GET /v1/seller/keys` lists them), and of its unrevoked ones.
async fn key_ids(app: &TestApp, key: &str) -> (Vec<String>, Vec<String>) {
    let keys = get_as(app, "/v1/seller/keys", key).await;
    let keys = keys.as_array().unwrap();
    let id = |k: &Value| k["key_id"].as_str().unwrap().to_owned();
    let live = keys
        .iter()
        .filter(|k| k["revoked_at"].is_null())
        .map(id)
        .collect();
    (keys.iter().map(id).collect(), live)
}

/// How many audit entries `action` has with `actor`.
async fn audited(app: &TestApp, action: &str, actor: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where action = $1 and actor = $2")
        .bind(action)
        .bind(actor)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

fn assert_no_store(response: &Response) {
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_rotates_its_key_without_downtime_and_the_revoked_key_is_a_401() {
    // Arrange
    let app = spawn_app().await;
    let old = invite(&app, "Ada", "ada@example.com").await;
    let ada = seller_id(&app, &old).await;
    let (ids, _) = key_ids(&app, &old).await;
    let old_id = ids[0].clone();

    // Act: a new key, both in use, then the old one revoked with the new.
    let issued = issue(&app, &old).await;
    assert_no_store(&issued);
    let issued = json_of(issued, 201).await;
    let new = issued["api_key"].as_str().unwrap().to_owned();
    let both = (
        me(&app, &old).await.status().as_u16(),
        me(&app, &new).await.status().as_u16(),
    );
    let listed = get_as(&app, "/v1/seller/keys", &new).await;
    let revoked = json_of(revoke(&app, &new, &old_id).await, 200).await;
    let again = json_of(revoke(&app, &new, &old_id).await, 200).await;

    // Assert
    assert!(new.starts_with("sk_") && new != old, "{issued}");
    assert_eq!(both, (200, 200), "both work until the old is revoked");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&old) && !listed.to_string().contains(&new),
        "a list never shows a key: {listed}"
    );
    assert_eq!(revoked["key_id"], old_id.as_str());
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(again, revoked, "revoking a revoked key changes nothing");
    let refused = json_of(me(&app, &old).await, 401).await;
    assert_eq!(refused["error"]["code"], "unauthorized");
    assert_eq!(seller_id(&app, &new).await, ada, "the new key is Ada's");
    let actor = format!("seller:{ada}");
    assert_eq!(audited(&app, "seller.key_issued", &actor).await, 1);
    assert_eq!(audited(&app, "seller.key_revoked", &actor).await, 1);
    let details: Vec<Value> = sqlx::query_scalar(
        "select detail from audit_event where action like 'seller.key_%' order by audit_event_id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(details[0]["key_id"], issued["key_id"]);
    assert_eq!(details[1]["key_id"], old_id.as_str());
    let log = format!("{details:?}");
    assert!(!log.contains(&old) && !log.contains(&new), "no key audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_cannot_revoke_its_last_key_nor_name_another_sellers() {
    let app = spawn_app().await;
    let ada = invite(&app, "Ada", "ada@example.com").await;
    let bob = invite(&app, "Bob", "bob@example.com").await;
    let (ada_ids, _) = key_ids(&app, &ada).await;

    let last = json_of(revoke(&app, &ada, &ada_ids[0]).await, 409).await;
    let bobs = json_of(revoke(&app, &bob, &ada_ids[0]).await, 404).await;
    let malformed = json_of(revoke(&app, &bob, "not-a-key-id").await, 404).await;

    assert_eq!(last["error"]["code"], "last_seller_key");
    assert_eq!(bobs["error"]["code"], "not_found");
    assert_eq!(malformed["error"]["code"], "not_found");
    assert_eq!(key_ids(&app, &ada).await.1, ada_ids, "still unrevoked");
    assert_eq!(me(&app, &ada).await.status(), 200);
    assert_eq!(me(&app, &bob).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_revocations_at_once_never_leave_a_seller_without_a_key() {
    let app = spawn_app().await;
    let mut kept = invite(&app, "Ada", "ada@example.com").await;
    for round in 0..5 {
        // Two live keys; each request revokes the key the other one presents.
        let issued = json_of(issue(&app, &kept).await, 201).await;
        let new = issued["api_key"].as_str().unwrap().to_owned();
        let new_id = issued["key_id"].as_str().unwrap();
        let (_, live) = key_ids(&app, &new).await;
        assert_eq!(live.len(), 2, "round {round}");
        let kept_id = live.iter().find(|id| *id != new_id).unwrap();

        let (a, b) = tokio::join!(revoke(&app, &kept, new_id), revoke(&app, &new, kept_id));

        // One wins; the other meets the last key (409) or its own key already revoked (401).
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        assert!(
            statuses == [200, 409]
                || statuses == [200, 401]
                || statuses == [409, 200]
                || statuses == [401, 200],
            "round {round}: {statuses:?}"
        );
        let unrevoked: i64 =
            sqlx::query_scalar("select count(*) from seller_key where revoked_at is null")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(unrevoked, 1, "round {round}: one key left");
        if statuses[1] == 200 {
            kept = new;
        }
        assert_eq!(me(&app, &kept).await.status(), 200, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_holds_at_most_ten_unrevoked_keys() {
    let app = spawn_app().await;
    let ada = invite(&app, "Ada", "ada@example.com").await;
    for _ in 1..10 {
        json_of(issue(&app, &ada).await, 201).await;
    }

    let eleventh = json_of(issue(&app, &ada).await, 409).await;
    let (ids, _) = key_ids(&app, &ada).await;
    json_of(revoke(&app, &ada, &ids[9]).await, 200).await;
    let after_a_revocation = issue(&app, &ada).await;

    assert_eq!(eleventh["error"]["code"], "seller_key_limit");
    assert_eq!(after_a_revocation.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_issues_a_key_to_a_seller_and_revokes_any_even_the_last() {
    // Arrange
    let app = spawn_app().await;
    let lost = invite(&app, "Ada", "ada@example.com").await;
    let ada = seller_id(&app, &lost).await;
    let keys = format!("/v1/admin/sellers/{ada}/keys");

    // Act: a key for Ada, then every key of hers revoked.
    let issued = app.admin_post(&keys).await;
    assert_no_store(&issued);
    let issued = json_of(issued, 201).await;
    let given = issued["api_key"].as_str().unwrap().to_owned();
    let works = me(&app, &given).await.status();
    let listed = json_of(app.admin_get(&keys).await, 200).await;
    let mut revoked = Vec::new();
    for key in listed.as_array().unwrap() {
        let path = format!("{keys}/{}", key["key_id"].as_str().unwrap());
        let response = send(&app, Method::DELETE, &path, ADMIN_TOKEN).await;
        revoked.push(response.status().as_u16());
    }

    // Assert
    assert_eq!(works, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&given), "{listed}");
    assert_eq!(revoked, [200, 200], "the operator may revoke the last key");
    assert_eq!(me(&app, &lost).await.status(), 401);
    assert_eq!(me(&app, &given).await.status(), 401, "Ada is locked out");
    let actor = "admin:tester";
    assert_eq!(audited(&app, "seller.key_issued", actor).await, 1);
    assert_eq!(audited(&app, "seller.key_revoked", actor).await, 2);
    let nobody = format!("/v1/admin/sellers/{}/keys", uuid::Uuid::new_v4());
    let app = &app;
    let delete = |path: String| async move { send(app, Method::DELETE, &path, ADMIN_TOKEN).await };
    for response in [
        app.admin_get(&nobody).await,
        app.admin_post(&nobody).await,
        delete(format!("{nobody}/0123456789abcdef")).await,
        delete(format!("{keys}/0123456789abcdef")).await,
        delete(format!("{keys}/XYZ")).await,
        app.admin_post("/v1/admin/sellers/not-a-uuid/keys").await,
    ] {
        assert_eq!(json_of(response, 404).await["error"]["code"], "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_house_cannot_be_suspended_nor_given_a_key() {
    let app = spawn_app().await;
    let sellers = json_of(app.admin_get("/v1/admin/sellers").await, 200).await;
    let house = sellers[0]["seller_id"].as_str().unwrap();
    assert_eq!(sellers[0]["house"], true);

    let of = |seller: &str, what: &str| format!("/v1/admin/sellers/{seller}/{what}");
    let nobody = uuid::Uuid::new_v4().to_string();

    let suspended = app.admin_post(&of(house, "suspend")).await;
    let keyed = app.admin_post(&of(house, "keys")).await;
    let reactivated = app.admin_post(&of(house, "reactivate")).await;
    let unknown = app.admin_post(&of(&nobody, "suspend")).await;

    let code = |body: Value| body["error"]["code"].clone();
    assert_eq!(code(json_of(suspended, 409).await), "house_not_suspendable");
    assert_eq!(code(json_of(keyed, 409).await), "house_has_no_key");
    assert_eq!(json_of(reactivated, 200).await["status"], "active");
    assert_eq!(code(json_of(unknown, 404).await), "not_found");
    let changes: i64 = sqlx::query_scalar(
        "select (select count(*) from seller_key) + (select count(*) from audit_event
                 where action like 'seller.%' and action <> 'seller.invited')",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(changes, 0, "no key made, nothing audited");
}

/// Whether Ada's listing is in the public catalog.
async fn in_catalog(app: &TestApp) -> bool {
    let catalog = json_of(app.get("/v1/listings").await, 200).await;
    catalog.to_string().contains(ADA_SNIPPET)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_sellers_keys_open_nothing_and_its_listing_leaves_the_catalog_until_reactivated()
 {
    // Arrange: Ada sells; one buyer has paid, another has checked out but not paid yet.
    let app = spawn_app().await;
    let (key, _, tier) = ada_selling(&app).await;
    let ada = seller_id(&app, &key).await;
    let paid = buy(&app, &tier, None).await;
    let (unpaid, session, unpaid_key) = checkout(&app, &tier, None).await;
    assert!(in_catalog(&app).await);
    let suspend = format!("/v1/admin/sellers/{ada}/suspend");

    // Act
    let suspended = json_of(app.admin_post(&suspend).await, 200).await;
    let twice = json_of(app.admin_post(&suspend).await, 200).await;

    // Assert: locked out and off sale, and its buyers keep what they paid for.
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(twice["status"], "suspended", "suspending is idempotent");
    let refused = json_of(me(&app, &key).await, 401).await;
    assert_eq!(refused["error"]["code"], "unauthorized");
    app.eventually(
        "Ada's listing off the catalog",
        Duration::from_secs(5),
        || async { (!in_catalog(&app).await).then_some(()) },
    )
    .await;
    let refused = json_of(app.checkout(&json!({ "tier_id": tier })).await, 409).await;
    assert_eq!(refused["error"]["code"], "tier_not_on_sale");
    let receipt = json_of(app.purchase(&paid.id, &paid.receipt_key).await, 200).await;
    assert_eq!(receipt["token"]["value"], paid.token.as_str(), "served");
    app.stripe.pay(&session).unwrap();
    let late = app.token_of(&unpaid, &unpaid_key).await;
    assert!(!late.is_empty(), "a checkout started before is served");

    // Act and assert: reactivated, the key works and the listing is back.
    let reactivated = json_of(
        app.admin_post(&format!("/v1/admin/sellers/{ada}/reactivate"))
            .await,
        200,
    )
    .await;
    assert_eq!(reactivated["status"], "active");
    assert_eq!(me(&app, &key).await.status(), 200);
    app.eventually("Ada's listing back", Duration::from_secs(5), || async {
        in_catalog(&app).await.then_some(())
    })
    .await;
    assert_eq!(audited(&app, "seller.suspended", "admin:tester").await, 1);
    assert_eq!(audited(&app, "seller.reactivated", "admin:tester").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_list_is_rate_limited_as_a_read_and_issuing_and_revoking_as_writes() {
    // Arrange: two writes (`portal`) and three reads (`purchase_read`) a minute per client.
    let per_minute = |n: u32| {
        Some(Limit {
            requests: NonZeroU32::new(n).unwrap(),
            period: Duration::from_secs(60),
        })
    };
    let app = spawn_app_with(Options {
        rate_limits: RateLimits {
            portal: per_minute(2),
            purchase_read: per_minute(3),
            ..RateLimits::NONE
        },
        ..Options::default()
    })
    .await;
    let ada = invite(&app, "Ada", "ada@example.com").await;

    // Act
    let mut writes = Vec::new();
    for _ in 0..3 {
        writes.push(issue(&app, &ada).await.status().as_u16());
    }
    let revoked = revoke(&app, &ada, "0123456789abcdef").await;
    let mut reads = Vec::new();
    for _ in 0..4 {
        let read = send(&app, Method::GET, "/v1/seller/keys", &ada).await;
        reads.push(read.status().as_u16());
    }

    // Assert
    assert_eq!(writes, [201, 201, 429]);
    assert_eq!(json_of(revoked, 429).await["error"]["code"], "rate_limited");
    assert_eq!(reads, [200, 200, 200, 429], "reads count apart from writes");
}
