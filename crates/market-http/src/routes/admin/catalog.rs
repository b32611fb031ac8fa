//! Admin: listings, tiers, and the Xano account's snippets.

use actix_web::{HttpResponse, web};
use futures::TryStreamExt;
use market_core::listings::{self, ListingSpec};
use market_core::tiers::{self, TierSpec};
use market_core::{Canonical, Currency, Money, Slug, TierId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::routes::catalog::PriceBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingRequest {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierRequest {
    pub name: String,
    pub price: PriceRequest,
    pub max_installs: i64,
    #[serde(default = "default_low_water")]
    pub pool_low_water: i32,
    #[serde(default = "default_target")]
    pub pool_target: i32,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    /// Minor units (cents).
    pub amount: i64,
    pub currency: String,
}

fn yes() -> bool {
    true
}
fn default_low_water() -> i32 {
    5
}
fn default_target() -> i32 {
    10
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminListing {
    pub listing_id: Uuid,
    pub canonical: String,
    pub title: String,
    pub description: String,
    pub active: bool,
    pub tiers: Vec<AdminTier>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTier {
    pub id: Uuid,
    pub slug: String,
    pub version: i32,
    pub name: String,
    pub price: PriceBody,
    pub max_installs: i64,
    pub pool_low_water: i32,
    pub pool_target: i32,
    pub active: bool,
}

impl From<tiers::Tier> for AdminTier {
    fn from(t: tiers::Tier) -> Self {
        Self {
            id: t.tier_id.0,
            slug: t.slug,
            version: t.version,
            name: t.name,
            price: PriceBody {
                amount: t.price_amount,
                currency: t.currency,
            },
            max_installs: t.max_installs,
            pool_low_water: t.pool_low_water,
            pool_target: t.pool_target,
            active: t.active,
        }
    }
}

/// What a change did, as `market-core` reports it (`{"change": "created" | "new_version" | …}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeBody {
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
    pub listing: AdminListing,
}

/// Every listing (active or not) with every tier version.
#[utoipa::path(get, path = "/v1/admin/listings", tag = "admin", security(("admin_token" = [])),
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

async fn admin_listing(
    state: &AppState,
    listing: listings::Listing,
) -> Result<AdminListing, ApiError> {
    let mut conn = state.db().acquire().await?;
    let tiers = tiers::for_listing(&mut conn, listing.listing_id).await?;
    Ok(AdminListing {
        listing_id: listing.listing_id.0,
        canonical: listing.canonical,
        title: listing.title,
        description: listing.description,
        active: listing.active,
        tiers: tiers.into_iter().map(Into::into).collect(),
    })
}

/// Creates or updates a listing. The snippet must exist in the Xano account; its install access
/// becomes `token`.
#[utoipa::path(put, path = "/v1/admin/listings/{canonical}", tag = "admin", security(("admin_token" = [])),
    params(("canonical" = String, Path)), request_body = ListingRequest,
    responses((status = 200, body = ChangeBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn put_listing(
    admin: Admin,
    state: web::Data<AppState>,
    canonical: web::Path<String>,
    body: web::Json<ListingRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let spec = ListingSpec {
        canonical: Canonical::parse(&canonical)?,
        title: body.title,
        description: body.description,
        active: body.active,
    };
    spec.validate()?;
    listings::prepare_snippet(&state.market.xano, &spec).await?;
    let mut tx = state.db().begin().await?;
    let (listing, change) = listings::upsert(&mut tx, &spec, &admin.actor()).await?;
    tx.commit().await?;
    state.catalog.invalidate();
    let change = serde_json::to_value(change).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(ChangeBody {
        change,
        listing: admin_listing(&state, listing).await?,
    }))
}

/// Creates or changes a tier. Changing price, currency or `max_installs` makes a new version (the
/// old one stops selling; earlier buyers keep exactly what they bought).
#[utoipa::path(put, path = "/v1/admin/listings/{canonical}/tiers/{slug}", tag = "admin", security(("admin_token" = [])),
    params(("canonical" = String, Path), ("slug" = String, Path)), request_body = TierRequest,
    responses((status = 200, body = ChangeBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_tier(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<TierRequest>,
) -> Result<HttpResponse, ApiError> {
    let (canonical, slug) = path.into_inner();
    let body = body.into_inner();
    let spec = TierSpec {
        slug: Slug::parse(&slug)?,
        name: body.name,
        price: Money::new(body.price.amount, Currency::parse(&body.price.currency)?)?,
        max_installs: body.max_installs,
        pool_low_water: body.pool_low_water,
        pool_target: body.pool_target,
        active: body.active,
    };
    let listing = listings::by_canonical(state.db(), &canonical)
        .await?
        .ok_or_else(|| ApiError::not_found("listing"))?;
    let mut tx = state.db().begin().await?;
    let change = tiers::apply(&mut tx, listing.listing_id, &spec, &admin.actor()).await?;
    tx.commit().await?;
    state.catalog.invalidate();
    let change = serde_json::to_value(change).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(ChangeBody {
        change,
        listing: admin_listing(&state, listing).await?,
    }))
}

/// Takes a tier version off sale; its unsold tokens are deleted at Xano.
#[utoipa::path(post, path = "/v1/admin/tiers/{tier_id}/deactivate", tag = "admin", security(("admin_token" = [])),
    params(("tier_id" = Uuid, Path)),
    responses((status = 200, description = "the change"), (status = 404, body = ErrorBody)))]
pub async fn deactivate_tier(
    admin: Admin,
    state: web::Data<AppState>,
    tier: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db().begin().await?;
    let change = tiers::deactivate(&mut tx, TierId(*tier), &admin.actor()).await?;
    tx.commit().await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(change))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetBody {
    pub canonical: String,
    pub name: Option<String>,
    /// `public`, `link`, `token`, or what Xano says.
    pub install_access: Option<String>,
    /// Whether a listing sells it.
    pub listed: bool,
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
