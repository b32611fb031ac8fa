//! `GET /v1/listings` and `GET /v1/listings/{canonical}`: what is for sale, answered from the
//! instance's in-memory copy (`catalog_cache`: at most 1 s behind other instances' changes).

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::wire::catalog::{CatalogQuery, ListingBody, ListingsBody};
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};

/// Active listings with their active tiers, every seller's or, with `seller`, one seller's.
#[utoipa::path(get, path = "/v1/listings", tag = "catalog", params(CatalogQuery),
    responses((status = 200, body = ListingsBody), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list_listings(
    state: web::Data<AppState>,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(state.db()).await?;
    Ok(match query.seller {
        None => json(catalog.all.clone()),
        Some(seller) => json(
            catalog
                .by_seller
                .get(&seller)
                .cloned()
                .unwrap_or_else(|| Bytes::from_static(br#"{"listings":[]}"#)),
        ),
    })
}

/// One active listing.
#[utoipa::path(
    get,
    path = "/v1/listings/{canonical}",
    tag = "catalog",
    params(("canonical" = String, Path, description = "the snippet's canonical")),
    responses((status = 200, body = ListingBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody))
)]
pub async fn get_listing(
    state: web::Data<AppState>,
    canonical: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(state.db()).await?;
    let listing = catalog
        .by_canonical
        .get(canonical.as_str())
        .ok_or_else(|| ApiError::not_found("listing"))?;
    Ok(json(listing.clone()))
}

/// A catalog body as sent; shared caches may keep it a few seconds.
fn json(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(("cache-control", "public, max-age=5"))
        .body(body)
}
