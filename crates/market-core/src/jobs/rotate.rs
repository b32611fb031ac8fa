//! Rotating a purchase's token (`rotation`): each step safe to run again, the finish fenced.
//!
//! 1. Reserve the new token (recorded on the rotation): the oldest of the tier's pool, else one
//!    minted for it (after an earlier attempt, reconcile first: a mint whose answer was lost is
//!    adopted into the pool rather than minted twice).
//! 2. Read the old token's installs at Xano and write them onto the new one (absolute). An old token
//!    Xano's list does not show, before anything was carried, is retried
//!    ([`JobError::Unlisted`]): our own count may be behind the buyer's installs.
//! 3. Delete the old token at Xano.
//! 4. One transaction under the lease: old `revoked`, new `assigned`, rotation `done`, the buyer's
//!    message queued. If the purchase was closed meanwhile (refund, dispute, operator), the rotation
//!    is `cancelled` and the reserved token retired instead.

use uuid::Uuid;

use super::error::{JobError, lease_still_held, unlisted};
use crate::audit::{Actor, Audit};
use crate::keys::{self, SealedToken};
use crate::payments::lock;
use crate::queue::{self, Job, JobKind};
use crate::{ListingId, Market, PurchaseId, TierId, TokenId, letters, reconcile};
use crate::{accounts, seller_xano};

/// What the job reads of its rotation once.
#[derive(sqlx::FromRow)]
struct Subject {
    purchase_id: PurchaseId,
    old_token_id: TokenId,
    new_token_id: Option<TokenId>,
    state: String,
    listing_id: ListingId,
    canonical: String,
    tier_id: TierId,
    max_installs: i64,
}

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let rotation: Uuid = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad rotation id".into()))?;
    let Some(subject) = sqlx::query_as::<_, Subject>(
        "select r.purchase_id, r.old_token_id, r.new_token_id, r.state,
                it.listing_id, l.canonical, it.tier_id, it.max_installs
         from token_rotation r
         join install_token it on it.install_token_id = r.old_token_id
         join listing l on l.listing_id = it.listing_id
         where r.rotation_id = $1",
    )
    .bind(rotation)
    .fetch_optional(&market.db)
    .await?
    else {
        return Ok(());
    };
    if subject.state != "pending" {
        return Ok(());
    }
    let new = match subject.new_token_id {
        Some(new) => new,
        None => reserve(market, job, rotation, &subject).await?,
    };

    let old_state: String =
        sqlx::query_scalar("select state::text from install_token where install_token_id = $1")
            .bind(subject.old_token_id)
            .fetch_one(&market.db)
            .await?;
    let carried = if old_state == "assigned" {
        let old = keys::open_stored(&market.db, &market.envelope, subject.old_token_id).await?;
        let new_value = keys::open_stored(&market.db, &market.envelope, new).await?;
        // Installs as Xano counts them now.
        let xano = accounts::for_listing(market, subject.listing_id).await?;
        let listed = xano.client.tokens(&subject.canonical).await?;
        let stored: i64 = sqlx::query_scalar(
            "select current_installs from install_token where install_token_id = $1",
        )
        .bind(subject.old_token_id)
        .fetch_one(&market.db)
        .await?;
        // An earlier attempt may have deleted the old token after recording what it carried.
        let recorded: Option<i64> = sqlx::query_scalar(
            "select installs_carried from token_rotation where rotation_id = $1",
        )
        .bind(rotation)
        .fetch_one(&market.db)
        .await?;
        let listed_old = listed.iter().find(|t| t.token.expose() == old.expose());
        let at_xano = match (listed_old, recorded) {
            (Some(t), _) => t.current_installs,
            // Deleted by the earlier attempt, after it recorded what it carried.
            (None, Some(carried)) => carried,
            // Not listed, nothing carried yet: a list cut short, or a token gone. Our last count
            // could be behind the installs the buyer made since.
            (None, None) => return Err(unlisted(market, subject.listing_id).await),
        };
        let used = at_xano
            .max(stored)
            .max(recorded.unwrap_or(0))
            .min(subject.max_installs);
        lease_still_held(market, job).await?;
        xano.client
            .update_token(&subject.canonical, &new_value, subject.max_installs, used)
            .await?;
        record_carried(market, job, rotation, used).await?;
        fail::fail_point!("rotation_before_old_deleted");
        xano.client.delete_token(&subject.canonical, &old).await?;
        seller_xano::record_success(market, &xano).await?;
        Some(used)
    } else {
        None
    };
    finish(market, job, rotation, &subject, new, carried).await
}

/// What the new token was given, recorded before the old one is deleted (fenced).
async fn record_carried(
    market: &Market,
    job: &Job,
    rotation: Uuid,
    used: i64,
) -> Result<(), JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    sqlx::query("update token_rotation set installs_carried = $2 where rotation_id = $1")
        .bind(rotation)
        .bind(used)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Step 1: a token held for this rotation, recorded on it (fenced).
async fn reserve(
    market: &Market,
    job: &Job,
    rotation: Uuid,
    subject: &Subject,
) -> Result<TokenId, JobError> {
    if job.attempt > 1 {
        reconcile::listing(market, subject.listing_id, &Actor::System).await?;
    }
    if let Some(token) = reserve_from_pool(market, job, rotation, subject.tier_id).await? {
        return Ok(token);
    }
    let xano = accounts::for_listing(market, subject.listing_id).await?;
    let minted = xano
        .client
        .create_token(&subject.canonical, subject.max_installs)
        .await?;
    seller_xano::record_success(market, &xano).await?;
    let sealed = SealedToken::new(&market.envelope, subject.listing_id, &minted.token)?;
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        // The token is at Xano and not ours to hold: the pool takes it (reconciliation would too).
        return Err(JobError::LostLease);
    }
    let token = sqlx::query_scalar::<_, TokenId>(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, current_installs, state, origin, reserved_for)
         values ($1, $2, $3, $4, $5, $6, $7, 'reserved', 'minted', $8)
         returning install_token_id",
    )
    .bind(subject.listing_id)
    .bind(subject.tier_id)
    .bind(minted.max_installs)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(minted.current_installs)
    .bind(rotation)
    .fetch_one(&mut *tx)
    .await?;
    record_reserved(&mut tx, rotation, token).await?;
    Audit::new(&Actor::System, "xano.token_created")
        .listing(subject.listing_id)
        .tier(subject.tier_id)
        .token(token)
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(token)
}

async fn reserve_from_pool(
    market: &Market,
    job: &Job,
    rotation: Uuid,
    tier: TierId,
) -> Result<Option<TokenId>, JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    // Every pool token of a tier carries the tier's installs (`check_pool_token_limits_are_the_tier`):
    // asking for them too restricts nothing, and lets the pool's index (tier, installs, id) give
    // the oldest token first instead of sorting the tier's pool.
    let token = sqlx::query_scalar::<_, TokenId>(
        "update install_token set state = 'reserved', reserved_for = $2
         where install_token_id = (select it.install_token_id from install_token it
                                   join tier t using (tier_id)
                                   where it.tier_id = $1 and it.state = 'available'
                                     and it.max_installs = t.max_installs
                                   order by it.install_token_id limit 1
                                   for update of it skip locked)
         returning install_token_id",
    )
    .bind(tier)
    .bind(rotation)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(token) = token else {
        return Ok(None);
    };
    record_reserved(&mut tx, rotation, token).await?;
    tx.commit().await?;
    Ok(Some(token))
}

async fn record_reserved(
    conn: &mut sqlx::PgConnection,
    rotation: Uuid,
    token: TokenId,
) -> Result<(), JobError> {
    sqlx::query("update token_rotation set new_token_id = $2 where rotation_id = $1")
        .bind(rotation)
        .bind(token)
        .execute(conn)
        .await?;
    Ok(())
}

/// Step 4, under the lease: the swap, or the cancellation when the purchase closed meanwhile.
async fn finish(
    market: &Market,
    job: &Job,
    rotation: Uuid,
    subject: &Subject,
    new: TokenId,
    carried: Option<i64>,
) -> Result<(), JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    // Lock order as on every payment path: the purchase before its tokens.
    let purchase = lock(&mut tx, subject.purchase_id).await?;
    let revoked = match carried {
        Some(_) => sqlx::query(
            "update install_token set state = 'revoked', released_at = now()
             where install_token_id = $1 and state = 'assigned'",
        )
        .bind(subject.old_token_id)
        .execute(&mut *tx)
        .await?
        .rows_affected(),
        None => 0,
    };
    let swap = revoked == 1 && purchase.is_some_and(|p| p.status.may_hold_a_token());
    if swap {
        sqlx::query(
            "update install_token
             set state = 'assigned', reserved_for = null, purchase_id = $2, assigned_at = now(),
                 current_installs = $3, max_installs = $4
             where install_token_id = $1 and state = 'reserved'",
        )
        .bind(new)
        .bind(subject.purchase_id)
        .bind(carried)
        // What step 2 wrote at Xano: the old token's limit, the purchase's entitlement (an upgrade
        // waits for a rotation, so it cannot have changed since).
        .bind(subject.max_installs)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update token_rotation set state = 'done', installs_carried = $2, finished_at = now()
             where rotation_id = $1",
        )
        .bind(rotation)
        .bind(carried)
        .execute(&mut *tx)
        .await?;
        letters::queue_token_rotated(&mut tx, subject.purchase_id, rotation).await?;
        Audit::new(&Actor::System, "token.rotated")
            .purchase(subject.purchase_id)
            .token(new)
            .detail(serde_json::json!({ "rotation_id": rotation, "old_token_id": subject.old_token_id, "installs_carried": carried }))
            .write(&mut tx)
            .await?;
    } else {
        // The purchase was closed (its token revoked by the refund or dispute) before the swap:
        // nothing to give, and the reserved token goes.
        sqlx::query(
            "update install_token set state = 'retiring', reserved_for = null
             where install_token_id = $1 and state = 'reserved'",
        )
        .bind(new)
        .execute(&mut *tx)
        .await?;
        queue::enqueue(&mut tx, JobKind::DeleteToken, &new.to_string()).await?;
        sqlx::query(
            "update token_rotation set state = 'cancelled', finished_at = now() where rotation_id = $1",
        )
        .bind(rotation)
        .execute(&mut *tx)
        .await?;
        Audit::new(&Actor::System, "token.rotation_cancelled")
            .purchase(subject.purchase_id)
            .detail(serde_json::json!({ "rotation_id": rotation }))
            .write(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
