//! The public catalog: active listings and their active tiers, as storefronts show them.

use serde::Serialize;
use sqlx::PgPool;

use crate::{Canonical, ListingId, Result, TierId};

#[derive(Clone, Debug, Serialize)]
pub struct CatalogListing {
    pub listing_id: ListingId,
    pub canonical: String,
    pub title: String,
    pub description: String,
    /// The snippet's page at Xano, where a buyer installs it with their token.
    pub snippet_url: String,
    pub tiers: Vec<CatalogTier>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CatalogTier {
    #[serde(rename = "id")]
    pub tier_id: TierId,
    #[serde(skip)]
    pub listing_id: ListingId,
    pub slug: String,
    pub name: String,
    pub price_amount: i64,
    pub currency: String,
    pub max_installs: i64,
    /// Whether a checkout can start now. Always true for a listed tier today (an empty pool does
    /// not stop sales: the token is minted after payment); kept so storefronts need not change when
    /// sales can be paused.
    pub purchasable: bool,
}

#[derive(sqlx::FromRow)]
struct ListingRow {
    listing_id: ListingId,
    canonical: String,
    title: String,
    description: String,
}

/// Active listings with at least one active tier, by canonical; `only` narrows to one listing.
pub async fn listings(pool: &PgPool, only: Option<&str>) -> Result<Vec<CatalogListing>> {
    let rows = sqlx::query_as::<_, ListingRow>(
        "select listing_id, canonical, title, description from listing
         where active and ($1::text is null or canonical = $1)
         order by canonical",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let tiers = sqlx::query_as::<_, CatalogTier>(
        "select t.tier_id, t.listing_id, t.slug, t.name, t.price_amount, t.currency, t.max_installs,
                true as purchasable
         from tier t join listing l using (listing_id)
         where t.active and l.active and ($1::text is null or l.canonical = $1)
         order by t.price_amount, t.slug",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;

    Ok(rows
        .into_iter()
        .map(|row| {
            let snippet_url = Canonical::parse(&row.canonical)
                .map(|c| c.snippet_url())
                .unwrap_or_default();
            CatalogListing {
                tiers: tiers
                    .iter()
                    .filter(|t| t.listing_id == row.listing_id)
                    .cloned()
                    .collect(),
                listing_id: row.listing_id,
                canonical: row.canonical,
                title: row.title,
                description: row.description,
                snippet_url,
            }
        })
        .filter(|listing| !listing.tiers.is_empty())
        .collect())
}
