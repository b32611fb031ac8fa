//! The seller API, under `/v1/seller`: a seller, signed in with its API key
//! ([`crate::extract::SellerAuth`]), sees and manages only what it owns, in the admin API's shapes
//! where the two overlap. Another seller's resources do not exist here (`404`, never `403`).

use actix_web::{HttpResponse, web};
use market_core::{seller_xano, sellers, tiers};
use secrecy::SecretString;

use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::wire::admin_catalog::AdminListing;
use crate::wire::sellers::{SellerBody, XanoAccountBody, XanoCredentialRequest};

/// The seller the key belongs to.
#[utoipa::path(get, path = "/v1/seller/me", tag = "seller", security(("seller_key" = [])),
    responses((status = 200, body = SellerBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn me(seller: SellerAuth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SellerBody::from(seller.0)))
}

/// The seller's listings with their tiers (as `GET /v1/admin/listings` shows them).
#[utoipa::path(get, path = "/v1/seller/listings", tag = "seller", security(("seller_key" = [])),
    responses((status = 200, body = [AdminListing]), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn listings(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    for listing in sellers::listings_of(state.db(), seller.0.seller_id).await? {
        let tiers = tiers::of_listing(state.db(), listing.listing_id).await?;
        out.push(AdminListing::of(listing, tiers));
    }
    Ok(HttpResponse::Ok().json(out))
}

/// Sets (or replaces) the seller's Xano Metadata API access token: checked with Xano first
/// (`GET /auth/me`), then stored sealed; the one before stays in use until the new one has worked.
/// The token is never returned. `400` when Xano refuses it; `409 xano_account_changed` for a token
/// of another account while the seller has listings; `409 house_credential` for the house.
#[utoipa::path(put, path = "/v1/seller/xano", tag = "seller", security(("seller_key" = [])),
    request_body = XanoCredentialRequest,
    responses((status = 200, body = XanoAccountBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_xano(
    seller: SellerAuth,
    state: web::Data<AppState>,
    body: web::Json<XanoCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = SecretString::from(body.into_inner().access_token);
    let account =
        seller_xano::set(&state.market, seller.0.seller_id, token, &seller.actor()).await?;
    Ok(HttpResponse::Ok().json(XanoAccountBody::from(account)))
}

/// The seller's Xano credential as stored: the account and which token, never the token. `404`
/// until one is set.
#[utoipa::path(get, path = "/v1/seller/xano", tag = "seller", security(("seller_key" = [])),
    responses((status = 200, body = XanoAccountBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn xano(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let account = seller_xano::account(state.db(), seller.0.seller_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Xano credential"))?;
    Ok(HttpResponse::Ok().json(XanoAccountBody::from(account)))
}
