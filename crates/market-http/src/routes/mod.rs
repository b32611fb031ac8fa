//! Every route of the service, in one table (the API document adds its own two, in
//! [`crate::openapi`]).
//!
//! Handlers parse (path, query, body into domain values; [`crate::extract`] for headers), call one
//! `market-core` function, and map its answer to a [`crate::wire`] body; they never open a
//! transaction.
//!
//! Routes are registered as resources (`web::resource(path).route(method)`), so a known path called
//! with another method answers 405, and an unknown path 404, both in the error envelope.

pub mod admin;
pub mod catalog;
pub mod checkout;
pub mod ops;
pub mod purchases;
pub mod storefront;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(storefront::index)))
        .service(web::resource("/static/app.css").route(web::get().to(storefront::css)))
        .service(web::resource("/static/app.js").route(web::get().to(storefront::js)))
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/v1/listings").route(web::get().to(catalog::list_listings)))
        .service(
            web::resource("/v1/listings/{canonical}").route(web::get().to(catalog::get_listing)),
        )
        .service(web::resource("/v1/checkout").route(web::post().to(checkout::create_checkout)))
        .service(
            web::resource("/v1/checkout/sessions/{session_id}")
                .route(web::get().to(checkout::checkout_session)),
        )
        .service(web::resource("/v1/purchases/{id}").route(web::get().to(purchases::get_purchase)))
        .service(
            web::resource("/v1/webhooks/stripe")
                // The size limit is checked while the body is read, before the handler runs.
                .app_data(web::PayloadConfig::new(webhooks::MAX_BODY))
                .route(web::post().to(webhooks::stripe_webhook)),
        )
        .configure(admin::configure);
}
