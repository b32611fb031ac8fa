//! Background work that talks to Xano, run by every instance of the service.
//!
//! - `queue`: the job table as a queue (claim with lease, fenced finish).
//! - `overview`: what operators see of it.
//! - `runner`: the worker loop of one instance, and its housekeeping sweep.
//! - `replenish`, `mint`, `delete`: one module per job kind; reconciliation lives in
//!   [`crate::reconcile`] because operators also run it on demand.
//!
//! Every job holds no transaction and no pooled connection while it waits for Xano, and every job is
//! safe to run twice: that is what at-least-once execution (leases that expire under a slow or paused
//! worker) demands.

pub(crate) mod delete;
pub(crate) mod mint;
pub mod overview;
pub mod queue;
pub(crate) mod replenish;
pub mod runner;

use std::time::Duration;

use rand::Rng;

use crate::health;
use crate::{Error, Market};
use queue::{Finish, Job, JobKind};

/// Tuning of the workers; the defaults suit production, tests shorten them.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Jobs one instance runs at the same time.
    pub workers: usize,
    /// How often an idle instance looks for due jobs.
    pub poll_interval: Duration,
    /// How long a claim lasts without a heartbeat. Must exceed the longest single Xano call
    /// (client timeout × attempts), or a slow call loses its lease to another worker.
    pub lease: Duration,
    /// Backoff between retries: `retry_base × 2^attempt`, capped, with full jitter.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How often each listing is reconciled with Xano.
    pub reconcile_interval: Duration,
    /// How often a refused credential is tried again.
    pub probe_interval: Duration,
    /// How often the housekeeping sweep runs (pools below low water, missing schedules, old jobs).
    pub sweep_interval: Duration,
    /// How long finished jobs are kept for operators.
    pub keep_finished: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(180),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            reconcile_interval: Duration::from_secs(15 * 60),
            probe_interval: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(5),
            keep_finished: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a job run did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("Xano: {0}")]
    Xano(#[from] master_api::Error),
    #[error(transparent)]
    Core(Error),
    /// Another worker holds the job now; this one must not write anything about it.
    #[error("lease lost to another worker")]
    LostLease,
    /// Retrying cannot help (the snippet is gone at Xano, the subject no longer parses, …).
    #[error("{0}")]
    Permanent(String),
}

impl From<Error> for JobError {
    /// Xano errors keep their identity, so that a 401 met inside reconciliation still parks the job.
    fn from(e: Error) -> Self {
        match e {
            Error::Xano(e) => Self::Xano(e),
            other => Self::Core(other),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Core(Error::Database(e))
    }
}

/// Runs one claimed job and says how it ended. `None`: the lease was lost, nothing to record.
pub(crate) async fn execute(market: &Market, job: &Job) -> Option<Finish> {
    fail::fail_point!("after_job_claimed");
    let result = match job.kind {
        JobKind::ReplenishPool => replenish::run(market, job).await,
        JobKind::MintForPurchase => mint::run(market, job).await,
        JobKind::DeleteToken => delete::run(market, job).await,
        JobKind::ReconcileListing => crate::reconcile::run_job(market, job).await,
    };
    match result {
        Ok(()) if job.kind == JobKind::ReconcileListing => {
            // Reconciliation is a standing schedule: the same row comes back after the interval.
            Some(Finish::Reschedule {
                after: market.jobs.reconcile_interval,
            })
        }
        Ok(()) => Some(Finish::Done),
        Err(JobError::LostLease) => None,
        Err(e) => Some(classify(market, job, e).await),
    }
}

async fn classify(market: &Market, job: &Job, error: JobError) -> Finish {
    let backoff = backoff(&market.jobs, job.attempt);
    let message = error.to_string();
    match error {
        JobError::Xano(e @ (master_api::Error::Unauthorized | master_api::Error::Forbidden)) => {
            if let Err(db) = health::record_refusal(&market.db, &e).await {
                tracing::warn!(error = %db, "could not record the credential's health");
            }
            tracing::warn!(job.kind = job.kind.as_str(), error = %e, "Xano refused our credential; job parked");
            Finish::Park { error: message }
        }
        JobError::Xano(master_api::Error::RateLimited { retry_after }) => Finish::Retry {
            after: retry_after.map_or(backoff, |r| r.max(backoff)),
            error: message,
        },
        JobError::Xano(master_api::Error::NotFound | master_api::Error::InvalidInput { .. })
        | JobError::Permanent(_) => {
            tracing::error!(job.kind = job.kind.as_str(), job.subject = %job.subject, error = %message, "job failed for good");
            Finish::Fail { error: message }
        }
        JobError::Xano(_) | JobError::Core(_) | JobError::LostLease => {
            tracing::info!(job.kind = job.kind.as_str(), attempt = job.attempt, error = %message, "job will be retried");
            Finish::Retry {
                after: backoff,
                error: message,
            }
        }
    }
}

/// Capped exponential backoff with full jitter (a uniform draw below the cap of this attempt), so
/// that many instances retrying after one outage do not stampede in step.
pub(crate) fn backoff(config: &JobsConfig, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.clamp(0, 20)).unwrap_or(20);
    let ceiling = config
        .retry_base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(config.retry_cap);
    let ceiling_ms = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_cap_of_its_attempt() {
        let config = JobsConfig {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_secs(2),
            ..JobsConfig::default()
        };
        for attempt in 0..30 {
            let cap = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(u32::try_from(attempt.min(20)).unwrap()))
                .min(Duration::from_secs(2));
            for _ in 0..50 {
                assert!(backoff(&config, attempt) <= cap);
            }
        }
    }
}
