//! The error envelope: every client error — unknown route, wrong method, wrong content type,
//! malformed JSON, bad path or query, unknown or inactive tier, oversized body — answers
//! `{"error": {"code", "message"}}` with the right 4xx status and a stable code; and no hostile
//! input (huge, unicode, control characters) makes the service answer 5xx.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, CANONICAL, TestApp, spawn_app};

/// Asserts `response` is `status` with exactly the envelope and `code`; returns the body.
pub async fn assert_envelope(response: Response, status: u16, code: &str) -> Value {
    let url = response.url().path().to_owned();
    assert_eq!(response.status(), status, "status of {url}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{url}: content type {content_type:?}"
    );
    let body: Value = response.json().await.unwrap();
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{url}: {body}"));
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "{url}: only `error`: {body}"
    );
    assert_eq!(error.len(), 2, "{url}: only code and message: {body}");
    assert_eq!(error["code"], code, "{url}: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{url}: {body}"
    );
    body
}

fn request(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.client.request(method, app.url(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_404_route_not_found_in_the_envelope() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/v1/nope"),
        (Method::POST, "/nope"),
        (Method::GET, "/v1/listings/auth-flow_01/extra"),
        (Method::DELETE, "/v2/checkout"),
    ] {
        // Act
        let response = request(&app, method, path).send().await.unwrap();
        // Assert
        assert_envelope(response, 404, "route_not_found").await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_on_a_known_route_answers_405_method_not_allowed_in_the_envelope() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::GET, "/v1/checkout", "POST"),
        (Method::DELETE, "/v1/listings", "GET"),
        (
            Method::POST,
            "/v1/purchases/00000000-0000-4000-8000-000000000000",
            "GET",
        ),
        (Method::GET, "/v1/webhooks/stripe", "POST"),
        (Method::PUT, "/healthz", "GET"),
        (Method::DELETE, "/v1/admin/purchases", "GET"),
        (Method::POST, "/docs", "GET"),
    ] {
        let response = request(&app, method, path).send().await.unwrap();
        // RFC 9110: a 405 names the methods the route takes (found by schemathesis).
        assert_eq!(response.headers()["allow"], allow, "{path}");
        assert_envelope(response, 405, "method_not_allowed").await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_body_that_is_not_declared_json_answers_415() {
    // Arrange
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let body = json!({ "tier_id": tier }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut builder = request(&app, Method::POST, "/v1/checkout").body(body.clone());
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        // Act
        let response = builder.send().await.unwrap();
        // Assert
        assert_envelope(response, 415, "unsupported_media_type").await;
    }
    assert_eq!(purchases(&app).await, 0, "nothing was created");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_answers_400_malformed_json_and_ill_typed_json_400_invalid_request() {
    let app = spawn_app().await;
    for body in [
        "{\"tier_id\":",
        "not json",
        "",
        "{\"tier_id\" 1}",
        "{\"tier_id\": \"00000000-0000-4000-8000-000000000000\"} trailing",
    ] {
        let response = request(&app, Method::POST, "/v1/checkout")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_envelope(response, 400, "malformed_json").await;
    }
    for body in [
        json!({ "tier_id": 5 }),
        json!({ "tier_id": "not-a-uuid" }),
        json!({}),
        json!([]),
        json!({ "tier_id": uuid::Uuid::new_v4(), "email": 7 }),
    ] {
        let response = app.checkout(&body).await;
        assert_envelope(response, 400, "invalid_request").await;
    }
    assert_eq!(purchases(&app).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_in_a_path_answers_404_not_found() {
    let app = spawn_app().await;
    let public = request(&app, Method::GET, "/v1/purchases/not-a-uuid")
        .bearer_auth("rk_whatever")
        .send()
        .await
        .unwrap();
    assert_envelope(public, 404, "not_found").await;
    for (method, path) in [
        (Method::GET, "/v1/admin/purchases/not-a-uuid"),
        (Method::POST, "/v1/admin/purchases/123/revoke"),
        (Method::POST, "/v1/admin/tiers/zzzz/deactivate"),
    ] {
        let response = request(&app, method, path)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_envelope(response, 404, "not_found").await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_query_string_answers_400_with_a_stable_code() {
    let app = spawn_app().await;
    for (query, code) in [
        ("limit=abc", "invalid_request"),
        ("limit=0", "invalid_request"),
        ("limit=201", "invalid_request"),
        ("limit=99999999999999999999999", "invalid_request"),
        ("status=bogus", "invalid_request"),
        ("tier_id=not-a-uuid", "invalid_request"),
        ("unknown=1", "invalid_request"),
        ("cursor=garbage", "invalid_cursor"),
        (
            "cursor=9223372036854775807.00000000000000000000000000000000",
            "invalid_cursor",
        ),
    ] {
        let response = app.admin_get(&format!("/v1/admin/purchases?{query}")).await;
        assert_envelope(response, 400, code).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tier_answers_404_and_an_inactive_tier_409_tier_not_on_sale() {
    // Arrange
    let app = spawn_app().await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let deactivated = app
        .admin_post(&format!("/v1/admin/tiers/{agency}/deactivate"))
        .await;
    assert!(
        deactivated.status().is_success(),
        "{}",
        deactivated.status()
    );

    // Act
    let unknown = app
        .checkout(&json!({ "tier_id": uuid::Uuid::new_v4() }))
        .await;
    let inactive = app.checkout(&json!({ "tier_id": agency })).await;

    // Assert
    assert_envelope(unknown, 404, "not_found").await;
    assert_envelope(inactive, 409, "tier_not_on_sale").await;
    assert_eq!(purchases(&app).await, 0);
    assert!(app.stripe.sessions().is_empty(), "Stripe was not asked");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_checkout_body_answers_413_payload_too_large() {
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let body = json!({ "tier_id": tier, "email": "a".repeat(100 * 1024) });
    let response = app.checkout(&body).await;
    assert_envelope(response, 413, "payload_too_large").await;
    assert_eq!(purchases(&app).await, 0);
    app.stop().await;
}

/// One hostile request: what it is, and how to send it.
struct Hostile {
    what: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Option<Vec<u8>>,
    admin: bool,
    /// Legitimate, if unusual: any status but a 5xx will do.
    may_succeed: bool,
}

fn hostile(what: &'static str, method: Method, path: impl Into<String>) -> Hostile {
    Hostile {
        what,
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        admin: false,
        may_succeed: false,
    }
}

impl Hostile {
    fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("content-type", HeaderValue::from_static("application/json"))
    }

    fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    fn may_succeed(mut self) -> Self {
        self.may_succeed = true;
        self
    }
}

/// The hostile requests, most of them malformed in a way the service must refuse with a 4xx.
fn hostile_cases(tier: &str) -> Vec<Hostile> {
    let checkout = |email: &str| json!({ "tier_id": tier, "email": email }).to_string();
    let bytes = |b: &[u8]| HeaderValue::from_bytes(b).unwrap();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    vec![
        hostile("8 kB listing", Method::GET, format!("/v1/listings/{}", "a".repeat(8 * 1024))),
        hostile("NUL canonical", Method::GET, "/v1/listings/%00"),
        hostile("CRLF canonical", Method::GET, "/v1/listings/a%0d%0aSet-Cookie:%20x=1"),
        hostile("invalid UTF-8 canonical", Method::GET, "/v1/listings/%FF%FE"),
        hostile("RTL-override canonical", Method::GET, "/v1/listings/%E2%80%AEauth"),
        hostile("unicode canonical", Method::GET, "/v1/listings/ünïcødé-🦀"),
        hostile("NUL purchase id", Method::GET, "/v1/purchases/%00")
            .header("authorization", HeaderValue::from_static("Bearer rk_x")),
        hostile("8 kB purchase id", Method::GET, format!("/v1/purchases/{}", "9".repeat(8 * 1024))),
        hostile("16 kB receipt key", Method::GET, "/v1/purchases/00000000-0000-4000-8000-000000000000")
            .header("authorization", bytes(format!("Bearer {}", "k".repeat(16 * 1024)).as_bytes())),
        hostile("non-ASCII receipt key", Method::GET, "/v1/purchases/00000000-0000-4000-8000-000000000000")
            .header("authorization", bytes(b"Bearer \xff\xfe\x80")),
        hostile("NUL session id", Method::GET, "/v1/checkout/sessions/cs_test_%00"),
        hostile("8 kB session id", Method::GET, format!("/v1/checkout/sessions/cs_{}", "a".repeat(8 * 1024))),
        hostile("unicode session id", Method::GET, "/v1/checkout/sessions/cs_tést_ü"),
        hostile("NUL in email", Method::POST, "/v1/checkout").json(checkout("a\u{0}b@example.com")),
        hostile("control chars in email", Method::POST, "/v1/checkout").json(checkout("a\u{1b}[31m@example.com")),
        hostile("unicode email", Method::POST, "/v1/checkout").json(checkout("ünï@exämple.com")).may_succeed(),
        hostile("10 kB email", Method::POST, "/v1/checkout").json(checkout(&format!("{}@example.com", "a".repeat(10_000)))),
        hostile("deeply nested JSON", Method::POST, "/v1/checkout").json(deep),
        hostile("invalid UTF-8 JSON", Method::POST, "/v1/checkout").json(b"{\"tier_id\": \"\xff\xfe\"}".to_vec()),
        hostile("javascript: success_url", Method::POST, "/v1/checkout")
            .json(json!({ "tier_id": tier, "success_url": "javascript:alert(1)" }).to_string()),
        hostile("NUL in success_url", Method::POST, "/v1/checkout")
            .json(json!({ "tier_id": tier, "success_url": "http://127.0.0.1/\u{0}" }).to_string()),
        hostile("10 kB Idempotency-Key", Method::POST, "/v1/checkout")
            .json(checkout("a@example.com"))
            .header("idempotency-key", bytes("k".repeat(10 * 1024).as_bytes())),
        hostile("non-ASCII Idempotency-Key", Method::POST, "/v1/checkout")
            .json(checkout("a@example.com"))
            .header("idempotency-key", bytes(b"\xff\xfe")),
        hostile("garbage signature", Method::POST, "/v1/webhooks/stripe")
            .json("{}")
            .header("stripe-signature", bytes(b"t=\xff,v1=\x80,\t,,=,t=-99999999999999999999")),
        hostile("invalid UTF-8 webhook body", Method::POST, "/v1/webhooks/stripe")
            .json(b"\xff\xfe{".to_vec())
            .header("stripe-signature", HeaderValue::from_static("t=1,v1=00")),
        hostile("NUL email filter", Method::GET, "/v1/admin/purchases?email=%00").admin(),
        hostile("unicode email filter", Method::GET, "/v1/admin/purchases?email=%F0%9F%A6%80").admin().may_succeed(),
        hostile("ancient cursor", Method::GET, "/v1/admin/purchases?cursor=-9223372036854775807.00000000000000000000000000000000").admin(),
        hostile("NUL instance", Method::GET, "/v1/admin/instances/%00").admin(),
        hostile("8 kB instance", Method::GET, format!("/v1/admin/instances/{}", "x".repeat(8 * 1024))).admin(),
        hostile("NUL listing (admin)", Method::PUT, "/v1/admin/listings/%00")
            .json(json!({ "title": "t\u{0}", "description": "d" }).to_string())
            .admin(),
        hostile("NUL listing title", Method::PUT, "/v1/admin/listings/auth-flow_01")
            .json(json!({ "title": "t\u{0}", "description": "d\u{0}" }).to_string())
            .admin(),
        hostile("NUL tier name", Method::PUT, "/v1/admin/listings/auth-flow_01/tiers/solo")
            .json(json!({ "name": "\u{0}", "price": { "amount": 1900, "currency": "usd" }, "max_installs": 5 }).to_string())
            .admin(),
        hostile("unicode tier slug", Method::PUT, "/v1/admin/listings/auth-flow_01/tiers/ünï")
            .json(json!({ "name": "\u{0}", "price": -1, "currency": "ü", "max_installs": -5 }).to_string())
            .admin(),
        hostile("huge numbers in a tier", Method::PUT, "/v1/admin/listings/auth-flow_01/tiers/solo")
            .json(r#"{"name":"x","price":1e400,"currency":"usd","max_installs":99999999999999999999}"#)
            .admin(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_client_input_yields_a_server_error() {
    // Arrange
    let app = spawn_app().await;
    let tier = app.tier_id(CANONICAL, "solo").await;
    let cases = hostile_cases(&tier);

    let mut failures = Vec::new();
    for case in cases {
        let mut builder = request(&app, case.method.clone(), &case.path);
        for (name, value) in &case.headers {
            builder = builder.header(HeaderName::from_static(name), value.clone());
        }
        if case.admin {
            builder = builder.bearer_auth(ADMIN_TOKEN);
        }
        if let Some(body) = &case.body {
            builder = builder.body(body.clone());
        }
        // Act
        let response = builder.send().await.unwrap();
        // Assert: a client error in the envelope, never a 5xx.
        let status = response.status();
        let body = response.text().await.unwrap();
        let enveloped = serde_json::from_str::<Value>(&body)
            .is_ok_and(|parsed| parsed["error"]["code"].is_string());
        let acceptable = if case.may_succeed {
            !status.is_server_error() && (status.is_success() || enveloped)
        } else {
            status.is_client_error() && enveloped
        };
        if !acceptable {
            failures.push(format!("{}: {status} {body}", case.what));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Headers larger than the server accepts are refused before the application, never with a 5xx.
    let huge = app
        .client
        .get(app.url("/v1/listings"))
        .header("x-junk", "j".repeat(64 * 1024))
        .send()
        .await;
    if let Ok(response) = huge {
        assert!(
            !response.status().is_server_error(),
            "{}",
            response.status()
        );
    }
    assert!(
        app.get("/healthz").await.status().is_success(),
        "still serving"
    );
    app.stop().await;
}

async fn purchases(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from purchase")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}
