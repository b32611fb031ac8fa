//! The worker loop of one instance: claim due jobs, run them, record how they ended; and a
//! housekeeping sweep ([`sweep`]) that gives every piece of owed work a job.
//!
//! Every instance runs one [`Runner`]; nothing here assumes it is the only one. The sweep's writes are
//! all "queue unless already queued", so several instances sweeping at once queue each job once.
//!
//! **Sellers share the workers fairly.** A seller whose Xano is slow or rate-limiting holds a worker
//! for as long as its call retries (up to a minute); with nothing to stop it, its jobs took every
//! worker of every instance and another seller's pool refills waited (the chaos suite's seller
//! isolation run found it). So an instance runs at most [`Runner::seller_share`] of its workers
//! on one seller's jobs at a time: it claims one job at a time, leaving out the sellers already at
//! their share. The house's jobs and mail are nobody's share (`job.seller_id` is null for them).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::queue::{self, Finish, Job, JobKind};
use crate::{Market, Result, health, seller_xano};

/// One instance's workers.
#[derive(Debug)]
pub struct Runner {
    market: Market,
    /// This instance's identity in `job.lease_owner`.
    owner: Uuid,
}

impl Runner {
    pub fn new(market: Market) -> Self {
        Self {
            market,
            owner: Uuid::new_v4(),
        }
    }

    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Runs until `shutdown` completes. Then it stops claiming, gives in-flight jobs `grace` to end,
    /// aborts the rest and hands their leases back, so another instance takes them over at once
    /// instead of waiting for the leases to run out.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        tokio::pin!(shutdown);
        let mut in_flight = JoinSet::new();
        let mut running = Shares::default();
        let mut last_sweep: Option<Instant> = None;
        loop {
            if last_sweep.is_none_or(|at| at.elapsed() >= self.market.jobs.sweep_interval) {
                if let Err(e) = self.sweep().await {
                    tracing::warn!(error = %e, "housekeeping sweep failed");
                }
                last_sweep = Some(Instant::now());
            }
            // Once per round, not per claim: claiming is one job at a time (seller fairness).
            let only = match self.only_kinds().await {
                Ok(only) => Some(only),
                Err(e) => {
                    tracing::warn!(error = %e, "reading this instance's credential health failed");
                    None
                }
            };
            while let Some(only) = only
                && in_flight.len() < self.market.jobs.workers
            {
                let busy = running.at(self.seller_share());
                match self.claim(1, &busy, only).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        for job in jobs {
                            running.add(job.seller_id);
                            let market = self.market.clone();
                            in_flight.spawn(async move {
                                let seller = job.seller_id;
                                run_one(&market, job).await;
                                seller
                            });
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed");
                        break;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.market.jobs.poll_interval) => {}
                Some(ended) = in_flight.join_next(), if !in_flight.is_empty() => {
                    running.remove(ended.ok().flatten());
                }
            }
        }

        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                next = in_flight.join_next() => if next.is_none() { break },
            }
        }
        in_flight.abort_all();
        match queue::release_all(&self.market.db, self.owner).await {
            Ok(released) => tracing::info!(released, "job runner stopped; leases handed back"),
            Err(e) => {
                tracing::warn!(error = %e, "could not hand back job leases; they will expire");
            }
        }
    }

    /// Claims and runs due jobs until none is left, one batch at a time. For tests and the CLI: a
    /// deterministic "do all pending work now". Returns how many jobs ran.
    pub async fn drain(&self) -> Result<usize> {
        let mut ran = 0;
        loop {
            match self.run_batch().await? {
                0 => return Ok(ran),
                n => ran += n,
            }
        }
    }

    /// Claims one batch of due jobs (at most one per worker) and runs it to its end. A job that
    /// failed in it is not run again here even when its backoff drew zero, which is what a test
    /// looking at one attempt needs. Returns how many jobs ran.
    pub async fn run_batch(&self) -> Result<usize> {
        let only = self.only_kinds().await?;
        let jobs = self
            .claim(self.market.jobs.workers.max(1), &[], only)
            .await?;
        let ran = jobs.len();
        let mut batch = JoinSet::new();
        for job in jobs {
            let market = self.market.clone();
            batch.spawn(async move { run_one(&market, job).await });
        }
        while batch.join_next().await.is_some() {}
        Ok(ran)
    }

    /// How many of this instance's workers one seller's jobs may hold at once: half, at least one.
    pub fn seller_share(&self) -> usize {
        (self.market.jobs.workers / 2).max(1)
    }

    /// Which jobs this instance may claim now: all (`None`), or, when Xano refuses its credential,
    /// mail alone, since every Xano job would only be handed back: it leaves them to the others
    /// and probes its credential.
    async fn only_kinds(&self) -> Result<Option<JobKind>> {
        if health::refused(&self.market).await? {
            health::probe_if_due(&self.market).await?;
            Ok(Some(JobKind::SendMail))
        } else {
            Ok(None)
        }
    }

    /// Claims up to `limit` jobs (of the kind `only`, if given), none of the sellers in `busy`.
    async fn claim(&self, limit: usize, busy: &[Uuid], only: Option<JobKind>) -> Result<Vec<Job>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        queue::claim_kind(
            &self.market.db,
            self.owner,
            limit,
            self.market.jobs.lease,
            only,
            busy,
        )
        .await
    }

    /// The sweep: work that is owed gets a job, and old finished jobs are cleared away (see
    /// [`sweep`]); this instance's credential is marked in use, and the snippets Xano forbids are
    /// probed when due (`health`), and so are sellers' refused credentials (`seller_xano`).
    pub async fn sweep(&self) -> Result<()> {
        health::touch(&self.market).await?;
        // A probe that fails (Xano down, a credential that cannot be opened) must not cost the
        // owed work its round.
        if let Err(e) = health::probe_forbidden_listings(&self.market).await {
            tracing::warn!(error = %e, "probing forbidden snippets failed");
        }
        if let Err(e) = seller_xano::probe_refused(&self.market).await {
            tracing::warn!(error = %e, "probing sellers' refused credentials failed");
        }
        sweep(&self.market).await
    }
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

/// How many jobs of each seller this instance runs now.
#[derive(Debug, Default)]
struct Shares(HashMap<Uuid, usize>);

impl Shares {
    fn add(&mut self, seller: Option<Uuid>) {
        if let Some(seller) = seller {
            *self.0.entry(seller).or_default() += 1;
        }
    }

    fn remove(&mut self, seller: Option<Uuid>) {
        if let Some(seller) = seller
            && let Some(count) = self.0.get_mut(&seller)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.0.remove(&seller);
            }
        }
    }

    /// The sellers with `share` jobs or more running here.
    fn at(&self, share: usize) -> Vec<Uuid> {
        self.0
            .iter()
            .filter(|(_, count)| **count >= share)
            .map(|(seller, _)| *seller)
            .collect()
    }
}

async fn run_one(market: &Market, job: Job) {
    let span = tracing::info_span!(
        "job",
        job.id = job.job_id,
        job.kind = job.kind.as_str(),
        attempt = job.attempt
    );
    let started = Instant::now();
    let finish = tracing::Instrument::instrument(super::execute(market, &job), span.clone()).await;
    let Some(finish) = finish else {
        tracing::info!(parent: &span, "lease lost to another worker; nothing recorded");
        return;
    };
    match queue::finish(&market.db, job.lease(), &finish).await {
        Ok(true) => {
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &finish {
                Finish::Done | Finish::Reschedule { .. } => {
                    tracing::debug!(parent: &span, duration_ms, "job done");
                }
                other => {
                    tracing::info!(parent: &span, duration_ms, outcome = ?other, "job not done");
                }
            }
        }
        Ok(false) => {
            tracing::info!(parent: &span, "lease lost before the finish; nothing recorded");
        }
        Err(e) => {
            tracing::warn!(parent: &span, error = %e, "could not record the job's end; its lease will expire");
        }
    }
}
