//! Every route of the service, in one table (the API document adds its own two, in
//! [`crate::openapi`]).
//!
//! Handlers parse (path, query, body into domain values; [`crate::extract`] for headers), call one
//! `market-core` function, and map its answer to a [`crate::wire`] body; they never open a
//! transaction.
//!
//! The public endpoints carry a per-client rate limit each (`crate::limits`); the webhook and
//! admin routes do not (Stripe's senders, and operators with a token).
//!
//! Routes are registered as resources (`web::resource(path).route(method)`), so a known path called
//! with another method answers 405, and an unknown path 404, both in the error envelope.

pub mod admin;
pub mod catalog;
pub mod checkout;
pub mod ops;
pub mod portal;
pub mod purchases;
pub mod rotation;
pub mod sandbox;
pub mod seller;
pub mod storefront;
pub mod upgrade;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::web;

use crate::error::ApiError;
use crate::limits::{self, Class};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(storefront::index)))
        .service(web::resource("/static/app.css").route(web::get().to(storefront::css)))
        .service(web::resource("/static/app.js").route(web::get().to(storefront::js)))
        .service(web::resource("/static/portal.js").route(web::get().to(storefront::portal_js)))
        .service(
            web::resource("/sandbox/mail")
                .wrap(from_fn(limit_catalog))
                .route(web::get().to(sandbox::mail)),
        )
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(
            web::resource("/v1/listings")
                .wrap(from_fn(limit_catalog))
                .route(web::get().to(catalog::list_listings)),
        )
        .service(
            web::resource("/v1/listings/{canonical}")
                .wrap(from_fn(limit_catalog))
                .route(web::get().to(catalog::get_listing)),
        )
        .service(
            web::resource("/v1/checkout")
                .wrap(from_fn(limit_checkout))
                .route(web::post().to(checkout::create_checkout)),
        )
        .service(
            web::resource("/v1/checkout/sessions/{session_id}")
                .wrap(from_fn(limit_success_page))
                .route(web::get().to(checkout::checkout_session)),
        )
        .service(
            web::resource("/v1/purchases/{id}")
                .wrap(from_fn(limit_purchase_read))
                .route(web::get().to(purchases::get_purchase)),
        )
        .service(
            web::resource("/v1/purchases/{id}/rotate")
                .wrap(from_fn(limit_checkout))
                .route(web::post().to(rotation::rotate)),
        )
        .service(
            web::resource("/v1/purchases/{id}/upgrade")
                .wrap(from_fn(limit_checkout))
                .route(web::post().to(upgrade::upgrade)),
        )
        .service(
            web::resource("/v1/admin/purchases/{id}/rotate")
                .route(web::post().to(rotation::admin_rotate)),
        )
        .service(
            web::resource("/v1/portal/links")
                .wrap(from_fn(limit_portal))
                .route(web::post().to(portal::request_link)),
        )
        .service(
            web::resource("/v1/portal/sessions")
                .wrap(from_fn(limit_portal))
                .route(web::post().to(portal::open_session)),
        )
        .service(
            web::resource("/v1/portal/purchases")
                .wrap(from_fn(limit_purchase_read))
                .route(web::get().to(portal::purchases)),
        )
        .service(
            web::resource("/v1/portal/session")
                .wrap(from_fn(limit_portal))
                .route(web::delete().to(portal::end_session)),
        )
        .service(
            web::resource("/v1/seller/me")
                .wrap(from_fn(limit_purchase_read))
                .route(web::get().to(seller::me)),
        )
        .service(
            web::resource("/v1/seller/xano")
                .wrap(from_fn(limit_portal))
                .route(web::get().to(seller::xano))
                .route(web::put().to(seller::set_xano)),
        )
        .service(
            web::resource("/v1/seller/listings")
                .wrap(from_fn(limit_purchase_read))
                .route(web::get().to(seller::listings)),
        )
        .service(
            web::resource("/v1/webhooks/stripe")
                // The size limit is checked while the body is read, before the handler runs.
                .app_data(web::PayloadConfig::new(webhooks::MAX_BODY))
                .route(web::post().to(webhooks::stripe_webhook)),
        )
        .configure(admin::configure);
}

// One middleware per class of public endpoint (`crate::limits`).

/// Refuses with 429 when the client is over its limit for `class`.
async fn limited(
    class: Class,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let (Some(state), Some(peer)) = (
        req.app_data::<web::Data<AppState>>(),
        req.peer_addr().map(|a| a.ip()),
    ) {
        let client = state.limits.client_ip(peer, || limits::forwarded_for(&req));
        if let Err(wait) = state.limits.check(class, client) {
            metrics::counter!("market_rate_limited_total", "class" => class.as_str()).increment(1);
            return Err(ApiError::rate_limited(wait).into());
        }
    }
    next.call(req).await
}

async fn limit_portal(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Portal, req, next).await
}

async fn limit_catalog(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Catalog, req, next).await
}

async fn limit_checkout(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Checkout, req, next).await
}

async fn limit_success_page(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::SuccessPage, req, next).await
}

async fn limit_purchase_read(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::PurchaseRead, req, next).await
}
