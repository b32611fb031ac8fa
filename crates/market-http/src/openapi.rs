//! The API's description: the OpenAPI 3.1 document, assembled from the handlers' `#[utoipa::path]`
//! annotations, served at `/openapi.json`, and `/docs`, a page of this service's own that renders it
//! (no third-party script: the Content-Security-Policy allows none).
//!
//! It sits above [`crate::routes`] (it names every handler) and registers its own two routes, so
//! the route table never has to name it back.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::admin;
use crate::routes::{catalog, checkout, ops, purchases, webhooks};

/// The document's routes: the JSON, and the page (with its two assets) that renders it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs_page)))
        .service(web::resource("/static/docs.js").route(web::get().to(docs_js)))
        .service(web::resource("/static/docs.css").route(web::get().to(docs_css)));
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "market",
        description = "Sell Xano snippets in priced tiers: Stripe Checkout in, one Xano install token per paid purchase out.\n\nErrors always have the shape `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`; codes are stable. Money is in the currency's minor unit.",
    ),
    paths(
        catalog::list_listings,
        catalog::get_listing,
        checkout::create_checkout,
        checkout::checkout_session,
        purchases::get_purchase,
        webhooks::stripe_webhook,
        ops::healthz,
        ops::readyz,
        openapi_json,
        admin::catalog::list_listings,
        admin::catalog::put_listing,
        admin::catalog::put_tier,
        admin::catalog::deactivate_tier,
        admin::catalog::list_snippets,
        admin::purchases::list_purchases,
        admin::purchases::get_purchase,
        admin::purchases::revoke_purchase,
        admin::purchases::refund_purchase,
        admin::ops::pools,
        admin::ops::jobs,
        admin::ops::credential_health,
        admin::ops::reconcile_now,
        admin::ops::instances,
        admin::ops::instance,
    ),
    modifiers(&Security),
    tags(
        (name = "catalog", description = "What is for sale"),
        (name = "checkout", description = "Buying"),
        (name = "purchases", description = "A buyer's purchase and token"),
        (name = "webhooks", description = "Stripe's events"),
        (name = "admin", description = "Operators (admin token)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "receipt_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the receipt key from checkout"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an admin token"))
                    .build(),
            ),
        );
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The page that renders the document: HTML, CSS and JavaScript of this service's own (compiled
/// in), so it works offline and loads nothing from anywhere else.
pub async fn docs_page() -> HttpResponse {
    asset("text/html; charset=utf-8", DOCS_HTML)
}

async fn docs_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", DOCS_JS)
}

async fn docs_css() -> HttpResponse {
    asset("text/css; charset=utf-8", DOCS_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

const DOCS_HTML: &str = include_str!("../static/docs.html");
const DOCS_JS: &str = include_str!("../static/docs.js");
const DOCS_CSS: &str = include_str!("../static/docs.css");
