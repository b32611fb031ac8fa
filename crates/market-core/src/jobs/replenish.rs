//! The replenisher: mints tokens until a tier's pool reaches its target, as fast as the account's
//! Xano rate limit allows.
//!
//! **Several creates in flight.** The account's client paces every send (`master_api`'s limiter:
//! never more than `requests` in any window of `per`), so the replenisher only has to keep enough
//! creates in flight that Xano's latency does not waste the budget. One at a time, a refill ran at
//! one token per round trip: at 300 ms a call, 3.3 a second, a third of a paid plan's 100 per 10 s
//! (the free plan's 10 per 20 s was never bound by latency: ten round trips fit in its window). So
//! up to a window's `requests` are in flight together (`MAX_IN_FLIGHT` at most,
//! `UNLIMITED_IN_FLIGHT` without a limit), and never more than the pool lacks: creates in flight
//! count as tokens made. More would only queue in the limiter, each call waiting longer after the
//! lease was renewed for it; fewer wastes a window whenever `requests × latency` exceeds it. The
//! price: a mint for a buyer whose tier ran dry queues behind the window's creates, one window at
//! most.
//!
//! **One run per tier, and no token lost.** At most one runs per tier across all instances: the job
//! table allows one live job per subject, and the lease is renewed before each round of creates
//! (once they flow, one create is sent per answer), so a worker that lost it starts no new create
//! (one already waiting in the limiter for its slot still goes out). Each token is recorded in a
//! transaction of its own as soon as Xano answers; no connection is held while waiting. The first
//! failure (a lost lease, a refusal that `refusal` classifies as before, a create whose outcome is
//! unknown: timeout, 5xx) stops new creates, but the ones already in flight are awaited and their
//! tokens recorded before the run ends with it. The next attempt reconciles the listing first,
//! which adopts a token whose answer was lost. A takeover can leave the pool above its target by
//! what the worker that lost the lease had in flight: tokens are fungible, the next sales use them.

use chrono::Utc;
use master_api::{InstallToken, RateLimit};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::error::JobError;
use crate::accounts::{self, XanoOf};
use crate::audit::{Actor, Audit};
use crate::queue::{self, Job};
use crate::tiers::Tier;
use crate::{Market, TierId, pool, reconcile, seller_xano, tiers};

/// Creates in flight at once, at most, whatever the account's limit (a paid plan's window can be
/// large: a thousand connections to Xano would not refill any faster).
const MAX_IN_FLIGHT: usize = 32;

/// Creates in flight at once for an account without a client-side limit.
const UNLIMITED_IN_FLIGHT: usize = 8;

/// A create's answer, with the client it went through (whose credential it proves healthy).
type Answer = (XanoOf, Result<InstallToken, master_api::Error>);

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

/// How many creates to keep in flight for an account paced by `limit`.
fn in_flight_cap(limit: RateLimit) -> usize {
    limit.limit().map_or(UNLIMITED_IN_FLIGHT, |(requests, _)| {
        usize::try_from(requests).map_or(MAX_IN_FLIGHT, |r| r.clamp(1, MAX_IN_FLIGHT))
    })
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

    let mut creates: JoinSet<Answer> = JoinSet::new();
    // The first failure. Once there is one, nothing new is sent; what is in flight is recorded.
    let mut failed: Option<JobError> = None;
    loop {
        if failed.is_none()
            && let Err(e) = send_more(market, job, &tier, &canonical, &mut creates).await
        {
            failed = Some(e);
        }
        let Some(joined) = creates.join_next().await else {
            break;
        };
        let (xano, answer) = match joined {
            Ok(answer) => answer,
            // Never aborted: a create task can only have panicked; carry the panic here, as when
            // the call ran in this task.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let recorded = match answer {
            Ok(token) => {
                fail::fail_point!("after_xano_mint_before_record");
                record(market, &xano, &tier, &token, minted).await
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = recorded {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Renews the lease, then sends as many creates as the pool lacks (counting those in flight), up
/// to the account's cap. Sends nothing once the pool is full or the tier is off sale.
async fn send_more(
    market: &Market,
    job: &Job,
    tier: &Tier,
    canonical: &str,
    creates: &mut JoinSet<Answer>,
) -> Result<(), JobError> {
    let mut conn = market.db.acquire().await?;
    if !queue::heartbeat(&mut conn, job.lease(), market.jobs.lease).await? {
        return Err(JobError::LostLease);
    }
    // The tier is read again: taken off sale or given a lower target meanwhile, it gets no more.
    let (active, target, available) = sqlx::query_as::<_, (bool, i32, i64)>(
        "select t.active, t.pool_target,
                (select count(*) from install_token it
                 where it.tier_id = t.tier_id and it.state = 'available')
         from tier t where t.tier_id = $1",
    )
    .bind(tier.tier_id)
    .fetch_one(&mut *conn)
    .await?;
    // No connection is held while Xano answers.
    drop(conn);

    let in_flight = creates.len();
    let missing = i64::from(target) - available - i64::try_from(in_flight).unwrap_or(i64::MAX);
    if !active || missing <= 0 {
        return Ok(());
    }
    let xano = accounts::for_listing(market, tier.listing_id).await?;
    let room = in_flight_cap(xano.client.rate_limit()).saturating_sub(in_flight);
    let count = usize::try_from(missing).map_or(room, |missing| missing.min(room));
    for _ in 0..count {
        let xano = xano.clone();
        let canonical = canonical.to_owned();
        let max_installs = tier.max_installs;
        creates.spawn(
            async move {
                let answer = xano.client.create_token(&canonical, max_installs).await;
                (xano, answer)
            }
            .in_current_span(),
        );
    }
    Ok(())
}

/// Records one token Xano created for `tier`'s pool, in a transaction of its own.
async fn record(
    market: &Market,
    xano: &XanoOf,
    tier: &Tier,
    token: &InstallToken,
    minted: &mut u32,
) -> Result<(), JobError> {
    let mut tx = market.db.begin().await?;
    pool::record_minted(
        &mut tx,
        &market.envelope,
        tier.listing_id,
        tier.tier_id,
        token,
        &Actor::System,
    )
    .await?;
    tx.commit().await?;
    *minted += 1;
    seller_xano::record_success(market, xano).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_window_of_the_limit_is_in_flight_at_most_and_a_default_without_one() {
        let cap = |requests| in_flight_cap(RateLimit::new(requests, Duration::from_secs(20)));

        assert_eq!(cap(10), 10, "the free plan: its whole window");
        assert_eq!(cap(1), 1);
        assert_eq!(cap(1000), MAX_IN_FLIGHT);
        assert_eq!(in_flight_cap(RateLimit::unlimited()), UNLIMITED_IN_FLIGHT);
    }
}
