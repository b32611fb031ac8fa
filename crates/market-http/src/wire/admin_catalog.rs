//! The admin API's catalog on the wire: listings and tiers as operators send and read them, what a
//! change did, and the Xano account's snippets.

use market_core::listings::{Listing, ListingChange, ListingSpec};
use market_core::tiers::{Tier, TierChange, TierSpec};
use market_core::{Canonical, Currency, Money, Slug};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalog::PriceBody;
use super::number::integer;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingRequest {
    /// 1-200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    /// At most 4000 characters.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierRequest {
    /// 1-100 characters, not blank.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    pub price: PriceRequest,
    /// Installs the token of this tier allows.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "integer")]
    pub max_installs: i64,
    /// Refill the pool when fewer unsold tokens than this are left (at most `pool_target`).
    #[serde(default = "default_low_water", deserialize_with = "integer")]
    #[schema(minimum = 0, maximum = 1000)]
    pub pool_low_water: i32,
    /// Tokens to keep minted ahead of sales (at least `pool_low_water`).
    #[serde(default = "default_target", deserialize_with = "integer")]
    #[schema(minimum = 0, maximum = 1000)]
    pub pool_target: i32,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    /// Minor units (cents), positive.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "integer")]
    pub amount: i64,
    /// ISO 4217, three letters (`usd`).
    #[schema(pattern = "^[A-Za-z]{3}$")]
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
    /// The seller who owns it (the house's unless made for another).
    pub seller_id: Uuid,
    pub tiers: Vec<AdminTier>,
}

impl AdminListing {
    pub fn of(listing: Listing, tiers: Vec<Tier>) -> Self {
        Self {
            listing_id: listing.listing_id.0,
            canonical: listing.canonical,
            title: listing.title,
            description: listing.description,
            active: listing.active,
            seller_id: listing.seller_id,
            tiers: tiers.into_iter().map(Into::into).collect(),
        }
    }
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

impl From<Tier> for AdminTier {
    fn from(t: Tier) -> Self {
        Self {
            id: t.tier_id.0,
            price: (&t.price).into(),
            slug: t.slug,
            version: t.version,
            name: t.name,
            max_installs: t.max_installs,
            pool_low_water: t.pool_low_water,
            pool_target: t.pool_target,
            active: t.active,
        }
    }
}

/// What putting a listing did, and the listing now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingChangeBody {
    pub change: ListingChangeKind,
    pub listing: AdminListing,
}

/// What putting a tier did, and its listing now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierChangeBody {
    pub change: TierChangeKind,
    pub listing: AdminListing,
}

/// How a listing changed: `{"change": "created" | "updated" | "unchanged", …}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ListingChangeKind {
    Created,
    /// `fields` names what changed: `title`, `description`, `active`.
    Updated {
        fields: Vec<String>,
    },
    Unchanged,
}

impl From<ListingChange> for ListingChangeKind {
    fn from(change: ListingChange) -> Self {
        match change {
            ListingChange::Created => Self::Created,
            ListingChange::Updated { fields } => Self::Updated {
                fields: fields.into_iter().map(str::to_owned).collect(),
            },
            ListingChange::Unchanged => Self::Unchanged,
        }
    }
}

/// How a tier changed: `{"change": "created" | "new_version" | "updated" | "reactivated" |
/// "deactivated" | "unchanged", …}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum TierChangeKind {
    Created {
        tier_id: Uuid,
    },
    /// Terms changed: a new version replaced the old one.
    NewVersion {
        old: Uuid,
        new: Uuid,
        version: i32,
        moved_tokens: u64,
        retired_tokens: u64,
    },
    /// `fields` names what changed in place: `name`, `pool_low_water`, `pool_target`.
    Updated {
        tier_id: Uuid,
        fields: Vec<String>,
    },
    Reactivated {
        tier_id: Uuid,
    },
    Deactivated {
        tier_id: Uuid,
        retired_tokens: u64,
    },
    Unchanged {
        tier_id: Option<Uuid>,
    },
}

impl From<TierChange> for TierChangeKind {
    fn from(change: TierChange) -> Self {
        match change {
            TierChange::Created { tier_id } => Self::Created { tier_id: tier_id.0 },
            TierChange::NewVersion {
                old,
                new,
                version,
                moved_tokens,
                retired_tokens,
            } => Self::NewVersion {
                old: old.0,
                new: new.0,
                version,
                moved_tokens,
                retired_tokens,
            },
            TierChange::Updated { tier_id, fields } => Self::Updated {
                tier_id: tier_id.0,
                fields: fields.into_iter().map(str::to_owned).collect(),
            },
            TierChange::Reactivated { tier_id } => Self::Reactivated { tier_id: tier_id.0 },
            TierChange::Deactivated {
                tier_id,
                retired_tokens,
            } => Self::Deactivated {
                tier_id: tier_id.0,
                retired_tokens,
            },
            TierChange::Unchanged { tier_id } => Self::Unchanged {
                tier_id: tier_id.map(|t| t.0),
            },
        }
    }
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

impl ListingRequest {
    /// The domain's listing spec for the snippet `canonical` (parsed once, here).
    pub fn spec(self, canonical: &str) -> Result<ListingSpec, market_core::Error> {
        Ok(ListingSpec {
            canonical: Canonical::parse(canonical)?,
            title: self.title,
            description: self.description,
            active: self.active,
        })
    }
}

impl TierRequest {
    /// The domain's tier spec for the tier `slug` (parsed once, here).
    pub fn spec(self, slug: &str) -> Result<TierSpec, market_core::Error> {
        Ok(TierSpec {
            slug: Slug::parse(slug)?,
            name: self.name,
            price: Money::new(self.price.amount, Currency::parse(&self.price.currency)?)?,
            max_installs: self.max_installs,
            pool_low_water: self.pool_low_water,
            pool_target: self.pool_target,
            active: self.active,
        })
    }
}
