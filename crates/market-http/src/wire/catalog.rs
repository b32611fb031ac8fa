//! The public catalog on the wire (`GET /v1/listings`, `GET /v1/listings/{canonical}`), its pages
//! and their cursors, and money as every body writes it.

use std::fmt::Write as _;

use market_core::Money;
use market_core::catalog::CatalogListing;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One page of the catalog, in the order of the listings' canonicals (byte order).
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingsBody {
    pub listings: Vec<ListingBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
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

/// Listings per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// The most listings one page holds (about 120 kB of JSON with three tiers each).
pub const MAX_PAGE: usize = 200;

/// `GET /v1/listings`'s filter and page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Only this seller's listings.
    pub seller: Option<Uuid>,
    /// Listings per page: 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (with the same `seller`).
    #[param(pattern = "^(2d|3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a]){1,64}$")]
    pub cursor: Option<String>,
}

/// A page's cursor: the last listing's canonical, hex-encoded. Opaque to clients (they pass back
/// what they were given); a page starts after it, so a listing added or removed meanwhile neither
/// repeats nor hides another.
pub fn encode_cursor(canonical: &str) -> String {
    canonical
        .bytes()
        .fold(String::with_capacity(canonical.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The canonical a cursor names; `None` when it is not one [`encode_cursor`] could have made (hex
/// of 1-64 of a canonical's characters: letters, digits, `-`, `_`, as the parameter's pattern says).
pub fn decode_cursor(cursor: &str) -> Option<String> {
    let hex = cursor.as_bytes();
    if hex.is_empty()
        || !hex.len().is_multiple_of(2)
        || hex.len() > 128
        || !hex.iter().all(u8::is_ascii_hexdigit)
    {
        return None;
    }
    let bytes = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::{decode_cursor, encode_cursor};

    #[test]
    fn a_cursor_names_the_canonical_it_was_made_from() {
        for canonical in ["auth-flow_01", "a", "kRG3t_-i"] {
            assert_eq!(
                decode_cursor(&encode_cursor(canonical)).as_deref(),
                Some(canonical)
            );
        }
    }

    #[test]
    fn a_cursor_that_is_not_hex_of_text_names_nothing() {
        for bad in ["", "a", "zz", "+1", "ff", "2e", "c3a9", &"61".repeat(65)] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
