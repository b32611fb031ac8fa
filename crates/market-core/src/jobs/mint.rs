//! The empty-pool fallback: a paid purchase found no token in its tier's pool, so this job gets it
//! one.
//!
//! Claim with lease → call Xano holding no transaction → fenced finish:
//! 1. if this is not the first attempt, an earlier one may have created a token whose answer was lost
//!    (timeout, 5xx, crash): reconcile the listing first, which adopts such a token into the pool;
//! 2. try the pool again (the replenisher or the reconciliation may have filled it);
//! 3. create one token at Xano;
//! 4. in one transaction, check that this worker still holds the lease and the purchase still needs a
//!    token, and assign it. A token this run cannot assign (lease lost, purchase refunded or served
//!    meanwhile) goes into the tier's pool instead: tokens are fungible, and none is left untracked.

use super::error::JobError;
use crate::audit::{Actor, Audit};
use crate::keys::SealedToken;
use crate::payments::{Effect, fulfil_locked, lock, transition};
use crate::queue::{self, Job};
use crate::{
    Conflict, Market, PurchaseEvent, PurchaseId, PurchaseStatus, TokenId, pool, reconcile,
};
use crate::{accounts, seller_xano};

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let purchase_id: PurchaseId = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad purchase id".into()))?;
    let (listing, canonical, tier, max_installs) =
        sqlx::query_as::<_, (crate::ListingId, String, crate::TierId, i64)>(
            "select l.listing_id, l.canonical, p.tier_id, p.max_installs
         from purchase p join tier t using (tier_id) join listing l using (listing_id)
         where p.purchase_id = $1",
        )
        .bind(purchase_id)
        .fetch_optional(&market.db)
        .await?
        .ok_or_else(|| JobError::Permanent("no such purchase".into()))?;

    if job.attempt > 1 {
        reconcile::listing(market, listing, &Actor::System).await?;
    }
    if from_pool(market, job, purchase_id).await? {
        return Ok(());
    }

    fail::fail_point!("before_xano_mint");
    let xano = accounts::for_listing(market, listing).await?;
    let token = xano.client.create_token(&canonical, max_installs).await?;
    fail::fail_point!("after_xano_mint_before_record");
    seller_xano::record_success(market, &xano).await?;

    let mut tx = market.db.begin().await?;
    let still_ours = queue::hold(&mut tx, job.lease()).await?;
    let purchase = if still_ours {
        lock(&mut tx, purchase_id).await?
    } else {
        None
    };
    let needs_token = match &purchase {
        Some(p) if p.status.is_owed_a_token() => !holds_live_token(&mut tx, purchase_id).await?,
        _ => false,
    };
    let Some(purchase) = purchase.filter(|_| needs_token) else {
        // Not ours to assign any more: the token joins the pool (or is retired with its tier).
        pool::record_minted(
            &mut tx,
            &market.envelope,
            listing,
            tier,
            &token,
            &Actor::System,
        )
        .await?;
        tx.commit().await?;
        return if still_ours {
            Ok(())
        } else {
            Err(JobError::LostLease)
        };
    };

    let sealed = SealedToken::new(&market.envelope, listing, &token.token)?;
    let token_id = sqlx::query_scalar::<_, TokenId>(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, current_installs, state, origin,
                                    purchase_id, assigned_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'assigned', 'minted', $8, now())
         on conflict (listing_id, token_fingerprint) do update
             set state = 'assigned', purchase_id = excluded.purchase_id, assigned_at = now()
             where install_token.state = 'available'
         returning install_token_id",
    )
    .bind(listing)
    .bind(tier)
    .bind(token.max_installs)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(token.current_installs)
    .bind(purchase_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(token_id) = token_id else {
        // Reconciliation adopted the token and another purchase took it from the pool meanwhile.
        // Nothing is lost; the next attempt serves this purchase from the pool or mints again.
        tx.commit().await?;
        return Err(JobError::Core(Conflict::TokenTaken.into()));
    };
    Audit::new(&Actor::System, "xano.token_created")
        .listing(listing)
        .tier(tier)
        .token(token_id)
        .write(&mut tx)
        .await?;
    Audit::new(&Actor::System, "token.assigned")
        .purchase(purchase_id)
        .token(token_id)
        .write(&mut tx)
        .await?;
    if purchase.status == PurchaseStatus::Paid {
        transition(&mut tx, &purchase, PurchaseEvent::Fulfilled, &Actor::System).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Serves the purchase from the pool if it still needs a token and the pool has one. `true` when
/// nothing more is to be done.
async fn from_pool(market: &Market, job: &Job, purchase_id: PurchaseId) -> Result<bool, JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    let Some(purchase) = lock(&mut tx, purchase_id).await? else {
        return Ok(true);
    };
    if !purchase.status.is_owed_a_token() {
        return Ok(true);
    }
    let effect = fulfil_locked(&mut tx, &purchase, &Actor::System).await?;
    tx.commit().await?;
    Ok(matches!(
        effect,
        Effect::Fulfilled { .. } | Effect::AlreadyFulfilled | Effect::UpgradeQueued
    ))
}

async fn holds_live_token(
    conn: &mut sqlx::PgConnection,
    purchase: PurchaseId,
) -> Result<bool, JobError> {
    Ok(sqlx::query_scalar::<_, bool>(
        "select exists (select 1 from install_token where purchase_id = $1 and state in ('assigned', 'revoking'))",
    )
    .bind(purchase)
    .fetch_one(conn)
    .await?)
}
