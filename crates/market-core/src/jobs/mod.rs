//! Background work that talks to Xano (and sends buyers' email), run by every instance of the
//! service.
//!
//! - [`crate::queue`] (a floor below): the job table as a queue (claim with lease, fenced finish).
//! - `overview`: what operators see of it.
//! - `runner`: the worker loop of one instance, and its housekeeping sweep; it calls [`execute`].
//! - `replenish`, `mint`, `delete`, `reconcile_listing`, `send_mail`, `rotate`, `upgrade`: one module
//!   per job kind,
//!   each an adapter
//!   from a claimed job to the domain (reconciliation itself lives in [`crate::reconcile`], because
//!   operators also run it on demand);
//! - `error`: how a job run fails, shared by the kinds;
//! - `refusal`: whose refusal a 401 or 403 is (this instance's credential, or one snippet), and so
//!   whether the job is handed back to other instances or parked for its listing.
//!
//! Every job holds no transaction and no pooled connection while it waits for Xano, and every job is
//! safe to run twice: that is what at-least-once execution (leases that expire under a slow or paused
//! worker) demands.

mod delete;
mod error;
mod mint;
pub mod overview;
mod reconcile_listing;
mod refusal;
mod replenish;
mod rotate;
pub mod runner;
mod send_mail;
mod upgrade;

use std::time::Duration;

use rand::Rng;

use crate::queue::{Finish, Job, JobKind};
use crate::{JobsConfig, Market};
use error::JobError;

/// Runs one claimed job and says how it ended. `None`: the lease was lost, nothing to record.
pub(crate) async fn execute(market: &Market, job: &Job) -> Option<Finish> {
    fail::fail_point!("after_job_claimed");
    let result = match job.kind {
        JobKind::ReplenishPool => replenish::run(market, job).await,
        JobKind::MintForPurchase => mint::run(market, job).await,
        JobKind::DeleteToken => delete::run(market, job).await,
        JobKind::ReconcileListing => reconcile_listing::run(market, job).await,
        JobKind::SendMail => send_mail::run(market, job).await,
        JobKind::RotateToken => rotate::run(market, job).await,
        JobKind::ApplyUpgrade => upgrade::run(market, job).await,
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
    match classify_error(market, job, error).await {
        Finish::Retry { error, .. } if out_of_patience(&market.jobs, job) => {
            tracing::error!(job.kind = job.kind.as_str(), job.subject = %job.subject, attempt = job.attempt, error = %error, "job gave up: too many attempts or too old");
            Finish::Dead {
                error: format!("gave up after {} attempts: {error}", job.attempt),
            }
        }
        other => other,
    }
}

/// Whether a job that would be retried has been tried enough: `max_attempts` runs, or queued more
/// than `max_age` ago.
fn out_of_patience(config: &JobsConfig, job: &Job) -> bool {
    let age = (chrono::Utc::now() - job.created_at)
        .to_std()
        .unwrap_or_default();
    job.attempt >= config.max_attempts || age >= config.max_age
}

async fn classify_error(market: &Market, job: &Job, error: JobError) -> Finish {
    let backoff = backoff(&market.jobs, job.attempt);
    let message = error.to_string();
    match error {
        JobError::Xano(e @ (master_api::Error::Unauthorized | master_api::Error::Forbidden)) => {
            refusal::classify(market, job, e, backoff).await
        }
        JobError::Xano(master_api::Error::RateLimited { retry_after }) => Finish::Retry {
            after: retry_after.map_or(backoff, |r| r.max(backoff)),
            error: message,
        },
        JobError::Xano(master_api::Error::NotFound | master_api::Error::InvalidInput { .. })
        | JobError::Permanent(_) => {
            tracing::error!(job.kind = job.kind.as_str(), job.subject = %job.subject, error = %message, "job failed for good");
            Finish::Dead { error: message }
        }
        JobError::NotYet(reason) => {
            tracing::debug!(job.kind = job.kind.as_str(), job.subject = %job.subject, reason, "job waits");
            Finish::Wait {
                after: market
                    .jobs
                    .retry_base
                    .max(std::time::Duration::from_secs(1)),
            }
        }
        JobError::Xano(_)
        | JobError::Core(_)
        | JobError::Mail(_)
        | JobError::LostLease
        | JobError::Unlisted => {
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
