//! `GET /v1/listings` and `GET /v1/listings/{canonical}`: what is for sale, answered from the
//! instance's in-memory copy (`catalog_cache`: at most 1 s behind other instances' changes).

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use market_core::catalog;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingsBody {
    pub listings: Vec<ListingBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingBody {
    /// The Xano snippet's id.
    pub canonical: String,
    pub title: String,
    pub description: String,
    /// Where the snippet is installed, with the token from a purchase.
    pub snippet_url: String,
    pub tiers: Vec<TierBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierBody {
    /// Pass this to `POST /v1/checkout`.
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub price: PriceBody,
    /// How many installs the token of this tier allows.
    pub max_installs: i64,
    /// Whether a checkout can start now.
    pub purchasable: bool,
}

/// Money in the currency's minor unit: `{"amount": 1900, "currency": "usd"}` is $19.00.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceBody {
    pub amount: i64,
    pub currency: String,
}

impl From<catalog::CatalogListing> for ListingBody {
    fn from(listing: catalog::CatalogListing) -> Self {
        Self {
            canonical: listing.canonical,
            title: listing.title,
            description: listing.description,
            snippet_url: listing.snippet_url,
            tiers: listing
                .tiers
                .into_iter()
                .map(|t| TierBody {
                    id: t.tier_id.0,
                    slug: t.slug,
                    name: t.name,
                    price: PriceBody {
                        amount: t.price_amount,
                        currency: t.currency,
                    },
                    max_installs: t.max_installs,
                    purchasable: t.purchasable,
                })
                .collect(),
        }
    }
}

/// Active listings with their active tiers.
#[utoipa::path(get, path = "/v1/listings", tag = "catalog", responses((status = 200, body = ListingsBody)))]
pub async fn list_listings(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(state.db()).await?;
    Ok(json(catalog.all.clone()))
}

/// One active listing.
#[utoipa::path(
    get,
    path = "/v1/listings/{canonical}",
    tag = "catalog",
    params(("canonical" = String, Path, description = "the snippet's canonical")),
    responses((status = 200, body = ListingBody), (status = 404, body = crate::error::ErrorBody))
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
