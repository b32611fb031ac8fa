//! The public catalog: active listings and their active tiers, as storefronts show them.

use std::collections::HashMap;

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

/// The catalog's version (migration 32): it moves with every committed change to what
/// [`listings`] shows, and only then. Read it before the listings: a copy read after version `n`
/// holds every change up to `n`, so while the version stays `n` the copy is current.
pub async fn version(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("select version from catalog_version")
            .fetch_one(pool)
            .await?,
    )
}

/// Listings with at least one tier on sale, by canonical in byte order, each with its tiers by
/// price (then slug); `only` narrows to one listing.
///
/// One query (one round trip, one connection from the pool): each instance re-reads the whole
/// catalog once a second (`catalog_cache`), so it must cost as little of PostgreSQL as it can. The
/// rows come unordered and are grouped and sorted here: with 10 000 listings, sorting their 30 000
/// tier rows in PostgreSQL spilled to disk (past `work_mem`) and took half of the query's 120 ms,
/// where sorting 10 000 listings in memory takes about a millisecond. The order is the canonicals'
/// bytes, not the database's locale: the HTTP layer pages the catalog by canonical, and both sides
/// must agree on what comes after a cursor.
pub async fn listings(pool: &PgPool, only: Option<&str>) -> Result<Vec<CatalogListing>> {
    let rows = sqlx::query_as::<_, Row>(concat!(
        "select l.canonical, l.title, l.description, s.seller_id, s.name as seller_name,
                t.tier_id, t.listing_id, t.slug, t.name, t.price_amount as amount, t.currency, t.max_installs,
                true as purchasable
         from listing l join tier t using (listing_id) join seller s on s.seller_id = l.seller_id
         where ",
        on_sale_sql!(),
        " and ($1::text is null or l.canonical = $1)"
    ))
    .bind(only)
    .fetch_all(pool)
    .await?;

    let mut listings: Vec<CatalogListing> = Vec::new();
    let mut position: HashMap<ListingId, usize> = HashMap::new();
    for row in rows {
        if let Some(listing) = position
            .get(&row.tier.listing_id)
            .and_then(|&at| listings.get_mut(at))
        {
            listing.tiers.push(row.tier);
            continue;
        }
        position.insert(row.tier.listing_id, listings.len());
        listings.push(CatalogListing {
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
        });
    }
    listings.sort_unstable_by(|a, b| a.canonical.cmp(&b.canonical));
    for listing in &mut listings {
        listing
            .tiers
            .sort_by(|a, b| (a.price.amount, &a.slug).cmp(&(b.price.amount, &b.slug)));
    }
    Ok(listings)
}
