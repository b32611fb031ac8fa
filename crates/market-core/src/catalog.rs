//! The public catalog: active listings and their active tiers, as storefronts show them.

use sqlx::PgPool;

use crate::{Canonical, ListingId, Money, Result, TierId};

#[derive(Clone, Debug)]
pub struct CatalogListing {
    pub listing_id: ListingId,
    pub canonical: String,
    pub title: String,
    pub description: String,
    /// The snippet's page at Xano, where a buyer installs it with their token.
    pub snippet_url: String,
    /// Who sells it (`sellers`).
    pub seller_id: uuid::Uuid,
    pub seller_name: String,
    pub tiers: Vec<CatalogTier>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CatalogTier {
    pub tier_id: TierId,
    pub listing_id: ListingId,
    pub slug: String,
    pub name: String,
    #[sqlx(flatten)]
    pub price: Money,
    pub max_installs: i64,
    /// Whether a checkout can start now. Always true for a listed tier today (an empty pool does
    /// not stop sales: the token is minted after payment); kept so storefronts need not change when
    /// sales can be paused.
    pub purchasable: bool,
}

/// One row of the catalog query: a listing and one of its tiers.
#[derive(sqlx::FromRow)]
struct Row {
    canonical: String,
    title: String,
    description: String,
    seller_id: uuid::Uuid,
    seller_name: String,
    #[sqlx(flatten)]
    tier: CatalogTier,
}

/// When a tier is on sale, as SQL over `tier t`, `listing l` and `seller s`: tier and listing
/// active, the seller not suspended, and paid somewhere: the house directly, any other seller
/// through a connected account Stripe has enabled charges on (`connect`). The catalog, checkout
/// and upgrades all read this one rule.
macro_rules! on_sale_sql {
    () => {
        "(t.active and l.active and s.status = 'active' and (s.house or s.stripe_charges_enabled))"
    };
}
pub(crate) use on_sale_sql;

/// Listings with at least one tier on sale, by canonical; `only` narrows to one listing.
///
/// One query (one round trip, one connection from the pool): storefronts read this on every page
/// view, so it must cost as little of PostgreSQL as it can.
pub async fn listings(pool: &PgPool, only: Option<&str>) -> Result<Vec<CatalogListing>> {
    let rows = sqlx::query_as::<_, Row>(concat!(
        "select l.canonical, l.title, l.description, s.seller_id, s.name as seller_name,
                t.tier_id, t.listing_id, t.slug, t.name, t.price_amount as amount, t.currency, t.max_installs,
                true as purchasable
         from listing l join tier t using (listing_id) join seller s on s.seller_id = l.seller_id
         where ",
        on_sale_sql!(),
        " and ($1::text is null or l.canonical = $1)
         order by l.canonical, t.price_amount, t.slug"
    ))
    .bind(only)
    .fetch_all(pool)
    .await?;

    let mut listings: Vec<CatalogListing> = Vec::new();
    for row in rows {
        match listings.last_mut() {
            Some(listing) if listing.listing_id == row.tier.listing_id => {
                listing.tiers.push(row.tier);
            }
            _ => listings.push(CatalogListing {
                listing_id: row.tier.listing_id,
                snippet_url: Canonical::parse(&row.canonical)
                    .map(|c| c.snippet_url())
                    .unwrap_or_default(),
                canonical: row.canonical,
                title: row.title,
                description: row.description,
                seller_id: row.seller_id,
                seller_name: row.seller_name,
                tiers: vec![row.tier],
            }),
        }
    }
    Ok(listings)
}
