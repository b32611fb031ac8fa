//! The API's description: the OpenAPI 3.1 document, assembled from the handlers' `#[utoipa::path]`
//! annotations, served at `/openapi.json`, and `/docs`, a page of this service's own that renders it
//! (no third-party script: the Content-Security-Policy allows none).
//!
//! It sits above [`crate::routes`] (it names every handler) and registers its own two routes, so
//! the route table never has to name it back.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::Code;
use crate::routes::admin;
use crate::routes::{
    catalog, checkout, ops, portal, purchases, reports, rotation, seller, seller_keys,
    seller_stripe, seller_webhooks, upgrade, webhooks,
};
use crate::state::AppState;
use crate::wire::webhook_events;

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
        rotation::rotate,
        upgrade::upgrade,
        portal::request_link,
        portal::open_session,
        portal::purchases,
        portal::end_session,
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
        rotation::admin_rotate,
        admin::ops::pools,
        admin::ops::jobs,
        admin::ops::requeue_job,
        admin::ops::credential_health,
        admin::ops::reconcile_now,
        admin::ops::instances,
        admin::ops::instance,
        admin::sellers::invite,
        admin::sellers::list,
        seller::me,
        seller::listings,
        seller::xano,
        seller::set_xano,
        seller::put_listing,
        seller::put_tier,
        seller::purchases,
        seller::purchase,
        seller::pools,
        seller::jobs,
        seller::requeue_job,
        seller_stripe::onboarding,
        seller_stripe::login_link,
        admin::sellers::set_fee,
        admin::sellers::list_keys,
        admin::sellers::issue_key,
        admin::sellers::revoke_key,
        admin::sellers::suspend,
        admin::sellers::reactivate,
        seller_keys::list,
        seller_keys::issue,
        seller_keys::revoke,
        seller_webhooks::list,
        seller_webhooks::create,
        seller_webhooks::get,
        seller_webhooks::update,
        seller_webhooks::delete,
        seller_webhooks::roll,
        seller_webhooks::deliveries,
        seller_webhooks::attempts,
        seller_webhooks::redeliver,
        seller_webhooks::replay,
        admin::webhooks::list,
        admin::webhooks::create,
        admin::webhooks::get,
        admin::webhooks::update,
        admin::webhooks::delete,
        admin::webhooks::roll,
        admin::webhooks::deliveries,
        admin::webhooks::attempts,
        admin::webhooks::redeliver,
        admin::webhooks::replay,
        reports::seller_sales,
        reports::admin_sales,
    ),
    // The bodies this service sends to webhook endpoints (the served document's `webhooks`).
    components(schemas(
        webhook_events::PurchaseEvent,
        webhook_events::TokenRevokedEvent,
        webhook_events::TokenRotatedEvent,
        webhook_events::PoolLowEvent,
        webhook_events::CredentialEvent,
        webhook_events::JobDeadEvent,
    )),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "catalog", description = "What is for sale"),
        (name = "checkout", description = "Buying"),
        (name = "purchases", description = "A buyer's purchase and token"),
        (name = "portal", description = "A buyer's purchases, signed in with a link by email"),
        (name = "webhooks", description = "Stripe's events in, and the events this service sends sellers (the `webhooks` section)"),
        (name = "admin", description = "Operators (admin token)"),
        (name = "seller", description = "A seller's own listings (seller API key)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The methods each route of the document takes, as an `Allow` header value (`GET, POST`), by
/// route pattern: what a 405 names. Routes outside the document (the pages and their assets) take
/// `GET` alone.
pub fn allowed_methods() -> HashMap<String, String> {
    ApiDoc::openapi()
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| {
            let methods: Vec<&str> = [
                ("GET", item.get.is_some()),
                ("PUT", item.put.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ]
            .into_iter()
            .filter_map(|(method, present)| present.then_some(method))
            .collect();
            (path, methods.join(", "))
        })
        .collect()
}

struct Security;

/// The errors any operation can meet beside its own, added to every operation in this one place so
/// that the document lists every status the API can return, each with the error envelope: a bad
/// body or parameter (400), a missing admin token (401), an unparseable id in the path (404), a
/// body too large (413) or not JSON (415), and our own failures (500, 503).
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                // A header is absent or a string: never JSON's null (which an `Option` would say).
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in == ParameterIn::Header
                        && let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema
                        && let SchemaType::Array(types) = &schema.schema_type
                        && types.contains(&Type::Null)
                    {
                        schema.schema_type = SchemaType::Type(Type::String);
                    }
                }
                let security = serde_json::to_string(&operation.security).unwrap_or_default();
                let admin = security.contains("admin_token");
                let seller = security.contains("seller_key");
                let body = operation.request_body.is_some();
                let parameters =
                    operation.parameters.iter().flatten().any(|p| {
                        matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Header)
                    });
                let mut add = |code: Code, what: &str| {
                    let status = code.status().as_u16().to_string();
                    operation
                        .responses
                        .responses
                        .entry(status)
                        .or_insert_with(|| error_response(code, what));
                };
                if body || parameters {
                    add(
                        Code::InvalidRequest,
                        "the request breaks a rule the message names",
                    );
                }
                if admin {
                    add(Code::Unauthorized, "no valid admin token");
                }
                if seller {
                    add(Code::Unauthorized, "no valid seller API key");
                }
                if path.contains('{') {
                    add(Code::NotFound, "no such resource");
                }
                if body {
                    add(Code::PayloadTooLarge, "the body is too large");
                    add(
                        Code::UnsupportedMediaType,
                        "the body is not application/json",
                    );
                }
                add(
                    Code::InternalError,
                    "a failure on our side, logged with the request id",
                );
                add(
                    Code::Unavailable,
                    "the database is unreachable or the instance overloaded",
                );
            }
        }
    }
}

fn error_response(code: Code, what: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(format!("`{}` (and kin): {what}", code.as_str()))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

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
            "portal_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a portal session token (`ps_…`) from POST /v1/portal/sessions",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "portal_cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "market_portal",
                    "the portal session cookie set by POST /v1/portal/sessions",
                ),
            )),
        );
        components.add_security_scheme(
            "seller_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a seller API key (`sk_…`), shown once at invitation"))
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
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    with_return_origins(&mut document, &state.return_origins);
    // utoipa has no `webhooks` (OpenAPI 3.1's section for what the API sends).
    document["webhooks"] = webhook_events::webhooks_section();
    HttpResponse::Ok().json(document)
}

/// The checkout's return URLs must be on this deployment's public URL or an allowed storefront
/// origin: the served document says which, as a pattern on both fields.
fn with_return_origins(document: &mut serde_json::Value, origins: &[String]) {
    let escaped: Vec<String> = origins
        .iter()
        .map(|origin| {
            origin
                .chars()
                .flat_map(|c| {
                    let special = ".*+?^${}()|[]\\/".contains(c);
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    let pattern = format!("^({})/", escaped.join("|"));
    let properties = &mut document["components"]["schemas"]["CheckoutRequest"]["properties"];
    for field in ["success_url", "cancel_url"] {
        if let Some(property) = properties.get_mut(field).and_then(|p| p.as_object_mut()) {
            property.insert("pattern".to_owned(), pattern.clone().into());
        }
    }
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
