//! Sellers: the operator invites one and hands over its API key, shown once; the key opens the
//! seller API and nothing else, and shows only what that seller owns; the shop's existing listings
//! are the house's.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::admin_purchases::json_of;
use crate::helpers::{ADMIN_TOKEN, CANONICAL, TestApp, spawn_app};

async fn invite_with(app: &TestApp, body: &Value) -> Response {
    app.client
        .post(app.url("/v1/admin/sellers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Invites a seller through the admin API: its API key.
pub async fn invite(app: &TestApp, name: &str, email: &str) -> String {
    let body = json!({ "name": name, "contact_email": email });
    let invited = json_of(invite_with(app, &body).await, 201).await;
    invited["api_key"].as_str().unwrap().to_owned()
}

async fn as_seller(app: &TestApp, path: &str, key: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn canonicals(app: &TestApp, key: &str) -> Vec<String> {
    let listings = json_of(as_seller(app, "/v1/seller/listings", key).await, 200).await;
    listings
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["canonical"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_sellers_key_is_shown_once_and_opens_its_own_seller_api() {
    let app = spawn_app().await;

    let body = json!({ "name": "Ada's snippets", "contact_email": "ada@example.com" });
    let invited = json_of(invite_with(&app, &body).await, 201).await;
    let key = invited["api_key"].as_str().unwrap();
    let me = json_of(as_seller(&app, "/v1/seller/me", key).await, 200).await;
    let all = json_of(app.admin_get("/v1/admin/sellers").await, 200).await;

    assert!(key.starts_with("sk_") && key.len() == 67, "{key}");
    assert_eq!(me["seller_id"], invited["seller"]["seller_id"]);
    assert_eq!(me["name"], "Ada's snippets");
    assert_eq!(me["house"], false);
    let names: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("House"), json!("Ada's snippets")],
        "the house first"
    );
    assert!(!all.to_string().contains(key), "the list never shows a key");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select key_hash from seller_key")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], key.as_bytes(), "only the hash is kept");
    assert!(
        canonicals(&app, key).await.is_empty(),
        "a new seller owns nothing yet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_listings_are_the_houses_and_a_seller_sees_only_its_own() {
    let app = spawn_app().await;
    let ada = invite(&app, "Ada", "ada@example.com").await;
    let bob = invite(&app, "Bob", "bob@example.com").await;
    // Until sellers can bring their own Xano account, a listing is moved to one by hand.
    let ada_id =
        json_of(as_seller(&app, "/v1/seller/me", &ada).await, 200).await["seller_id"].clone();
    sqlx::query("update listing set seller_id = $1::uuid where canonical = $2")
        .bind(ada_id.as_str().unwrap())
        .bind(CANONICAL)
        .execute(app.db.pool())
        .await
        .unwrap();

    let admin = json_of(app.admin_get("/v1/admin/listings").await, 200).await;
    let house: Vec<_> = admin
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["seller_id"] != ada_id)
        .map(|l| l["canonical"].as_str().unwrap().to_owned())
        .collect();

    assert_eq!(canonicals(&app, &ada).await, [CANONICAL]);
    assert!(
        canonicals(&app, &bob).await.is_empty(),
        "Bob sees none of Ada's"
    );
    assert!(
        !house.is_empty() && !house.contains(&CANONICAL.to_owned()),
        "the rest stay the house's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seller_api_refuses_every_other_credential_and_a_suspended_seller() {
    let app = spawn_app().await;
    let key = invite(&app, "Ada", "ada@example.com").await;
    let (_, _, receipt_key) = app.start_purchase().await;
    sqlx::query("update seller set status = 'suspended' where not house")
        .execute(app.db.pool())
        .await
        .unwrap();
    let wrong = [
        None,
        Some(format!("Bearer {ADMIN_TOKEN}")),
        Some(format!("Bearer {receipt_key}")),
        Some(format!("Bearer {key}")),
        Some(format!("Bearer {key}0")),
        Some("Bearer sk_".to_owned()),
        Some(key.clone()),
    ];

    for path in ["/v1/seller/me", "/v1/seller/listings"] {
        for authorization in &wrong {
            let mut request = app.client.request(Method::GET, app.url(path));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            let body = json_of(response, 401).await;
            assert_eq!(
                body["error"]["code"], "unauthorized",
                "{path} {authorization:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_invitation_is_a_400_and_makes_no_seller() {
    let app = spawn_app().await;
    let cases = [
        json!({ "name": " ", "contact_email": "ada@example.com" }),
        json!({ "name": "x".repeat(201), "contact_email": "ada@example.com" }),
        json!({ "name": "Ada", "contact_email": "not an email" }),
        json!({ "name": "Ada" }),
        json!({ "name": "Ada", "contact_email": "ada@example.com", "house": true }),
    ];
    for body in &cases {
        let refused = json_of(invite_with(&app, body).await, 400).await;
        assert_eq!(refused["error"]["code"], "invalid_request", "{body}");
    }
    let sellers: i64 = sqlx::query_scalar("select count(*) from seller")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sellers, 1, "the house alone");
}
