//! An upgrade purchase: a purchase of its own that raises another's entitlement (migration 21).
//!
//! It is priced here, by the server: the target tier's price less everything paid so far for the
//! purchase it upgrades (its own price and its applied upgrades'), so a buyer who goes Solo → Team →
//! Agency pays exactly Agency's price in total. Nothing in the request sets the amount.

use sqlx::{PgConnection, PgPool};

use super::row::{Created, Purchase};
use super::split::split;
use crate::audit::{Actor, Audit};
use crate::catalog::on_sale_sql;
use crate::receipt::ReceiptSecret;
use crate::{Conflict, Error, FeeRate, ListingId, Money, PurchaseId, Result, TierId, db};

/// What an upgrade would charge and give, as priced now.
#[derive(Clone, Debug)]
struct Offer {
    listing_id: ListingId,
    price: Money,
    max_installs: i64,
    on_sale: bool,
    canonical: String,
    tier_name: String,
}

/// Creates (or, asked again for the same target while it is unpaid, finds) the pending upgrade of
/// `base` to `target`.
///
/// Refused: a `base` that is itself an upgrade or holds no working token (`not_upgradable`); a
/// target that is not a tier of the same listing with more installs than `base` allows now, in its
/// currency, for more than has been paid (`not_an_upgrade`); another upgrade of `base` unpaid or
/// being applied (`upgrade_in_progress`).
pub async fn create_upgrade(
    pool: &PgPool,
    secret: &ReceiptSecret,
    base: PurchaseId,
    target: TierId,
    fee: FeeRate,
    actor: &Actor,
) -> Result<Created> {
    db::retry_transient(|| create_once(pool, secret, base, target, fee, actor)).await
}

async fn create_once(
    pool: &PgPool,
    secret: &ReceiptSecret,
    base_id: PurchaseId,
    target: TierId,
    fee: FeeRate,
    actor: &Actor,
) -> Result<Created> {
    let mut tx = pool.begin().await?;
    let base =
        sqlx::query_as::<_, Purchase>("select * from purchase where purchase_id = $1 for update")
            .bind(base_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("purchase"))?;
    if base.upgrade_of.is_some() || !holds_working_token(&mut tx, &base).await? {
        return Err(Conflict::NotUpgradable.into());
    }
    let offer = offer(&mut tx, target).await?;
    if let Some(open) = open_upgrade(&mut tx, base_id).await? {
        return if open.tier_id == target && open.status == crate::PurchaseStatus::Pending {
            tx.commit().await?;
            Ok(created(secret, open, &offer, true))
        } else {
            Err(Conflict::UpgradeInProgress.into())
        };
    }
    let base_listing =
        sqlx::query_scalar::<_, ListingId>("select listing_id from tier where tier_id = $1")
            .bind(base.tier_id)
            .fetch_one(&mut *tx)
            .await?;
    let paid_so_far = paid_so_far(&mut tx, &base).await?;
    let difference = offer.price.amount - paid_so_far;
    if offer.listing_id != base_listing
        || offer.max_installs <= base.max_installs
        || offer.price.currency != base.price.currency
        || difference <= 0
    {
        return Err(Conflict::NotAnUpgrade.into());
    }
    if !offer.on_sale {
        return Err(Conflict::TierNotOnSale.into());
    }

    let difference = Money {
        amount: difference,
        currency: offer.price.currency.clone(),
    };
    let (destination, application_fee) = split(&mut tx, target, &difference, fee).await?;

    let purchase_id = PurchaseId::random();
    let receipt_key = secret.key_for(purchase_id);
    let inserted = sqlx::query_as::<_, Purchase>(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, email,
                               receipt_hash, upgrade_of, connect_destination, application_fee_amount)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (upgrade_of) where upgrade_of is not null and status in ('pending', 'paid')
         do nothing
         returning *",
    )
    .bind(purchase_id)
    .bind(target)
    .bind(difference.amount)
    .bind(difference.currency.as_str())
    .bind(offer.max_installs)
    .bind(&base.email)
    .bind(receipt_key.hash().as_slice())
    .bind(base_id)
    .bind(&destination)
    .bind(application_fee)
    .fetch_optional(&mut *tx)
    .await?;
    // The base is locked, so no concurrent request can have inserted one meanwhile.
    let purchase = inserted.ok_or(Error::Conflict(Conflict::UpgradeInProgress))?;
    Audit::new(actor, "purchase.upgrade_requested")
        .purchase(base_id)
        .tier(target)
        .detail(serde_json::json!({
            "upgrade_id": purchase_id,
            "amount": difference.amount,
            "currency": difference.currency.as_str(),
            "max_installs": offer.max_installs,
        }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(created(secret, purchase, &offer, false))
}

fn created(secret: &ReceiptSecret, purchase: Purchase, offer: &Offer, replayed: bool) -> Created {
    Created {
        receipt_key: secret.key_for(purchase.purchase_id),
        purchase,
        canonical: offer.canonical.clone(),
        tier_name: format!("{} (upgrade)", offer.tier_name),
        replayed,
    }
}

async fn holds_working_token(conn: &mut PgConnection, base: &Purchase) -> Result<bool> {
    if !base.status.may_hold_a_token() {
        return Ok(false);
    }
    Ok(sqlx::query_scalar::<_, bool>(
        "select exists (select 1 from install_token where purchase_id = $1 and state = 'assigned')",
    )
    .bind(base.purchase_id)
    .fetch_one(conn)
    .await?)
}

async fn offer(conn: &mut PgConnection, tier: TierId) -> Result<Offer> {
    let (listing_id, amount, currency, max_installs, on_sale, canonical, tier_name) =
        sqlx::query_as::<_, (ListingId, i64, String, i64, bool, String, String)>(concat!(
            "select l.listing_id, t.price_amount, t.currency, t.max_installs, ",
            on_sale_sql!(),
            ", l.canonical, t.name
             from tier t join listing l using (listing_id) join seller s on s.seller_id = l.seller_id
             where t.tier_id = $1"
        ))
        .bind(tier)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("tier"))?;
    Ok(Offer {
        listing_id,
        price: Money::from_columns(amount, &currency)?,
        max_installs,
        on_sale,
        canonical,
        tier_name,
    })
}

/// The upgrade of `base` that is unpaid or being applied, if any.
async fn open_upgrade(conn: &mut PgConnection, base: PurchaseId) -> Result<Option<Purchase>> {
    Ok(sqlx::query_as::<_, Purchase>(
        "select * from purchase where upgrade_of = $1 and status in ('pending', 'paid')",
    )
    .bind(base)
    .fetch_optional(conn)
    .await?)
}

/// What the buyer has paid for `base` so far: its price and its applied upgrades' (less refunds).
async fn paid_so_far(conn: &mut PgConnection, base: &Purchase) -> Result<i64> {
    let upgrades = sqlx::query_scalar::<_, Option<i64>>(
        "select sum(amount - amount_refunded)::bigint from purchase
         where upgrade_of = $1 and status in ('fulfilled', 'reinstated')",
    )
    .bind(base.purchase_id)
    .fetch_one(conn)
    .await?;
    Ok(base.price.amount - base.amount_refunded + upgrades.unwrap_or(0))
}

/// The upgrades of `base`, oldest first.
pub async fn upgrades_of(pool: &PgPool, base: PurchaseId) -> Result<Vec<Purchase>> {
    Ok(sqlx::query_as::<_, Purchase>(
        "select * from purchase where upgrade_of = $1 order by created_at, purchase_id",
    )
    .bind(base)
    .fetch_all(pool)
    .await?)
}
