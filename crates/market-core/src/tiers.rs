//! Tiers: priced offers of a listing, and the rule that keeps earlier buyers' terms intact.
//!
//! **The rule.** A tier's terms (price, currency, `max_installs`) are immutable. Applying a spec whose
//! terms differ from the active version creates version `n + 1` under the same slug and deactivates
//! version `n`. Purchases point at the version they bought (and copy its terms), so nothing a buyer
//! got ever changes. The old version's unsold tokens move to the new version when `max_installs` is
//! the same (a price change) and are retired at Xano otherwise. Name, pool sizes and `active` are not
//! terms and change in place.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};

use crate::audit::{Actor, Audit};
use crate::listings::{self, Listing};
use crate::queue::{self, JobKind};
use crate::{Error, ListingId, Money, Result, Slug, TierId, TokenId, db};

/// A tier version as stored. Its terms (`price`, `max_installs`) never change.
#[derive(Clone, Debug)]
pub struct Tier {
    pub tier_id: TierId,
    pub listing_id: ListingId,
    pub slug: String,
    pub version: i32,
    pub name: String,
    pub price: Money,
    pub max_installs: i64,
    pub pool_low_water: i32,
    pub pool_target: i32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The row's `price_amount` and `currency` are one [`Money`].
impl<'r> sqlx::FromRow<'r, PgRow> for Tier {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            tier_id: row.try_get("tier_id")?,
            listing_id: row.try_get("listing_id")?,
            slug: row.try_get("slug")?,
            version: row.try_get("version")?,
            name: row.try_get("name")?,
            price: Money::from_columns(row.try_get("price_amount")?, row.try_get("currency")?)?,
            max_installs: row.try_get("max_installs")?,
            pool_low_water: row.try_get("pool_low_water")?,
            pool_target: row.try_get("pool_target")?,
            active: row.try_get("active")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// What an operator says a tier should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierSpec {
    pub slug: Slug,
    pub name: String,
    pub price: Money,
    pub max_installs: i64,
    pub pool_low_water: i32,
    pub pool_target: i32,
    pub active: bool,
}

impl TierSpec {
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(Error::invalid("name", "must be 1-100 characters"));
        }
        if self.max_installs <= 0 {
            return Err(Error::invalid("max_installs", "must be at least 1"));
        }
        if self.pool_low_water < 0
            || self.pool_target < self.pool_low_water
            || self.pool_target > 1000
        {
            return Err(Error::invalid(
                "pool",
                "need 0 <= pool_low_water <= pool_target <= 1000",
            ));
        }
        Ok(())
    }

    fn same_terms(&self, tier: &Tier) -> bool {
        self.price == tier.price && self.max_installs == tier.max_installs
    }
}

/// How applying a spec changed a tier; what `market tiers apply --dry-run` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum TierChange {
    Created {
        tier_id: TierId,
    },
    /// Terms changed: a new version replaced the old one.
    NewVersion {
        old: TierId,
        new: TierId,
        version: i32,
        moved_tokens: u64,
        retired_tokens: u64,
    },
    Updated {
        tier_id: TierId,
        fields: Vec<&'static str>,
    },
    Reactivated {
        tier_id: TierId,
    },
    Deactivated {
        tier_id: TierId,
        retired_tokens: u64,
    },
    Unchanged {
        tier_id: Option<TierId>,
    },
}

impl TierChange {
    pub fn is_change(&self) -> bool {
        !matches!(self, Self::Unchanged { .. })
    }
}

/// What an operator's "put this tier" does: the tier `spec.slug` of the listing `canonical` brought
/// to `spec` in a transaction of its own (run again if PostgreSQL aborts it). Returns the listing
/// and the change.
pub async fn save(
    db: &PgPool,
    canonical: &str,
    spec: &TierSpec,
    actor: &Actor,
) -> Result<(Listing, TierChange)> {
    let listing = listings::by_canonical(db, canonical)
        .await?
        .ok_or(Error::NotFound("listing"))?;
    let change = db::retry_transient(|| async {
        let mut tx = db.begin().await?;
        let change = apply(&mut tx, listing.listing_id, spec, actor).await?;
        tx.commit().await?;
        Ok(change)
    })
    .await?;
    Ok((listing, change))
}

/// Takes a tier version off sale ([`deactivate`]) in a transaction of its own.
pub async fn take_off_sale(db: &PgPool, tier: TierId, actor: &Actor) -> Result<TierChange> {
    db::retry_transient(|| async {
        let mut tx = db.begin().await?;
        let change = deactivate(&mut tx, tier, actor).await?;
        tx.commit().await?;
        Ok(change)
    })
    .await
}

/// Brings the tier `spec.slug` of `listing` to `spec`, following the versioning rule above, in the
/// caller's transaction.
pub async fn apply(
    conn: &mut PgConnection,
    listing: ListingId,
    spec: &TierSpec,
    actor: &Actor,
) -> Result<TierChange> {
    spec.validate()?;
    // The newest version, locked: concurrent applies of one slug queue up here.
    let latest = sqlx::query_as::<_, Tier>(
        "select * from tier where listing_id = $1 and slug = $2 order by version desc limit 1 for update",
    )
    .bind(listing)
    .bind(spec.slug.as_str())
    .fetch_optional(&mut *conn)
    .await?;

    let change = match latest {
        None if !spec.active => TierChange::Unchanged { tier_id: None },
        None => TierChange::Created {
            tier_id: insert(conn, listing, spec, 1).await?,
        },
        Some(tier) if !spec.active && !tier.active => TierChange::Unchanged {
            tier_id: Some(tier.tier_id),
        },
        Some(tier) if !spec.active => {
            let retired = deactivate_locked(conn, &tier, actor).await?;
            TierChange::Deactivated {
                tier_id: tier.tier_id,
                retired_tokens: retired,
            }
        }
        Some(tier) if !spec.same_terms(&tier) => new_version(conn, &tier, spec, actor).await?,
        Some(tier) => update_in_place(conn, &tier, spec).await?,
    };
    if change.is_change() {
        Audit::new(actor, "tier.applied")
            .listing(listing)
            .detail(&change)
            .write(&mut *conn)
            .await?;
    }
    Ok(change)
}

async fn insert(
    conn: &mut PgConnection,
    listing: ListingId,
    spec: &TierSpec,
    version: i32,
) -> Result<TierId> {
    let tier_id = sqlx::query_scalar::<_, TierId>(
        "insert into tier (listing_id, slug, version, name, price_amount, currency, max_installs,
                           pool_low_water, pool_target, active)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)
         returning tier_id",
    )
    .bind(listing)
    .bind(spec.slug.as_str())
    .bind(version)
    .bind(spec.name.trim())
    .bind(spec.price.amount)
    .bind(spec.price.currency.as_str())
    .bind(spec.max_installs)
    .bind(spec.pool_low_water)
    .bind(spec.pool_target)
    .fetch_one(&mut *conn)
    .await?;
    queue::enqueue(&mut *conn, JobKind::ReplenishPool, &tier_id.to_string()).await?;
    Ok(tier_id)
}

async fn new_version(
    conn: &mut PgConnection,
    old: &Tier,
    spec: &TierSpec,
    actor: &Actor,
) -> Result<TierChange> {
    if old.active {
        sqlx::query("update tier set active = false where tier_id = $1")
            .bind(old.tier_id)
            .execute(&mut *conn)
            .await?;
    }
    let new = insert(conn, old.listing_id, spec, old.version + 1).await?;
    let (moved, retired) = if old.max_installs == spec.max_installs {
        // Same install cap: the unsold tokens are exactly what the new version sells.
        let moved = sqlx::query(
            "update install_token set tier_id = $2 where tier_id = $1 and state = 'available'",
        )
        .bind(old.tier_id)
        .bind(new)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        (moved, 0)
    } else {
        (0, retire_pool(conn, old.tier_id, actor).await?)
    };
    Ok(TierChange::NewVersion {
        old: old.tier_id,
        new,
        version: old.version + 1,
        moved_tokens: moved,
        retired_tokens: retired,
    })
}

async fn update_in_place(
    conn: &mut PgConnection,
    tier: &Tier,
    spec: &TierSpec,
) -> Result<TierChange> {
    let mut fields = Vec::new();
    if tier.name != spec.name.trim() {
        fields.push("name");
    }
    if tier.pool_low_water != spec.pool_low_water {
        fields.push("pool_low_water");
    }
    if tier.pool_target != spec.pool_target {
        fields.push("pool_target");
    }
    if !tier.active {
        sqlx::query("update tier set active = true where tier_id = $1")
            .bind(tier.tier_id)
            .execute(&mut *conn)
            .await?;
        queue::enqueue(
            &mut *conn,
            JobKind::ReplenishPool,
            &tier.tier_id.to_string(),
        )
        .await?;
        if fields.is_empty() {
            return Ok(TierChange::Reactivated {
                tier_id: tier.tier_id,
            });
        }
    }
    if fields.is_empty() {
        return Ok(TierChange::Unchanged {
            tier_id: Some(tier.tier_id),
        });
    }
    sqlx::query(
        "update tier set name = $2, pool_low_water = $3, pool_target = $4 where tier_id = $1",
    )
    .bind(tier.tier_id)
    .bind(spec.name.trim())
    .bind(spec.pool_low_water)
    .bind(spec.pool_target)
    .execute(&mut *conn)
    .await?;
    queue::enqueue(
        &mut *conn,
        JobKind::ReplenishPool,
        &tier.tier_id.to_string(),
    )
    .await?;
    Ok(TierChange::Updated {
        tier_id: tier.tier_id,
        fields,
    })
}

/// Takes a tier off sale and retires its unsold tokens.
pub async fn deactivate(
    conn: &mut PgConnection,
    tier: TierId,
    actor: &Actor,
) -> Result<TierChange> {
    let tier = sqlx::query_as::<_, Tier>("select * from tier where tier_id = $1 for update")
        .bind(tier)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("tier"))?;
    if !tier.active {
        return Ok(TierChange::Unchanged {
            tier_id: Some(tier.tier_id),
        });
    }
    let retired = deactivate_locked(conn, &tier, actor).await?;
    let change = TierChange::Deactivated {
        tier_id: tier.tier_id,
        retired_tokens: retired,
    };
    Audit::new(actor, "tier.applied")
        .listing(tier.listing_id)
        .tier(tier.tier_id)
        .detail(&change)
        .write(conn)
        .await?;
    Ok(change)
}

async fn deactivate_locked(conn: &mut PgConnection, tier: &Tier, actor: &Actor) -> Result<u64> {
    sqlx::query("update tier set active = false where tier_id = $1")
        .bind(tier.tier_id)
        .execute(&mut *conn)
        .await?;
    retire_pool(conn, tier.tier_id, actor).await
}

/// Unsold tokens of a tier that is no longer sold are live credentials nobody needs: delete them.
async fn retire_pool(conn: &mut PgConnection, tier: TierId, actor: &Actor) -> Result<u64> {
    let tokens = sqlx::query_scalar::<_, TokenId>(
        "update install_token set state = 'retiring' where tier_id = $1 and state = 'available'
         returning install_token_id",
    )
    .bind(tier)
    .fetch_all(&mut *conn)
    .await?;
    for token in &tokens {
        queue::enqueue(&mut *conn, JobKind::DeleteToken, &token.to_string()).await?;
        Audit::new(actor, "token.retiring")
            .tier(tier)
            .token(*token)
            .write(&mut *conn)
            .await?;
    }
    Ok(tokens.len() as u64)
}

pub async fn by_id(conn: &mut PgConnection, tier: TierId) -> Result<Tier> {
    sqlx::query_as::<_, Tier>("select * from tier where tier_id = $1")
        .bind(tier)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("tier"))
}

/// Every version of every tier of a listing, by slug then version.
pub async fn of_listing(db: &PgPool, listing: ListingId) -> Result<Vec<Tier>> {
    let mut conn = db.acquire().await?;
    for_listing(&mut conn, listing).await
}

pub async fn for_listing(conn: &mut PgConnection, listing: ListingId) -> Result<Vec<Tier>> {
    Ok(
        sqlx::query_as::<_, Tier>(
            "select * from tier where listing_id = $1 order by slug, version",
        )
        .bind(listing)
        .fetch_all(conn)
        .await?,
    )
}
