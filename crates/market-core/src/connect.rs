//! Sellers paid through Stripe Connect (migration 25): each seller onboards an Express connected
//! account; a sale of theirs is a destination charge that moves the money to that account and
//! takes the platform's fee back as an application fee.
//!
//! The service never decides on its own that a seller can be paid: Stripe does. What Stripe last
//! said about the account (`account.updated`, [`apply_account`]) is kept on the seller row, and a
//! seller's tiers are on sale only while it says charges are enabled (`purchases::create` and the
//! catalog read the same column). The house, the operator's own seller, is paid directly and never
//! has an account ([`Conflict::HouseNotConnected`]).
//!
//! A refunded sale must not leave the money with the seller. The operator's refund asks Stripe to
//! reverse the transfer and refund the fee with it; a refund made elsewhere (Stripe's dashboard) may
//! not have, and an answer may be lost. So every refunded payment with a transfer is checked at
//! Stripe, a minute apart, until its transfer is reversed and its fee refunded ([`take_back`]).
//!
//! Creating the account is the one step that could leave a stray at Stripe: a crash between
//! Stripe's answer and the row update. The provider's idempotency key is the seller, so a retry
//! within Stripe's window (24 hours) gets the same account back, and the row keeps the first one
//! written (`coalesce`): two concurrent onboarding requests end with one account.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::provider::{ConnectAccounts, HostedLink};
use crate::sellers::Seller;
use crate::{Conflict, Error, FeeRate, PurchaseId, Result, db};

/// What an `account.updated` event says about a connected account.
#[derive(Clone, Debug)]
pub struct AccountFacts {
    pub account: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// When Stripe made the event: a fact older than the one recorded changes nothing.
    pub as_of: DateTime<Utc>,
}

/// The seller as recorded.
async fn seller(pool: &PgPool, seller: Uuid) -> Result<Seller> {
    sqlx::query_as::<_, Seller>("select * from seller where seller_id = $1")
        .bind(seller)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("seller"))
}

/// Where the seller goes to onboard (or to update what Stripe asks of them): the seller's connected
/// account, made on the first call, and a fresh single-use link to Stripe's hosted onboarding.
pub async fn onboarding(
    pool: &PgPool,
    seller: &Seller,
    accounts: &impl ConnectAccounts,
    refresh_url: &str,
    return_url: &str,
    actor: &Actor,
) -> Result<HostedLink> {
    // Read afresh: the caller's copy may predate an account made by a concurrent request.
    let seller = self::seller(pool, seller.seller_id).await?;
    if seller.house {
        return Err(Conflict::HouseNotConnected.into());
    }
    let id = if let Some(id) = seller.stripe.account_id {
        id
    } else {
        let created = accounts
            .create_account(seller.seller_id, seller.contact_email.as_deref())
            .await
            .map_err(Error::Payments)?;
        db::retry_transient(|| record_account(pool, seller.seller_id, &created, actor)).await?
    };
    accounts
        .onboarding_link(&id, refresh_url, return_url)
        .await
        .map_err(Error::Payments)
}

/// Keeps the first account recorded for the seller (a concurrent request's, if it won) and
/// returns it.
async fn record_account(
    pool: &PgPool,
    seller: Uuid,
    created: &str,
    actor: &Actor,
) -> Result<String> {
    let mut tx = pool.begin().await?;
    let (kept, fresh) = sqlx::query_as::<_, (String, bool)>(
        "update seller set stripe_account_id = coalesce(stripe_account_id, $2)
         where seller_id = $1
         returning stripe_account_id, stripe_account_id = $2",
    )
    .bind(seller)
    .bind(created)
    .fetch_one(&mut *tx)
    .await?;
    if fresh {
        Audit::new(actor, "seller.stripe_account_created")
            .detail(serde_json::json!({ "seller_id": seller, "account": kept }))
            .write(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(kept)
}

/// A single-use link into the seller's Express dashboard (payouts, balance), once onboarded.
pub async fn login_link(
    pool: &PgPool,
    seller: Uuid,
    accounts: &impl ConnectAccounts,
) -> Result<HostedLink> {
    let seller = self::seller(pool, seller).await?;
    if seller.house {
        return Err(Conflict::HouseNotConnected.into());
    }
    let onboarded = seller.stripe.details_submitted;
    let Some(id) = seller.stripe.account_id.filter(|_| onboarded) else {
        return Err(Conflict::StripeNotOnboarded.into());
    };
    accounts.login_link(&id).await.map_err(Error::Payments)
}

/// Records what Stripe says about a connected account, unless a newer word is already recorded.
/// Returns the seller, or `None` for an account that is no seller's (another platform's test, or
/// one made by hand): nothing changes then.
pub(crate) async fn apply_account(
    conn: &mut PgConnection,
    facts: &AccountFacts,
    actor: &Actor,
) -> Result<Option<Uuid>> {
    let before = sqlx::query_as::<_, (Uuid, bool, bool, Option<DateTime<Utc>>)>(
        "select seller_id, stripe_charges_enabled, stripe_payouts_enabled, stripe_read_at
         from seller where stripe_account_id = $1 for update",
    )
    .bind(&facts.account)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((seller, charges_before, payouts_before, read_at)) = before else {
        return Ok(None);
    };
    if read_at.is_some_and(|read_at| read_at > facts.as_of) {
        return Ok(Some(seller));
    }
    sqlx::query(
        "update seller set stripe_charges_enabled = $2, stripe_payouts_enabled = $3,
                           stripe_details_submitted = $4, stripe_read_at = $5
         where seller_id = $1",
    )
    .bind(seller)
    .bind(facts.charges_enabled)
    .bind(facts.payouts_enabled)
    .bind(facts.details_submitted)
    .bind(facts.as_of)
    .execute(&mut *conn)
    .await?;
    if charges_before != facts.charges_enabled || payouts_before != facts.payouts_enabled {
        Audit::new(actor, "seller.stripe_account_updated")
            .detail(serde_json::json!({
                "seller_id": seller,
                "account": facts.account,
                "charges_enabled": facts.charges_enabled,
                "payouts_enabled": facts.payouts_enabled,
            }))
            .write(conn)
            .await?;
    }
    Ok(Some(seller))
}

/// Sets (or, with `None`, clears) the seller's own platform fee; sales already started keep theirs.
pub async fn set_fee(
    pool: &PgPool,
    seller: Uuid,
    fee: Option<FeeRate>,
    actor: &Actor,
) -> Result<Seller> {
    db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let updated = sqlx::query_as::<_, Seller>(
            "update seller set platform_fee_bps = $2 where seller_id = $1 returning *",
        )
        .bind(seller)
        .bind(fee.map(|fee| i32::from(fee.bps())))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("seller"))?;
        Audit::new(actor, "seller.platform_fee_set")
            .detail(serde_json::json!({
                "seller_id": seller,
                "platform_fee_bps": fee.map(FeeRate::bps),
            }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(updated)
    })
    .await
}

/// Payments checked per call: Stripe's rate limit is the platform's.
const TAKE_BACK_PER_ROUND: i64 = 20;

/// Claims refunded payments whose transfer is not known to be back (each at most once a minute,
/// across instances: `for update skip locked`, stamped), makes sure Stripe reversed the transfer and
/// refunded the fee, and records it. A payment Stripe fails on is tried again next round. Returns
/// how many were recorded back.
pub async fn take_back(pool: &PgPool, accounts: &impl ConnectAccounts) -> Result<u64> {
    let claimed = sqlx::query_as::<_, (String, String, Option<String>, Option<PurchaseId>)>(
        "update stripe_payment set connect_checked_at = now()
         where payment_intent_id in (
             select payment_intent_id from stripe_payment
             where fully_refunded and transfer_id is not null and connect_reversed_at is null
               and (connect_checked_at is null or connect_checked_at < now() - interval '1 minute')
             order by connect_checked_at nulls first
             limit $1
             for update skip locked)
         returning payment_intent_id, transfer_id, application_fee_id, purchase_id",
    )
    .bind(TAKE_BACK_PER_ROUND)
    .fetch_all(pool)
    .await?;
    let mut back = 0;
    for (payment_intent, transfer, fee, purchase) in claimed {
        if let Err(e) = accounts.take_back(&transfer, fee.as_deref()).await {
            tracing::warn!(stripe.payment_intent = %payment_intent, error = %e, "a refunded seller's transfer could not be taken back yet; next round");
            continue;
        }
        db::retry_transient(|| record_taken_back(pool, &payment_intent, purchase)).await?;
        back += 1;
    }
    Ok(back)
}

async fn record_taken_back(
    pool: &PgPool,
    payment_intent: &str,
    purchase: Option<PurchaseId>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let recorded = sqlx::query(
        "update stripe_payment set connect_reversed_at = now()
         where payment_intent_id = $1 and connect_reversed_at is null",
    )
    .bind(payment_intent)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded == 1 {
        let mut audit = Audit::new(&Actor::System, "payment.transfer_taken_back")
            .detail(serde_json::json!({ "payment_intent": payment_intent }));
        if let Some(purchase) = purchase {
            audit = audit.purchase(purchase);
        }
        audit.write(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
