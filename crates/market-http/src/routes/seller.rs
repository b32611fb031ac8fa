//! The seller API, under `/v1/seller`: a seller, signed in with its API key
//! ([`crate::extract::SellerAuth`]), sees and manages only what it owns, in the admin API's shapes
//! where the two overlap. Another seller's resources do not exist here (`404`, never `403`).

use actix_web::{HttpResponse, web};
use market_core::{sellers, tiers};

use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::wire::admin_catalog::AdminListing;
use crate::wire::sellers::SellerBody;

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
