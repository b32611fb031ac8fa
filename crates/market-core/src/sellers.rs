//! Sellers: the marketplace's tenants, each owning listings (migration 22).
//!
//! The platform operator invites a seller ([`invite`]) and hands over the API key shown then, once:
//! only its SHA-256 is kept, so neither a database dump nor an operator can present it later. The
//! seller's API (`/v1/seller/…`) authenticates with it ([`by_key`]) and sees only what the seller
//! owns ([`listings_of`]); keys issued and revoked later are `seller_keys`'. The operator may
//! [`suspend`] a seller (its keys open nothing, its tiers leave sale) and [`reactivate`] it. The
//! operator who ran the shop before sellers existed is the *house*: it owns every listing made
//! without naming a seller, so a service with none invited behaves as before.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::db;
use crate::listings::{self, Listing, ListingChange, ListingSpec};
use crate::receipt::hex;
use crate::seller_xano::XanoAccount;
use crate::tiers::{self, TierChange, TierSpec};
use crate::{Conflict, Email, Error, Market, Result};

/// A seller as the table holds it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Seller {
    pub seller_id: Uuid,
    pub name: String,
    pub contact_email: Option<String>,
    /// `active` or `suspended` (a suspended seller's key opens nothing).
    pub status: String,
    /// The operator's own seller, owner of every listing made without naming one.
    pub house: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the seller is paid, as Stripe last said (`connect`).
    #[sqlx(flatten)]
    pub stripe: StripeState,
    /// The seller's own platform fee in basis points; `None`: the service's.
    pub platform_fee_bps: Option<i32>,
}

/// A seller's Stripe connected account as Stripe last described it (migration 25); the house never
/// has one.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StripeState {
    /// `acct_…`; `None` until the seller first asks to onboard.
    #[sqlx(rename = "stripe_account_id")]
    pub account_id: Option<String>,
    /// Stripe lets the account take charges: the seller's tiers are on sale only then.
    #[sqlx(rename = "stripe_charges_enabled")]
    pub charges_enabled: bool,
    #[sqlx(rename = "stripe_payouts_enabled")]
    pub payouts_enabled: bool,
    /// The seller finished Stripe's onboarding.
    #[sqlx(rename = "stripe_details_submitted")]
    pub details_submitted: bool,
}

/// A seller's API key: `sk_` and 64 hex digits (256 random bits). Shown once, redacted everywhere
/// else.
#[derive(Clone, PartialEq, Eq)]
pub struct SellerKey(String);

impl SellerKey {
    const PREFIX: &'static str = "sk_";

    pub(crate) fn random() -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            hex(&rand::random::<[u8; 32]>())
        ))
    }

    /// Wraps what a caller presented (the `Authorization: Bearer` value), for looking up.
    pub fn presented(key: &str) -> Self {
        Self(key.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its SHA-256: what `seller_key.key_hash` holds.
    pub(crate) fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for SellerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SellerKey([redacted])")
    }
}

/// Invites a seller: the row and its first API key, in one transaction. The key is returned here
/// and never again.
pub async fn invite(
    pool: &PgPool,
    name: &str,
    contact_email: &Email,
    actor: &Actor,
) -> Result<(Seller, SellerKey)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "name",
            "1 to 200 characters, not only spaces",
        ));
    }
    let key = SellerKey::random();
    let seller = db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let seller = sqlx::query_as::<_, Seller>(
            "insert into seller (name, contact_email) values ($1, $2) returning *",
        )
        .bind(name)
        .bind(contact_email.as_str())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("insert into seller_key (key_hash, seller_id) values ($1, $2)")
            .bind(key.hash().as_slice())
            .bind(seller.seller_id)
            .execute(&mut *tx)
            .await?;
        Audit::new(actor, "seller.invited")
            .detail(serde_json::json!({ "seller_id": seller.seller_id, "name": seller.name }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(seller)
    })
    .await?;
    Ok((seller, key))
}

/// Every seller, the house first, then by name.
pub async fn list(pool: &PgPool) -> Result<Vec<Seller>> {
    Ok(
        sqlx::query_as::<_, Seller>("select * from seller order by house desc, name, seller_id")
            .fetch_all(pool)
            .await?,
    )
}

/// Every seller, as [`list`], each with its Xano credential as anyone may read it: `None` for the
/// house (its credential is the service's own, `health`) and for a seller who has set none. The
/// operator's view of whose work waits on a refused token.
pub async fn list_with_xano(pool: &PgPool) -> Result<Vec<(Seller, Option<XanoAccount>)>> {
    let sellers = list(pool).await?;
    let mut accounts: HashMap<Uuid, XanoAccount> = sqlx::query_as::<_, XanoAccount>(
        "select c.seller_id, c.account_id, encode(substr(c.fingerprint, 1, 4), 'hex') as display_id,
                c.set_at, c.checked_at, c.state, c.refused_at, c.last_error,
                (select count(*) from job j
                 where j.state = 'parked' and j.parked_for_seller = c.seller_id) as parked_jobs,
                c.plan
         from seller_xano_credential c",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|account| (account.seller_id, account))
    .collect();
    Ok(sellers
        .into_iter()
        .map(|seller| {
            let xano = accounts.remove(&seller.seller_id);
            (seller, xano)
        })
        .collect())
}

/// The seller `seller`, if there is one.
pub async fn by_id(pool: &PgPool, seller: Uuid) -> Result<Option<Seller>> {
    Ok(
        sqlx::query_as::<_, Seller>("select * from seller where seller_id = $1")
            .bind(seller)
            .fetch_optional(pool)
            .await?,
    )
}

/// The active seller whose unrevoked key `key` is, if any. An unknown, revoked or suspended
/// seller's key are the same `None`.
pub async fn by_key(pool: &PgPool, key: &SellerKey) -> Result<Option<Seller>> {
    if !key.expose().starts_with(SellerKey::PREFIX) {
        return Ok(None);
    }
    Ok(sqlx::query_as::<_, Seller>(
        "select s.* from seller_key k join seller s using (seller_id)
         where k.key_hash = $1 and k.revoked_at is null and s.status = 'active'",
    )
    .bind(key.hash().as_slice())
    .fetch_optional(pool)
    .await?)
}

/// Whether a seller's keys open the seller API and its tiers are on sale (`seller.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    /// Its keys open nothing and its tiers are off sale (`catalog::on_sale_sql!`); what was already
    /// paid for is served as usual.
    Suspended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Self::Active => "seller.reactivated",
            Self::Suspended => "seller.suspended",
        }
    }
}

/// Suspends a seller: from the commit on, its keys open nothing and its tiers are off sale (the
/// catalog, checkout and upgrades read `status`); purchases already paid are served as usual.
/// Suspending a suspended seller changes nothing (and audits nothing). The house cannot be
/// suspended ([`Conflict::HouseNotSuspendable`]); an unknown seller is `NotFound`.
pub async fn suspend(pool: &PgPool, seller: Uuid, actor: &Actor) -> Result<Seller> {
    set_status(pool, seller, Status::Suspended, actor).await
}

/// Reactivates a suspended seller: its keys that were not revoked open the seller API again and its
/// tiers are back on sale (if Stripe still takes its charges). Idempotent, like [`suspend`].
pub async fn reactivate(pool: &PgPool, seller: Uuid, actor: &Actor) -> Result<Seller> {
    set_status(pool, seller, Status::Active, actor).await
}

async fn set_status(pool: &PgPool, seller: Uuid, status: Status, actor: &Actor) -> Result<Seller> {
    db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let current =
            sqlx::query_as::<_, Seller>("select * from seller where seller_id = $1 for update")
                .bind(seller)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound("seller"))?;
        if current.house && status == Status::Suspended {
            return Err(Conflict::HouseNotSuspendable.into());
        }
        if current.status == status.as_str() {
            return Ok(current);
        }
        let updated = sqlx::query_as::<_, Seller>(
            "update seller set status = $2 where seller_id = $1 returning *",
        )
        .bind(seller)
        .bind(status.as_str())
        .fetch_one(&mut *tx)
        .await?;
        Audit::new(actor, status.audit_action())
            .detail(serde_json::json!({ "seller_id": seller, "name": updated.name }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(updated)
    })
    .await
}

/// The listings `seller` owns, by canonical.
pub async fn listings_of(pool: &PgPool, seller: Uuid) -> Result<Vec<Listing>> {
    Ok(sqlx::query_as::<_, Listing>(
        "select * from listing where seller_id = $1 order by canonical",
    )
    .bind(seller)
    .fetch_all(pool)
    .await?)
}

/// A seller's "put this listing": the snippet checked with the seller's own Xano and made
/// sellable, the listing saved as theirs (`listings::save_for`).
pub async fn save_listing(
    market: &Market,
    seller: Uuid,
    spec: &ListingSpec,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    listings::save_for(market, spec, Some(seller), actor).await
}

/// A seller's "put this tier", as an operator's (`tiers::save`), on a listing of theirs only:
/// another seller's is `NotFound`, like one that does not exist.
pub async fn save_tier(
    db: &PgPool,
    seller: Uuid,
    canonical: &str,
    spec: &TierSpec,
    actor: &Actor,
) -> Result<(Listing, TierChange)> {
    listings::by_canonical(db, canonical)
        .await?
        .filter(|l| l.seller_id == seller)
        .ok_or(Error::NotFound("listing"))?;
    tiers::save(db, canonical, spec, actor).await
}
