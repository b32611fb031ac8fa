//! A seller's Stripe Connect account, under `/v1/seller/stripe`: onboarding through Stripe's hosted
//! pages, and a login link to the seller's Express dashboard (payouts, balance). What Stripe says of
//! the account comes back by `account.updated` and shows on `GET /v1/seller/me`; the seller's tiers
//! are on sale only while Stripe has enabled charges.
//!
//! Stripe sends the seller back to two plain pages of this service, `/seller/stripe/return` (done,
//! or left part-way) and `/seller/stripe/refresh` (the link was used or expired). Neither trusts
//! the visit: the account's state comes from Stripe's event, never from the browser.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use market_core::connect;

use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::stripe::StripeGateway;
use crate::wire::sellers::HostedLinkBody;

/// Where Stripe sends the seller back to.
const RETURN_PATH: &str = "seller/stripe/return";
const REFRESH_PATH: &str = "seller/stripe/refresh";

/// A fresh single-use link to Stripe's hosted onboarding (the seller's connected account is made on
/// the first call). Asking again gives a new link; a link already used or expired sends the seller
/// to `/seller/stripe/refresh`. `409 house_not_connected` for the house (paid directly).
#[utoipa::path(post, path = "/v1/seller/stripe/onboarding", tag = "seller", operation_id = "seller_stripe_onboarding", security(("seller_key" = [])),
    responses((status = 200, body = HostedLinkBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn onboarding(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = |path: &str| state.public_url.join(path).map_err(ApiError::internal);
    let (refresh, back) = (page(REFRESH_PATH)?, page(RETURN_PATH)?);
    // Boxed: the Stripe requests inside make this future large.
    let link = Box::pin(connect::onboarding(
        state.db(),
        &seller.0,
        &state.stripe,
        refresh.as_str(),
        back.as_str(),
        &seller.actor(),
    ))
    .await?;
    Ok(no_store(HostedLinkBody::from(link)))
}

/// A single-use link into the seller's Stripe Express dashboard, where payouts and the balance are.
/// `409 stripe_not_onboarded` until the seller finished onboarding; `409 house_not_connected` for
/// the house.
#[utoipa::path(post, path = "/v1/seller/stripe/login_link", tag = "seller", operation_id = "seller_stripe_login_link", security(("seller_key" = [])),
    responses((status = 200, body = HostedLinkBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn login_link(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let gateway: &StripeGateway = &state.stripe;
    let link = connect::login_link(state.db(), seller.0.seller_id, gateway).await?;
    Ok(no_store(HostedLinkBody::from(link)))
}

fn no_store(body: HostedLinkBody) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// Where Stripe's onboarding sends the seller when they finish or leave it.
pub async fn returned() -> HttpResponse {
    page(
        "Back from Stripe",
        "Thank you. Stripe tells this marketplace when your account can take payments; your tiers \
         go on sale then (GET /v1/seller/me shows charges_enabled). If you left before the end, \
         ask for a new link: POST /v1/seller/stripe/onboarding.",
    )
}

/// Where Stripe sends the seller when the onboarding link was already used or has expired.
pub async fn refresh() -> HttpResponse {
    page(
        "This onboarding link has expired",
        "Onboarding links work once and for a few minutes. Ask for a new one: \
         POST /v1/seller/stripe/onboarding with your seller API key.",
    )
}

fn page(title: &str, text: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
             <body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
        ))
}
