//! The housekeeping sweep: every piece of owed work gets a job, old finished jobs are cleared, and
//! the probes that are due run (this instance's credential marked in use and, when refused, tried
//! again; forbidden snippets; sellers' refused credentials). [`super::Runner::run`] runs it beside
//! the claiming, every `sweep_interval`.

use std::time::Duration;

use crate::queue::JobKind;
use crate::{Market, Result, health, seller_xano};

/// The housekeeping of [`super::Runner::run`]: a sweep every `sweep_interval`, until aborted.
pub(super) async fn housekeeping(market: Market) {
    // (`interval` refuses a zero period.)
    let mut every =
        tokio::time::interval(market.jobs.sweep_interval.max(Duration::from_millis(10)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = sweep_and_probe(&market).await {
            tracing::warn!(error = %e, "housekeeping sweep failed");
        }
    }
}

/// See [`super::Runner::sweep`].
pub(super) async fn sweep_and_probe(market: &Market) -> Result<()> {
    health::touch(market).await?;
    // A probe that fails (Xano down, a credential that cannot be opened) must not cost the owed
    // work its round.
    if let Err(e) = health::probe_if_due(market).await {
        tracing::warn!(error = %e, "probing this instance's refused credential failed");
    }
    if let Err(e) = health::probe_forbidden_listings(market).await {
        tracing::warn!(error = %e, "probing forbidden snippets failed");
    }
    if let Err(e) = seller_xano::probe_refused(market).await {
        tracing::warn!(error = %e, "probing sellers' refused credentials failed");
    }
    sweep(market).await
}

/// What the sweep queues, each unless a job for it is live, or one died less than `revive_after`
/// ago (then the dead job waits for that long, or for an operator: never a loop):
/// - a replenisher for each pool below its low-water mark;
/// - a reconciliation schedule per listing;
/// - a mint for each paid purchase that holds no live token (the pool was empty and its mint job
///   died, or its token went missing at Xano);
/// - a delete for each token that is `revoking` or `retiring` (a refunded buyer's token must not
///   stay live at Xano because one job gave up);
/// - a rotation for each one still pending (a reserved token must not stay out of the pool);
/// - an upgrade application for each purchase owed a token with an upgrade paid and not applied,
///   or holding a token whose limit is not its entitlement (and not only because it is held at
///   what was used);
/// - a send for each message of the last week still queued (its job died in a long SMTP outage).
///
/// Every insert is "unless already live", so several instances sweeping at once queue each job once.
/// A subject with a live job is left out before the insert, not only by its `on conflict`: an
/// insert that conflicts has already run the job's `before insert` trigger, and most subjects have
/// a live job at every sweep (each listing's reconciliation schedule: 10 000 of them on the scale
/// database); the conflict clause still settles two sweeps racing.
pub async fn sweep(market: &Market) -> Result<()> {
    let db = &market.db;
    let revive_after = market.jobs.revive_after.as_secs_f64();
    for (kind, subjects) in [
        (
            JobKind::ReplenishPool,
            // Counts no further than the mark: a full pool costs `pool_low_water` index entries.
            "select t.tier_id::text from tier t join listing l using (listing_id)
             where t.active and l.active
               and (select count(*) from (select from install_token it
                                          where it.tier_id = t.tier_id and it.state = 'available'
                                          limit t.pool_low_water) below) < t.pool_low_water",
        ),
        (
            JobKind::ReconcileListing,
            "select listing_id::text from listing",
        ),
        (
            JobKind::MintForPurchase,
            "select p.purchase_id::text from purchase p
             where p.status in ('paid', 'reinstated') and p.upgrade_of is null
               and not exists (select 1 from install_token it
                               where it.purchase_id = p.purchase_id
                                 and it.state in ('assigned', 'revoking'))
             union
             select p.purchase_id::text
             from install_token gone join purchase p using (purchase_id)
             where gone.state = 'missing' and p.status = 'fulfilled'
               and not exists (select 1 from install_token it
                               where it.purchase_id = p.purchase_id
                                 and it.state in ('assigned', 'revoking'))",
        ),
        (
            JobKind::DeleteToken,
            "select install_token_id::text from install_token
             where state in ('revoking', 'retiring')",
        ),
        (
            JobKind::RotateToken,
            "select rotation_id::text from token_rotation where state = 'pending'",
        ),
        (
            JobKind::ApplyUpgrade,
            "select u.upgrade_of::text from purchase u join purchase b on b.purchase_id = u.upgrade_of
             where u.status = 'paid' and b.status in ('paid', 'fulfilled', 'reinstated')
             union
             select p.purchase_id::text
             from purchase p join install_token it on it.purchase_id = p.purchase_id and it.state = 'assigned'
             where exists (select 1 from purchase u where u.upgrade_of = p.purchase_id)
               and p.max_installs <> purchase_entitlement(p.purchase_id)
               and (p.max_installs < purchase_entitlement(p.purchase_id)
                    or p.max_installs > it.current_installs)",
        ),
        (
            JobKind::SendMail,
            "select mail_id::text from mail_message
             where state = 'queued' and created_at > now() - interval '7 days'",
        ),
    ] {
        let queued = sqlx::query(&format!(
            "insert into job (kind, subject)
             select $1, owed.subject from ({subjects}) as owed (subject)
             where not exists (select 1 from job live
                               where live.kind = $1 and live.subject = owed.subject
                                 and live.state in ('queued', 'running', 'parked'))
               and not exists (select 1 from job dead
                               where dead.kind = $1 and dead.subject = owed.subject
                                 and dead.state = 'dead'
                                 and dead.finished_at > now() - make_interval(secs => $2))
             on conflict (kind, subject) where state in ('queued', 'running', 'parked') do nothing"
        ))
        .bind(kind)
        .bind(revive_after)
        .execute(db)
        .await?
        .rows_affected();
        if queued > 0
            && matches!(
                kind,
                JobKind::MintForPurchase
                    | JobKind::DeleteToken
                    | JobKind::SendMail
                    | JobKind::RotateToken
                    | JobKind::ApplyUpgrade
            )
        {
            tracing::warn!(
                job.kind = kind.as_str(),
                queued,
                "the sweep queued owed work that had no job"
            );
        }
    }
    clear_finished(market).await
}

/// Deletes the jobs finished longer than `keep_finished` ago.
async fn clear_finished(market: &Market) -> Result<()> {
    sqlx::query(
        "delete from job where state in ('done', 'dead')
         and finished_at < now() - make_interval(secs => $1)",
    )
    .bind(market.jobs.keep_finished.as_secs_f64())
    .execute(&market.db)
    .await?;
    Ok(())
}
