//! The replenisher: mints tokens until a tier's pool reaches its target.
//!
//! At most one runs per tier across all instances: the job table allows one live job per subject,
//! and the lease is renewed before every Xano call, so a worker that lost it stops at once. Each token
//! is recorded in a transaction of its own right after Xano answers. A create whose outcome is
//! unknown (timeout, 5xx) ends the run; the next attempt reconciles the listing first, which adopts
//! the token if Xano did create it.

use chrono::Utc;

use super::error::JobError;
use crate::audit::{Actor, Audit};
use crate::queue::{self, Job};
use crate::{Market, TierId, pool, reconcile, tiers};
use crate::{accounts, seller_xano};

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let tier_id: TierId = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad tier id".into()))?;
    let started_at = Utc::now();
    let mut minted = 0u32;
    let result = replenish(market, job, tier_id, &mut minted).await;

    // One line per run in the audit log: when the pool was refilled, by which claim, with how many
    // tokens. It also lets tests check that runs for one tier never overlap.
    let mut conn = market.db.acquire().await?;
    Audit::new(&Actor::System, "pool.replenish_run")
        .tier(tier_id)
        .detail(serde_json::json!({
            "job_id": job.job_id,
            "attempt": job.attempt,
            "started_at": started_at,
            "finished_at": Utc::now(),
            "minted": minted,
            "outcome": match &result { Ok(()) => "done".to_owned(), Err(e) => e.to_string() },
        }))
        .write(&mut conn)
        .await?;
    result
}

async fn replenish(
    market: &Market,
    job: &Job,
    tier_id: TierId,
    minted: &mut u32,
) -> Result<(), JobError> {
    let (tier, canonical) = {
        let mut conn = market.db.acquire().await?;
        let tier = tiers::by_id(&mut conn, tier_id).await?;
        let listing = crate::listings::by_id(&mut conn, tier.listing_id).await?;
        (tier, listing.canonical)
    };
    if !tier.active {
        return Ok(());
    }
    if job.attempt > 1 {
        // An earlier run may have died between Xano's answer and our insert.
        reconcile::listing(market, tier.listing_id, &Actor::System).await?;
    }

    loop {
        let mut conn = market.db.acquire().await?;
        if !queue::heartbeat(&mut conn, job.lease(), market.jobs.lease).await? {
            return Err(JobError::LostLease);
        }
        if pool::available(&mut conn, tier_id).await? >= i64::from(tier.pool_target) {
            return Ok(());
        }
        // No connection is held while Xano answers.
        drop(conn);

        let xano = accounts::for_listing(market, tier.listing_id).await?;
        let token = xano
            .client
            .create_token(&canonical, tier.max_installs)
            .await?;
        fail::fail_point!("after_xano_mint_before_record");
        seller_xano::record_success(market, &xano).await?;
        let mut tx = market.db.begin().await?;
        pool::record_minted(
            &mut tx,
            &market.envelope,
            tier.listing_id,
            tier_id,
            &token,
            &Actor::System,
        )
        .await?;
        tx.commit().await?;
        *minted += 1;
    }
}
