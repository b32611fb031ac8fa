//! The worker loop of one instance: claim due jobs, run them, record how they ended; beside it, the
//! housekeeping sweep ([`sweep`]) that gives every piece of owed work a job.
//!
//! Every instance runs one [`Runner`]; nothing here assumes it is the only one. The sweep's writes are
//! all "queue unless already queued", so several instances sweeping at once queue each job once.
//!
//! **Sellers share the workers fairly.** A seller whose Xano is slow or rate-limiting holds a worker
//! for as long as its call retries (up to a minute); with nothing to stop it, its jobs took every
//! worker of every instance and another seller's pool refills waited (the chaos suite's seller
//! isolation run found it). So an instance runs at most [`Runner::share`] of its workers
//! on one seller's jobs at a time: it claims one job at a time, leaving out the sellers already at
//! their share. The house's jobs and mail are nobody's share (`job.seller_id` is null for them).
//!
//! **Mail goes first, within its share.** A claim takes due mail before Xano work of any age
//! ([`queue::claim_in`]): a buyer waiting for a sign-in link does not wait behind the backlog a Xano
//! outage left (the chaos suite saw mail claimable for 15 s behind one). Mail holds at most
//! [`Runner::share`] of the workers, so a slow SMTP server cannot take the Xano work's.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::queue::{self, Finish, Job, JobKind, Lanes};
use crate::{Market, Result, health};

mod sweep;

pub use sweep::sweep;

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
    ///
    /// The housekeeping sweep runs beside the claiming, not in its loop: it probes Xano (this
    /// instance's refused credential, forbidden snippets, sellers' refused credentials), and a slow
    /// Xano held every claim of the instance for as long as the probes retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        tokio::pin!(shutdown);
        let housekeeping = tokio::spawn(sweep::housekeeping(self.market.clone()));
        let mut in_flight = JoinSet::new();
        let mut running = Shares::default();
        loop {
            // Once per round, not per claim: claiming is one job at a time (fair shares).
            let lanes = match self.lanes().await {
                Ok(lanes) => Some(lanes),
                Err(e) => {
                    tracing::warn!(error = %e, "reading this instance's credential health failed");
                    None
                }
            };
            while let Some(lanes) = lanes
                && in_flight.len() < self.market.jobs.workers
            {
                // Mail's share leaves Xano work its workers; an instance whose credential is
                // refused has nothing but mail to do.
                let lanes = Lanes {
                    mail: running.mail < self.share() || !lanes.xano,
                    ..lanes
                };
                if !lanes.any() {
                    break;
                }
                let busy = running.at(self.share());
                match self.claim(1, &busy, lanes).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        for job in jobs {
                            let ran = (job.seller_id, job.kind);
                            let market = self.market.clone();
                            let task = in_flight.spawn(async move { run_one(&market, job).await });
                            running.add(task.id(), ran);
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
                Some(ended) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    // A job that panicked ended too: its share is given back all the same.
                    running.remove(ended.map_or_else(|e| e.id(), |(task, ())| task));
                }
            }
        }
        housekeeping.abort();

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
        health::probe_if_due(&self.market).await?;
        let lanes = self.lanes().await?;
        let jobs = self
            .claim(self.market.jobs.workers.max(1), &[], lanes)
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

    /// How many of this instance's workers one seller's jobs, or mail, may hold at once: half, at
    /// least one.
    pub fn share(&self) -> usize {
        (self.market.jobs.workers / 2).max(1)
    }

    /// Which jobs this instance may claim now: all, or, when Xano refuses its credential, mail
    /// alone, since every Xano job would only be handed back: it leaves them to the others (the
    /// housekeeping probes the credential; not here, where a slow Xano would hold the mail back).
    async fn lanes(&self) -> Result<Lanes> {
        let refused = health::refused(&self.market).await?;
        Ok(Lanes {
            mail: true,
            xano: !refused,
        })
    }

    /// Claims up to `limit` jobs in `lanes`, none of the sellers in `busy`.
    async fn claim(&self, limit: usize, busy: &[Uuid], lanes: Lanes) -> Result<Vec<Job>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        queue::claim_in(
            &self.market.db,
            self.owner,
            limit,
            self.market.jobs.lease,
            lanes,
            busy,
        )
        .await
    }

    /// The sweep: work that is owed gets a job, and old finished jobs are cleared away (see
    /// [`sweep`]); this instance's credential is marked in use and, when refused, probed when due,
    /// and so are the snippets Xano forbids (`health`) and sellers' refused credentials
    /// (`seller_xano`).
    pub async fn sweep(&self) -> Result<()> {
        sweep::sweep_and_probe(&self.market).await
    }
}

/// How many jobs of each seller, and how many messages, this instance runs now, and which task
/// runs which.
#[derive(Debug, Default)]
struct Shares {
    sellers: HashMap<Uuid, usize>,
    mail: usize,
    tasks: HashMap<tokio::task::Id, (Option<Uuid>, JobKind)>,
}

impl Shares {
    fn add(&mut self, task: tokio::task::Id, (seller, kind): (Option<Uuid>, JobKind)) {
        if kind == JobKind::SendMail {
            self.mail += 1;
        }
        if let Some(seller) = seller {
            *self.sellers.entry(seller).or_default() += 1;
        }
        self.tasks.insert(task, (seller, kind));
    }

    fn remove(&mut self, task: tokio::task::Id) {
        let Some((seller, kind)) = self.tasks.remove(&task) else {
            return;
        };
        if kind == JobKind::SendMail {
            self.mail = self.mail.saturating_sub(1);
        }
        if let Some(seller) = seller
            && let Some(count) = self.sellers.get_mut(&seller)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.sellers.remove(&seller);
            }
        }
    }

    /// The sellers with `share` jobs or more running here.
    fn at(&self, share: usize) -> Vec<Uuid> {
        self.sellers
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
