//! OWASP API top-ten checks on the public surface: one buyer's receipt key never opens another's
//! purchase (BOLA: a 404 identical to "no such purchase", with no token bytes); ids are random v4
//! UUIDs and receipt keys carry 256 bits, stored only hashed; a checkout body cannot set what is
//! charged or minted (mass assignment); every admin route refuses a missing or wrong token; CORS
//! answers only allowed origins; return URLs off the allowed origins are refused (open redirect).

use market_core::receipt::ReceiptKey;
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::errors::assert_envelope;
use crate::helpers::{ADMIN_TOKEN, CANONICAL, Options, TestApp, spawn_app, spawn_app_with};
use crate::ops::ROUTES;

const SHOP: &str = "https://shop.example.com";
const EVIL: &str = "https://evil.example";

/// A purchase paid and fulfilled: `(purchase, receipt_key, token)`.
async fn bought(app: &TestApp) -> (String, String, String) {
    let (purchase, checkout_url, key) = app.start_purchase().await;
    app.stripe.pay(&TestApp::session_of(&checkout_url)).unwrap();
    let token = app.token_of(&purchase, &key).await;
    (purchase, key, token)
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_as_key_on_buyer_bs_purchase_answers_404_without_token_bytes_exactly_like_an_unknown_id()
 {
    // Arrange
    let app = spawn_app().await;
    let (_, key_a, token_a) = bought(&app).await;
    let (purchase_b, key_b, token_b) = bought(&app).await;
    let path = format!("/v1/purchases/{purchase_b}");
    let unknown = app
        .purchase(&uuid::Uuid::new_v4().to_string(), &key_a)
        .await;
    assert_eq!(unknown.status(), 404);
    let reference = unknown.text().await.unwrap();
    let last = if key_b.ends_with('0') { '1' } else { '0' };
    let flipped = format!("{}{last}", &key_b[..key_b.len() - 1]);
    assert_ne!(flipped, key_b);
    let authorizations = [
        Some(format!("Bearer {key_a}")),
        None,
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {flipped}")),
        Some(format!("Bearer {}", key_b.to_uppercase())),
        Some(format!("Bearer {key_b}x")),
        Some(format!("Basic {key_b}")),
        Some(key_b.clone()),
        Some(format!("Bearer {ADMIN_TOKEN}")),
    ];

    for authorization in authorizations {
        let mut request = app.client.get(app.url(&path));
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        // Act
        let response = request.send().await.unwrap();
        // Assert
        assert_eq!(response.status(), 404, "{authorization:?}");
        let text = response.text().await.unwrap();
        assert_eq!(text, reference, "{authorization:?}: indistinguishable");
        assert!(!text.contains(&token_a) && !text.contains(&token_b));
    }
    let owner: Value = app
        .purchase(&purchase_b, &key_b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        owner["token"]["value"],
        token_b.as_str(),
        "B's own key works"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_ids_are_random_v4_uuids_and_receipt_keys_carry_256_bits_stored_only_hashed() {
    // Arrange
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();

    for _ in 0..20 {
        // Act
        let (purchase, _, key) = app.start_purchase().await;
        // Assert
        let id = uuid::Uuid::parse_str(&purchase).unwrap();
        assert_eq!(id.get_version_num(), 4, "{purchase}");
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let hex = key.strip_prefix("rk_").unwrap();
        assert_eq!(hex.len(), 64, "256 bits");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let stored: Vec<u8> =
            sqlx::query_scalar("select receipt_hash from purchase where purchase_id = $1::uuid")
                .bind(&purchase)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(stored, ReceiptKey::presented(&key).hash().to_vec());
        assert!(ids.insert(id) && keys.insert(key));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_carrying_amount_price_or_max_installs_is_refused_and_cannot_change_what_is_charged_or_minted()
 {
    // Arrange
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let injected = [
        ("amount", json!(1)),
        ("price", json!({ "amount": 1, "currency": "usd" })),
        ("max_installs", json!(9999)),
        ("currency", json!("jpy")),
        ("status", json!("fulfilled")),
        ("purchase_id", json!(uuid::Uuid::new_v4())),
    ];

    for (field, value) in injected {
        let mut body = json!({ "tier_id": tier });
        body[field] = value;
        // Act
        let response = app.checkout(&body).await;
        // Assert
        let error = assert_envelope(response, 400, "invalid_request").await;
        assert!(error["error"]["message"].as_str().unwrap().contains(field));
    }
    assert_eq!(count(&app, "select count(*) from purchase").await, 0);
    assert!(app.stripe.sessions().is_empty(), "no session was created");

    // A normal checkout is charged the tier's server price and mints the tier's max_installs.
    let (purchase, key, token) = bought(&app).await;
    let session = app.stripe.sessions().pop().unwrap();
    assert_eq!(
        session.client_reference_id.as_deref(),
        Some(purchase.as_str())
    );
    assert_eq!(
        (session.amount_total, session.currency.as_str()),
        (1900, "usd")
    );
    let minted = app
        .xano
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token);
    assert_eq!(minted.unwrap().max_installs, 5);
    let receipt: Value = app.purchase(&purchase, &key).await.json().await.unwrap();
    assert_eq!(
        receipt["price"],
        json!({ "amount": 1900, "currency": "usd" })
    );
    assert_eq!(receipt["token"]["max_installs"], 5);
    app.stop().await;
}

/// A valid body for an admin write, so that only the credential can be what is refused.
fn body_for(template: &str) -> Option<Value> {
    match template.rsplit('/').next() {
        Some("{slug}") => Some(
            json!({ "name": "x", "price": { "amount": 1, "currency": "usd" }, "max_installs": 999 }),
        ),
        Some("{canonical}") => Some(json!({ "title": "pwned", "description": "" })),
        Some("platform_fee") => Some(json!({ "platform_fee_bps": 0 })),
        Some("webhooks") => Some(json!({ "url": "https://hooks.example.com/pwned" })),
        Some("{endpoint_id}") => Some(json!({ "enabled": false })),
        Some("replay") => {
            Some(json!({ "from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z" }))
        }
        _ => None,
    }
}

/// Ada, a seller, and her one key: `(key, seller_id, key_id)`. Real ids, so that a refused
/// suspension or revocation would have something to change.
async fn ada_with_her_key(app: &TestApp) -> (String, String, String) {
    let key = crate::sellers::invite(app, "Ada", "ada@example.com").await;
    let (seller_id, key_id): (String, String) = sqlx::query_as(
        "select seller_id::text, encode(substr(key_hash, 1, 8), 'hex') from seller_key",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    (key, seller_id, key_id)
}

/// Every credential that is not the admin token: none, malformed, near misses, another role's.
fn wrong_credentials(receipt_key: &str, seller_key: &str) -> Vec<Option<String>> {
    vec![
        None,
        Some("Bearer wrong".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!("Bearer {}", ADMIN_TOKEN.to_uppercase())),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(ADMIN_TOKEN.to_owned()),
        Some(format!("Bearer {receipt_key}")),
        Some(format!("Bearer {seller_key}")),
    ]
}

/// Every webhook endpoint as one comparable string, and how many deliveries are pending.
async fn webhooks_snapshot(app: &TestApp) -> (String, i64) {
    let endpoints = sqlx::query_scalar(
        "select count(*) || ':' || coalesce(string_agg(state || url, ','), '') from webhook_endpoint",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let pending = count(
        app,
        "select count(*) from webhook_delivery where state = 'pending'",
    )
    .await;
    (endpoints, pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_refuses_a_missing_or_wrong_token_with_401_and_changes_nothing() {
    // Arrange: every admin operation the API documents (`ops::ROUTES` is checked against it).
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let (purchase, receipt_key, _) = bought(&app).await;
    let dead_job: i64 = sqlx::query_scalar(
        "insert into job (kind, subject, state, attempt, finished_at)
         values ('delete_token', '999999', 'dead', 12, now()) returning job_id",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let (seller_key, seller_id, key_id) = ada_with_her_key(&app).await;
    let (endpoint, delivery) =
        crate::seller_isolation::endpoint_with_a_delivery(&app, &seller_id).await;
    let fill = |template: &str| {
        template
            .replace("{job_id}", &dead_job.to_string())
            .replace("{canonical}", CANONICAL)
            .replace("{slug}", "solo")
            .replace("{tier_id}", &tier)
            .replace("{id}", &purchase)
            .replace("{name}", "x1")
            .replace("{seller_id}", &seller_id)
            .replace("{key_id}", &key_id)
            .replace("{endpoint_id}", &endpoint)
            .replace("{delivery_id}", &delivery)
    };
    let admin_routes: Vec<_> = ROUTES
        .iter()
        .filter(|(_, template)| template.starts_with("/v1/admin"))
        .collect();
    assert_eq!(admin_routes.len(), 36);
    let wrong = wrong_credentials(&receipt_key, &seller_key);
    let sellers_before = count(&app, "select count(*) from seller").await;
    let by_admins = "select count(*) from audit_event where actor like 'admin:%'";
    let audit_before = count(&app, by_admins).await;
    let tiers_before = count(&app, "select count(*) from tier where active").await;
    let webhooks_before = webhooks_snapshot(&app).await;

    for (method, template) in admin_routes {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let path = fill(template);
        for authorization in &wrong {
            let mut request = app.client.request(method.clone(), app.url(&path));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            if let Some(body) = body_for(template) {
                request = request.json(&body);
            }
            // Act
            let response = request.send().await.unwrap();
            // Assert
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {authorization:?}"
            );
            assert_envelope(response, 401, "unauthorized").await;
        }
    }
    assert_eq!(count(&app, by_admins).await, audit_before);
    assert_eq!(
        count(&app, "select count(*) from seller").await,
        sellers_before
    );
    let live_keys = "select count(*) from seller_key join seller using (seller_id)
                     where revoked_at is null and status = 'active'";
    assert_eq!(count(&app, live_keys).await, 1, "no key issued or revoked");
    assert_eq!(
        count(&app, "select count(*) from job where state = 'dead'").await,
        1,
        "a refused requeue left the dead job dead"
    );
    assert_eq!(
        count(&app, "select count(*) from tier where active").await,
        tiers_before
    );
    assert_eq!(
        webhooks_snapshot(&app).await,
        webhooks_before,
        "no endpoint made or changed, no delivery sent again"
    );
    assert!(
        !app.stripe.calls().iter().any(|c| c.path == "/v1/refunds"),
        "no refund reached Stripe"
    );
    let status: String =
        sqlx::query_scalar("select status::text from purchase where purchase_id = $1::uuid")
            .bind(&purchase)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(status, "fulfilled");
    assert_eq!(
        app.admin_get("/v1/admin/pools").await.status(),
        200,
        "the right token works"
    );
    app.stop().await;
}

async fn with_cors() -> TestApp {
    spawn_app_with(Options {
        cors_origins: vec![Url::parse(SHOP).unwrap()],
        ..Options::default()
    })
    .await
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_cors_headers_on_preflight_and_get_and_a_foreign_origin_does_not() {
    // Arrange
    let app = with_cors().await;
    let preflight = |origin: &str| {
        app.client
            .request(Method::OPTIONS, app.url("/v1/checkout"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
    };
    let get = |origin: &str| {
        app.client
            .get(app.url("/v1/listings"))
            .header("origin", origin)
            .send()
    };

    // Act
    let allowed_preflight = preflight(SHOP).await.unwrap();
    let allowed_get = get(SHOP).await.unwrap();
    let foreign_preflight = preflight(EVIL).await.unwrap();
    let foreign_get = get(EVIL).await.unwrap();

    // Assert
    assert!(allowed_preflight.status().is_success());
    assert_eq!(
        header(&allowed_preflight, "access-control-allow-origin").as_deref(),
        Some(SHOP)
    );
    let methods = header(&allowed_preflight, "access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = header(&allowed_preflight, "access-control-allow-headers").unwrap();
    assert!(
        headers.to_lowercase().contains("idempotency-key"),
        "{headers}"
    );
    assert_eq!(allowed_get.status(), 200);
    assert_eq!(
        header(&allowed_get, "access-control-allow-origin").as_deref(),
        Some(SHOP)
    );
    assert!(header(&allowed_get, "vary").is_some_and(|v| v.to_lowercase().contains("origin")));
    for foreign in [foreign_preflight, foreign_get] {
        assert!(!foreign.status().is_server_error());
        assert!(header(&foreign, "access-control-allow-origin").is_none());
        assert!(header(&foreign, "access-control-allow-methods").is_none());
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_urls_off_the_allowed_origins_are_refused_and_allowed_ones_reach_stripe() {
    // Arrange
    let app = with_cors().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let foreign = [
        format!("{EVIL}/thanks"),
        "http://shop.example.com/thanks".to_owned(),
        "https://shop.example.com.evil.example/thanks".to_owned(),
        "https://shop.example.com:8443/thanks".to_owned(),
        "https://user@evil.example/thanks".to_owned(),
        "javascript:alert(document.cookie)".to_owned(),
        "data:text/html,<script>alert(1)</script>".to_owned(),
        "//evil.example/thanks".to_owned(),
        "/relative".to_owned(),
    ];

    for url in &foreign {
        for field in ["success_url", "cancel_url"] {
            // Act
            let response = app.checkout(&json!({ "tier_id": tier, field: url })).await;
            // Assert
            assert_envelope(response, 400, "invalid_request").await;
        }
    }
    assert_eq!(count(&app, "select count(*) from purchase").await, 0);
    assert!(app.stripe.sessions().is_empty());

    let response = app
        .checkout(&json!({
            "tier_id": tier,
            "success_url": format!("{SHOP}/thanks?order=1"),
            "cancel_url": format!("{SHOP}/cart"),
        }))
        .await;
    assert_eq!(response.status(), 201);
    let session = app.stripe.sessions().pop().unwrap();
    assert_eq!(
        session.success_url.as_deref(),
        Some("https://shop.example.com/thanks?order=1&session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        session.cancel_url.as_deref(),
        Some("https://shop.example.com/cart")
    );
    app.stop().await;
}
