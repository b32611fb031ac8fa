//! The public catalog on the wire (`GET /v1/listings`, `GET /v1/listings/{canonical}`), and money
//! as every body writes it.

use market_core::Money;
use market_core::catalog::CatalogListing;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
    /// Who sells it: `GET /v1/listings?seller=<id>` lists that seller's alone.
    pub seller: CatalogSellerBody,
    pub tiers: Vec<TierBody>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogSellerBody {
    pub id: Uuid,
    pub name: String,
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

impl From<&Money> for PriceBody {
    fn from(money: &Money) -> Self {
        Self {
            amount: money.amount,
            currency: money.currency.to_string(),
        }
    }
}

impl From<CatalogListing> for ListingBody {
    fn from(listing: CatalogListing) -> Self {
        Self {
            canonical: listing.canonical,
            title: listing.title,
            description: listing.description,
            snippet_url: listing.snippet_url,
            seller: CatalogSellerBody {
                id: listing.seller_id,
                name: listing.seller_name,
            },
            tiers: listing
                .tiers
                .into_iter()
                .map(|t| TierBody {
                    id: t.tier_id.0,
                    slug: t.slug,
                    name: t.name,
                    price: (&t.price).into(),
                    max_installs: t.max_installs,
                    purchasable: t.purchasable,
                })
                .collect(),
        }
    }
}

/// `GET /v1/listings`'s filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Only this seller's listings.
    pub seller: Option<Uuid>,
}
