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
pub mod dashboard;
mod limited;
pub mod ops;
pub mod portal;
pub mod purchases;
pub mod reports;
pub mod rotation;
pub mod sandbox;
pub mod seller;
pub mod seller_keys;
pub mod seller_stripe;
pub mod seller_webhooks;
pub mod storefront;
pub mod upgrade;
mod webhook_endpoints;
pub mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(storefront::index)))
        .service(web::resource("/static/app.css").route(web::get().to(storefront::css)))
        .service(web::resource("/static/app.js").route(web::get().to(storefront::js)))
        .service(web::resource("/static/portal.js").route(web::get().to(storefront::portal_js)))
        .service(
            web::resource("/admin")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(dashboard::page)),
        )
        .service(web::resource("/static/admin.css").route(web::get().to(dashboard::css)))
        .service(web::resource("/static/admin.js").route(web::get().to(dashboard::js)))
        .service(
            web::resource("/sandbox/mail")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(sandbox::mail)),
        )
        .service(
            web::resource("/seller/stripe/return")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(seller_stripe::returned)),
        )
        .service(
            web::resource("/seller/stripe/refresh")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(seller_stripe::refresh)),
        )
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(
            web::resource("/v1/listings")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(catalog::list_listings)),
        )
        .service(
            web::resource("/v1/listings/{canonical}")
                .wrap(from_fn(limited::limit_catalog))
                .route(web::get().to(catalog::get_listing)),
        )
        .service(
            web::resource("/v1/checkout")
                .wrap(from_fn(limited::limit_checkout))
                .route(web::post().to(checkout::create_checkout)),
        )
        .service(
            web::resource("/v1/checkout/sessions/{session_id}")
                .wrap(from_fn(limited::limit_success_page))
                .route(web::get().to(checkout::checkout_session)),
        )
        .service(
            web::resource("/v1/purchases/{id}")
                .wrap(from_fn(limited::limit_purchase_read))
                .route(web::get().to(purchases::get_purchase)),
        )
        .service(
            web::resource("/v1/purchases/{id}/rotate")
                .wrap(from_fn(limited::limit_checkout))
                .route(web::post().to(rotation::rotate)),
        )
        .service(
            web::resource("/v1/purchases/{id}/upgrade")
                .wrap(from_fn(limited::limit_checkout))
                .route(web::post().to(upgrade::upgrade)),
        )
        .service(
            web::resource("/v1/admin/purchases/{id}/rotate")
                .route(web::post().to(rotation::admin_rotate)),
        )
        .service(
            web::resource("/v1/portal/links")
                .wrap(from_fn(limited::limit_portal))
                .route(web::post().to(portal::request_link)),
        )
        .service(
            web::resource("/v1/portal/sessions")
                .wrap(from_fn(limited::limit_portal))
                .route(web::post().to(portal::open_session)),
        )
        .service(
            web::resource("/v1/portal/purchases")
                .wrap(from_fn(limited::limit_purchase_read))
                .route(web::get().to(portal::purchases)),
        )
        .service(
            web::resource("/v1/portal/session")
                .wrap(from_fn(limited::limit_portal))
                .route(web::delete().to(portal::end_session)),
        )
        .service(
            web::resource("/v1/webhooks/stripe")
                // The size limit is checked while the body is read, before the handler runs.
                .app_data(web::PayloadConfig::new(webhooks::MAX_BODY))
                .route(web::post().to(webhooks::stripe_webhook)),
        )
        .configure(seller::configure)
        .configure(seller_webhooks::configure)
        .configure(admin::configure);
}
