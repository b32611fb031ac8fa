//! Operations: `/healthz` is alive; `/readyz` reports readiness, mode and the Xano credential's
//! health (which turns `unauthorized` once a job meets an expired token, and heals; the fleet's only
//! credential refused keeps the instance ready, `xano_refusals.rs` drains one whose token alone is
//! refused); `/metrics` is
//! Prometheus text with requests by route pattern, purchases, pools, jobs, Xano and Stripe calls;
//! `/openapi.json` is an OpenAPI 3.1 document of every route the router serves; `/docs` renders
//! it; and every response carries a request id.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use sandbox::xano::TokenState;
use serde_json::Value;

use crate::errors::assert_envelope;
use crate::helpers::{TestApp, spawn_app};

async fn readiness(app: &TestApp) -> Value {
    let response = app.get("/readyz").await;
    assert_eq!(
        response.status(),
        200,
        "the only credential refused does not make us unready: sales go on from the pools"
    );
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_and_readyz_reports_ready_in_sandbox_mode_with_a_healthy_credential() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = readiness(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["mode"], "sandbox");
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["migrations"], "ok");
    assert_eq!(ready["xano_credential"], "healthy");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_shows_the_credential_unauthorized_once_a_job_meets_an_expired_token_and_healthy_again_after()
 {
    // Arrange
    let app = spawn_app().await;
    assert_eq!(readiness(&app).await["xano_credential"], "healthy");
    app.xano.set_access_token_state(TokenState::Expired);

    // Act: make the listings' reconciliation jobs (which call Xano) due now.
    let credential = || async {
        sqlx::query(
            "update job set due_at = now() where kind = 'reconcile_listing' and state = 'queued'",
        )
        .execute(app.db.pool())
        .await
        .unwrap();
        let ready = readiness(&app).await;
        (ready["xano_credential"] != "healthy").then_some(ready)
    };
    let refused = app
        .eventually(
            "the credential refused",
            Duration::from_secs(20),
            credential,
        )
        .await;

    // Assert
    assert_eq!(refused["xano_credential"], "unauthorized");
    assert_eq!(refused["status"], "ready");
    app.xano.set_access_token_state(TokenState::Valid);
    app.eventually(
        "the credential healthy again",
        Duration::from_secs(20),
        || async { (readiness(&app).await["xano_credential"] == "healthy").then_some(()) },
    )
    .await;
    app.stop().await;
}

/// The first sample line of `name` whose labels contain every one of `labels`.
fn sample<'a>(text: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    text.lines().find(|line| {
        line.starts_with(&format!("{name}{{")) && labels.iter().all(|l| line.contains(l))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_pattern_and_show_purchases_pools_jobs_and_upstream_calls()
{
    // Arrange
    let app = spawn_app().await;
    let (purchase, _, key) = app.start_purchase().await;
    assert_eq!(app.purchase(&purchase, &key).await.status(), 200);
    app.eventually("a Xano call", Duration::from_secs(20), || async {
        (!app.xano.calls().is_empty()).then_some(())
    })
    .await;

    // Act: the gauges are refreshed in the background (every 100 ms here), so wait for them.
    let metrics = format!("{}/metrics", app.metrics_address);
    let text = app
        .eventually("the gauges", Duration::from_secs(10), || async {
            let text = app
                .client
                .get(&metrics)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            sample(&text, "market_purchases", &[r#"status="fulfilled""#]).map(|_| text.clone())
        })
        .await;
    let response = app.client.get(&metrics).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let requests = "market_http_requests_total";
    assert!(
        sample(
            &text,
            requests,
            &[r#"route="/v1/checkout""#, r#"status="201""#]
        )
        .is_some(),
        "{text}"
    );
    assert!(
        sample(
            &text,
            requests,
            &[r#"route="/v1/purchases/{id}""#, r#"status="200""#]
        )
        .is_some()
    );
    assert!(
        !text.contains(&purchase),
        "concrete ids never become labels"
    );
    assert!(!text.contains(&key));
    assert!(sample(&text, "market_purchases", &[r#"status="pending""#]).is_some());
    assert!(sample(&text, "market_purchases", &[r#"status="fulfilled""#]).is_some());
    assert!(sample(&text, "market_pool_available", &[r#"slug="solo""#]).is_some());
    assert!(sample(&text, "market_jobs", &[r#"kind="replenish_pool""#]).is_some());
    assert!(sample(&text, "xano_calls_total", &["endpoint=", "outcome="]).is_some());
    let stripe = [r#"operation="create_checkout_session""#, r#"outcome="ok""#];
    assert!(sample(&text, "stripe_calls_total", &stripe).is_some());
    app.stop().await;
}

/// Found from outside (security issue, finding 5): `/metrics` answered on the public listener,
/// showing sales volumes to anyone, and each scrape ran aggregate queries over the purchase, job
/// and token tables. Before the fix this answered 200 with the gauges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_serves_no_metrics() {
    let app = spawn_app().await;

    let response = app.get("/metrics").await;

    assert_envelope(response, 404, "route_not_found").await;
    app.stop().await;
}

/// Found from outside (security issue, finding 6): a typed client generated from the document did
/// not compile (`list_listings` and `get_purchase` were each two operations' ids), and admin routes
/// answered 401, JSON bodies 415, that the document did not list. Before the fix the ids repeated
/// and those statuses were missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_ids_are_unique_and_every_operation_lists_the_errors_it_can_answer() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let mut ids = HashSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{id} used twice");
            let statuses = operation["responses"].as_object().unwrap();
            let lists = |status: &str| statuses.contains_key(status);
            assert!(lists("500") && lists("503"), "{method} {path}");
            if operation["security"].to_string().contains("admin_token") {
                assert!(lists("401"), "{method} {path}");
            }
            if operation["requestBody"].is_object() && path != "/v1/webhooks/stripe" {
                assert!(
                    lists("400") && lists("413") && lists("415"),
                    "{method} {path}"
                );
            }
            if path.contains('{') {
                assert!(lists("404"), "{method} {path}");
            }
        }
    }
    assert!(ids.contains("admin_list_listings") && ids.contains("list_listings"));
    app.stop().await;
}

/// Every operation the router serves, as `(method, OpenAPI path)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("get", "/v1/listings"),
    ("get", "/v1/listings/{canonical}"),
    ("post", "/v1/checkout"),
    ("get", "/v1/checkout/sessions/{session_id}"),
    ("get", "/v1/purchases/{id}"),
    ("post", "/v1/purchases/{id}/rotate"),
    ("post", "/v1/purchases/{id}/upgrade"),
    ("post", "/v1/portal/links"),
    ("post", "/v1/portal/sessions"),
    ("get", "/v1/portal/purchases"),
    ("delete", "/v1/portal/session"),
    ("post", "/v1/webhooks/stripe"),
    ("get", "/v1/admin/listings"),
    ("put", "/v1/admin/listings/{canonical}"),
    ("put", "/v1/admin/listings/{canonical}/tiers/{slug}"),
    ("post", "/v1/admin/tiers/{tier_id}/deactivate"),
    ("get", "/v1/admin/snippets"),
    ("get", "/v1/admin/purchases"),
    ("get", "/v1/admin/purchases/{id}"),
    ("post", "/v1/admin/purchases/{id}/revoke"),
    ("post", "/v1/admin/purchases/{id}/refund"),
    ("post", "/v1/admin/purchases/{id}/rotate"),
    ("get", "/v1/admin/pools"),
    ("get", "/v1/admin/jobs"),
    ("post", "/v1/admin/jobs/{job_id}/requeue"),
    ("get", "/v1/admin/health"),
    ("post", "/v1/admin/reconcile"),
    ("get", "/v1/admin/instances"),
    ("get", "/v1/admin/instances/{name}"),
    ("get", "/v1/admin/sellers"),
    ("post", "/v1/admin/sellers"),
    ("get", "/v1/seller/me"),
    ("get", "/v1/seller/listings"),
    ("get", "/v1/seller/xano"),
    ("put", "/v1/seller/xano"),
    ("put", "/v1/seller/listings/{canonical}"),
    ("put", "/v1/seller/listings/{canonical}/tiers/{slug}"),
    ("get", "/v1/seller/purchases"),
    ("get", "/v1/seller/purchases/{id}"),
    ("get", "/v1/seller/pools"),
    ("get", "/v1/seller/jobs"),
    ("post", "/v1/seller/jobs/{job_id}/requeue"),
    ("post", "/v1/seller/stripe/onboarding"),
    ("post", "/v1/seller/stripe/login_link"),
    ("put", "/v1/admin/sellers/{seller_id}/platform_fee"),
    ("get", "/v1/admin/sellers/{seller_id}/keys"),
    ("post", "/v1/admin/sellers/{seller_id}/keys"),
    ("delete", "/v1/admin/sellers/{seller_id}/keys/{key_id}"),
    ("post", "/v1/admin/sellers/{seller_id}/suspend"),
    ("post", "/v1/admin/sellers/{seller_id}/reactivate"),
    ("get", "/v1/seller/keys"),
    ("post", "/v1/seller/keys"),
    ("delete", "/v1/seller/keys/{key_id}"),
    ("get", "/v1/seller/reports/sales"),
    ("get", "/v1/admin/reports/sales"),
    ("get", "/v1/seller/webhooks"),
    ("post", "/v1/seller/webhooks"),
    ("get", "/v1/seller/webhooks/{endpoint_id}"),
    ("patch", "/v1/seller/webhooks/{endpoint_id}"),
    ("delete", "/v1/seller/webhooks/{endpoint_id}"),
    ("post", "/v1/seller/webhooks/{endpoint_id}/secret/roll"),
    ("get", "/v1/seller/webhooks/{endpoint_id}/deliveries"),
    ("get", "/v1/seller/webhooks/{endpoint_id}/attempts"),
    (
        "post",
        "/v1/seller/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ),
    ("post", "/v1/seller/webhooks/{endpoint_id}/replay"),
    ("get", "/v1/admin/webhooks"),
    ("post", "/v1/admin/webhooks"),
    ("get", "/v1/admin/webhooks/{endpoint_id}"),
    ("patch", "/v1/admin/webhooks/{endpoint_id}"),
    ("delete", "/v1/admin/webhooks/{endpoint_id}"),
    ("post", "/v1/admin/webhooks/{endpoint_id}/secret/roll"),
    ("get", "/v1/admin/webhooks/{endpoint_id}/deliveries"),
    ("get", "/v1/admin/webhooks/{endpoint_id}/attempts"),
    (
        "post",
        "/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ),
    ("post", "/v1/admin/webhooks/{endpoint_id}/replay"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_is_an_openapi_3_1_document_of_exactly_the_routes_the_router_serves() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/openapi.json").await;

    // Assert
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert!(schemes["receipt_key"].is_object() && schemes["admin_token"].is_object());
    let mut documented = HashSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let expected: HashSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);
    // And the router serves every documented operation (no credentials: nothing changes).
    for (method, path) in &expected {
        let concrete = path
            .replace("{canonical}", "auth-flow_01")
            .replace("{slug}", "solo")
            .replace("{session_id}", "cs_test_x")
            .replace("{name}", "x1")
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{tier_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{seller_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{job_id}", "1")
            .replace("{key_id}", "0123456789abcdef")
            .replace("{endpoint_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{delivery_id}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {concrete}");
        assert!(
            !body.contains("route_not_found"),
            "{method} {concrete}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_html_that_renders_the_openapi_document() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<html") && page.contains("/openapi.json"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_success_or_error_carries_its_own_request_id() {
    // Arrange
    let app = spawn_app().await;
    let requests = [
        (Method::GET, "/healthz", 200),
        (Method::GET, "/v1/listings", 200),
        (Method::GET, "/v1/nope", 404),
        (Method::DELETE, "/v1/listings", 405),
        (Method::POST, "/v1/checkout", 415),
        (Method::GET, "/v1/admin/pools", 401),
        (Method::POST, "/v1/webhooks/stripe", 400),
    ];
    let mut seen = HashSet::new();

    for (method, path, status) in requests {
        // Act
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        // Assert
        assert_eq!(response.status(), status, "{path}");
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no x-request-id"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        assert!(seen.insert(id), "{path}: ids are per request");
    }
    app.stop().await;
}
