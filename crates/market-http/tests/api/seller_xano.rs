//! Each seller's Xano credential: checked with Xano before it is kept, stored sealed, never
//! returned; a refused token leaves the one before in use; a replacement must be for the same Xano
//! account while the seller has listings; the house's credential is the service's own.

use reqwest::Response;
use sandbox::xano::SimAccount;
use serde_json::{Value, json};

use crate::admin_purchases::json_of;
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::sellers::invite;

async fn put_xano(app: &TestApp, key: &str, token: &str) -> Response {
    app.client
        .put(app.url("/v1/seller/xano"))
        .bearer_auth(key)
        .json(&json!({ "access_token": token }))
        .send()
        .await
        .unwrap()
}

async fn get_xano(app: &TestApp, key: &str) -> Response {
    app.client
        .get(app.url("/v1/seller/xano"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// A Xano account of the simulator's with id `id`: its access token.
fn account(app: &TestApp, id: &str) -> String {
    app.xano.add_account(SimAccount {
        id: id.to_owned(),
        name: format!("Seller {id}"),
        email: format!("seller{id}@example.test"),
    })
}

/// Every byte the database keeps about sellers' credentials and the audit log, as text.
async fn stored_text(app: &TestApp) -> String {
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("select sealed, account_id from seller_xano_credential")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    let audit: Vec<Value> = sqlx::query_scalar("select to_jsonb(a) from audit_event a")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    format!("{rows:?} {audit:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_xano_token_is_checked_with_xano_kept_sealed_and_never_returned() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    let token = account(&app, "77");
    assert_eq!(get_xano(&app, &key).await.status(), 404, "none set yet");

    let set = json_of(put_xano(&app, &key, &token).await, 200).await;
    let read = json_of(get_xano(&app, &key).await, 200).await;

    assert_eq!(set["account_id"], "77");
    assert_eq!(read, set);
    assert_eq!(read["display_id"].as_str().unwrap().len(), 8);
    assert!(!set.to_string().contains(&token) && !read.to_string().contains(&token));
    assert!(
        !stored_text(&app).await.contains(&token),
        "sealed at rest, not in the audit log"
    );
    let checked = app
        .xano
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/auth/me"))
        .count();
    assert!(checked >= 1, "checked with GET /auth/me before it was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_xano_refuses_is_a_400_and_the_one_before_stays_in_use() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    let good = json_of(put_xano(&app, &key, &account(&app, "77")).await, 200).await;

    let refused = json_of(put_xano(&app, &key, "not-a-xano-token").await, 400).await;
    let blank = json_of(put_xano(&app, &key, "").await, 400).await;

    assert_eq!(refused["error"]["code"], "invalid_request");
    assert_eq!(blank["error"]["code"], "invalid_request");
    let now = json_of(get_xano(&app, &key).await, 200).await;
    assert_eq!(now["display_id"], good["display_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_must_be_for_the_same_account_once_the_seller_has_listings() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    let first = account(&app, "77");
    let before = json_of(put_xano(&app, &key, &first).await, 200).await;
    let ada: String = sqlx::query_scalar("select seller_id::text from seller where not house")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    sqlx::query("update listing set seller_id = $1::uuid where canonical = $2")
        .bind(&ada)
        .bind(CANONICAL)
        .execute(app.db.pool())
        .await
        .unwrap();

    let same_account = app.xano.add_access_token_for(&first).unwrap();
    let rotated = json_of(put_xano(&app, &key, &same_account).await, 200).await;
    let other = json_of(put_xano(&app, &key, &account(&app, "88")).await, 409).await;

    assert_eq!(rotated["account_id"], "77");
    assert_ne!(
        rotated["display_id"], before["display_id"],
        "the new token replaced the old"
    );
    assert_eq!(other["error"]["code"], "xano_account_changed");
    let now = json_of(get_xano(&app, &key).await, 200).await;
    assert_eq!(now["display_id"], rotated["display_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_house_keeps_no_stored_credential() {
    let app = spawn_app().await;

    let stored = sqlx::query(
        "insert into seller_xano_credential (seller_id, key_id, sealed, fingerprint, account_id)
         select seller_id, 'k', '\\x00', decode(repeat('00', 32), 'hex'), '1' from seller where house",
    )
    .execute(app.db.pool())
    .await;

    let Err(sqlx::Error::Database(e)) = stored else {
        panic!("stored: {stored:?}")
    };
    assert_eq!(
        e.code().as_deref(),
        Some("23514"),
        "seller_xano_credential_not_the_house"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_keeps_one_house_a_refusal_with_its_time_and_a_job_parked_for_one_thing() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    json_of(put_xano(&app, &key, &account(&app, "77")).await, 200).await;
    let code = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| match r {
        Err(sqlx::Error::Database(e)) => e.code().map(std::borrow::Cow::into_owned),
        other => panic!("not refused: {other:?}"),
    };

    let second_house =
        sqlx::query("insert into seller (name, house) values ('Another house', true)")
            .execute(app.db.pool())
            .await;
    let refused_untimed = sqlx::query("update seller_xano_credential set state = 'unauthorized'")
        .execute(app.db.pool())
        .await;
    let parked_twice = sqlx::query(
        "insert into job (kind, subject, state, parked_for_seller)
         select 'replenish_pool', 'x', 'parked', seller_id from seller_xano_credential",
    )
    .execute(app.db.pool())
    .await;
    let queued_yet_parked = sqlx::query(
        "insert into job (kind, subject, state, parked_for_seller)
         select 'replenish_pool', 'y', 'queued', seller_id from seller_xano_credential",
    )
    .execute(app.db.pool())
    .await;

    assert_eq!(
        code(second_house).as_deref(),
        Some("23505"),
        "seller_one_house"
    );
    assert_eq!(
        code(refused_untimed).as_deref(),
        Some("23514"),
        "seller_xano_credential_refused_since"
    );
    assert!(
        parked_twice.is_ok(),
        "a job parked for a seller alone is allowed"
    );
    assert_eq!(
        code(queued_yet_parked).as_deref(),
        Some("23514"),
        "job_parked_for_a_listing_or_a_seller"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_declares_their_xano_plan_with_the_token_and_an_unknown_plan_is_a_400() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    let token = account(&app, "77");
    let put = |body: Value| {
        app.client
            .put(app.url("/v1/seller/xano"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };

    let unknown = put(json!({ "access_token": token, "plan": "enterprise" }))
        .await
        .unwrap();
    let free = put(json!({ "access_token": token, "plan": "free" }))
        .await
        .unwrap();
    let kept = put(json!({ "access_token": token })).await.unwrap();

    assert_eq!(
        json_of(unknown, 400).await["error"]["code"],
        "invalid_request"
    );
    assert_eq!(json_of(free, 200).await["plan"], "free");
    assert_eq!(
        json_of(kept, 200).await["plan"],
        "free",
        "kept when not declared again"
    );
    assert_eq!(
        json_of(get_xano(&app, &key).await, 200).await["plan"],
        "free"
    );
}
