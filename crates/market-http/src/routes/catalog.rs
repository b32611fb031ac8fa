//! `GET /v1/listings` and `GET /v1/listings/{canonical}`: what is for sale, answered from the
//! instance's in-memory copy (`catalog_cache`: at most 1 s behind other instances' changes). The
//! list comes in pages ordered by canonical, each naming the cursor of the next: a storefront
//! with 10 000 listings sends 50 of them per page view, not megabytes.

use crate::error::{ApiError, Code, ErrorBody};
use crate::state::AppState;
use crate::wire::catalog::{
    CatalogQuery, DEFAULT_PAGE, ListingBody, ListingsBody, MAX_PAGE, decode_cursor,
};
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};

/// Active listings with their active tiers, every seller's or, with `seller`, one seller's: a page
/// of `limit` (default 50, at most 200) in the order of their canonicals, and the `next_cursor` to
/// pass for the next page (`null` on the last). A listing added while a client pages shows once,
/// on a later page if it sorts after the cursor; none repeats.
#[utoipa::path(get, path = "/v1/listings", tag = "catalog", params(CatalogQuery),
    responses((status = 200, body = ListingsBody), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list_listings(
    state: web::Data<AppState>,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit {
        None => DEFAULT_PAGE,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid(format!("limit must be 1-{MAX_PAGE}")))?,
    };
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c).ok_or_else(|| {
                ApiError::new(Code::InvalidCursor, "cursor is not one this API returned")
            })
        })
        .transpose()?;
    let catalog = state.catalog.get(state.db()).await?;
    Ok(json(catalog.page(query.seller, after.as_deref(), limit)))
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
        .listing(canonical.as_str())
        .ok_or_else(|| ApiError::not_found("listing"))?;
    Ok(json(listing))
}

/// A catalog body as sent; shared caches may keep it a few seconds.
fn json(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(("cache-control", "public, max-age=5"))
        .body(body)
}
