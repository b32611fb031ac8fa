//! Admin: listings, tiers, and the Xano account's snippets.

use actix_web::{HttpResponse, web};
use futures::TryStreamExt;
use market_core::TierId;
use market_core::listings::{self, Listing};
use market_core::tiers;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::admin_catalog::{
    AdminListing, ListingChangeBody, ListingRequest, SnippetBody, TierChangeBody, TierChangeKind,
    TierRequest,
};

/// Every listing (active or not) with every tier version.
#[utoipa::path(get, path = "/v1/admin/listings", tag = "admin", operation_id = "admin_list_listings", security(("admin_token" = [])),
    responses((status = 200, body = [AdminListing]), (status = 401, body = ErrorBody)))]
pub async fn list_listings(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    for listing in listings::all(state.db()).await? {
        out.push(admin_listing(&state, listing).await?);
    }
    Ok(HttpResponse::Ok().json(out))
}

pub(crate) async fn admin_listing(
    state: &AppState,
    listing: Listing,
) -> Result<AdminListing, ApiError> {
    let tiers = tiers::of_listing(state.db(), listing.listing_id).await?;
    Ok(AdminListing::of(listing, tiers))
}

/// Creates or updates a listing. The snippet must exist in the Xano account; its install access
/// becomes `token`.
#[utoipa::path(put, path = "/v1/admin/listings/{canonical}", tag = "admin", security(("admin_token" = [])),
    params(("canonical" = String, Path, description = "the snippet's canonical", pattern = "^[A-Za-z0-9_-]{1,64}$")), request_body = ListingRequest,
    responses((status = 200, body = ListingChangeBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn put_listing(
    admin: Admin,
    state: web::Data<AppState>,
    canonical: web::Path<String>,
    body: web::Json<ListingRequest>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner().spec(&canonical)?;
    let (listing, change) = listings::save(&state.market, &spec, &admin.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(ListingChangeBody {
        change: change.into(),
        listing: admin_listing(&state, listing).await?,
    }))
}

/// Creates or changes a tier. Changing price, currency or `max_installs` makes a new version (the
/// old one stops selling; earlier buyers keep exactly what they bought).
#[utoipa::path(put, path = "/v1/admin/listings/{canonical}/tiers/{slug}", tag = "admin", security(("admin_token" = [])),
    params(("canonical" = String, Path, description = "the snippet's canonical"), ("slug" = String, Path, description = "lowercase letters, digits and '-'", pattern = "^[a-z0-9][a-z0-9-]{0,62}$")), request_body = TierRequest,
    responses((status = 200, body = TierChangeBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_tier(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<TierRequest>,
) -> Result<HttpResponse, ApiError> {
    let (canonical, slug) = path.into_inner();
    let spec = body.into_inner().spec(&slug)?;
    let (listing, change) = tiers::save(state.db(), &canonical, &spec, &admin.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(TierChangeBody {
        change: change.into(),
        listing: admin_listing(&state, listing).await?,
    }))
}

/// Takes a tier version off sale; its unsold tokens are deleted at Xano.
#[utoipa::path(post, path = "/v1/admin/tiers/{tier_id}/deactivate", tag = "admin", security(("admin_token" = [])),
    params(("tier_id" = Uuid, Path)),
    responses((status = 200, body = TierChangeKind), (status = 404, body = ErrorBody)))]
pub async fn deactivate_tier(
    admin: Admin,
    state: web::Data<AppState>,
    tier: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let change = tiers::take_off_sale(state.db(), TierId(*tier), &admin.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(TierChangeKind::from(change)))
}

/// The Xano account's snippets, and whether each is listed here.
#[utoipa::path(get, path = "/v1/admin/snippets", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = [SnippetBody]), (status = 502, body = ErrorBody)))]
pub async fn list_snippets(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let snippets: Vec<master_api::Snippet> = state
        .market
        .xano
        .snippets()
        .try_collect()
        .await
        .map_err(market_core::Error::Xano)?;
    let listed: std::collections::HashSet<String> = listings::all(state.db())
        .await?
        .into_iter()
        .map(|l| l.canonical)
        .collect();
    let body: Vec<SnippetBody> = snippets
        .into_iter()
        .map(|s| SnippetBody {
            listed: listed.contains(&s.canonical),
            install_access: s.install_access.map(|a| a.as_str().to_owned()),
            name: s.name,
            canonical: s.canonical,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}
