//! How a job run fails. The kinds share it, so that the runner can classify every failure the same
//! way: hand back or park on a refusal (`refusal.rs`), back off on a rate limit, give up on what
//! cannot pass.

use crate::queue::{self, Job};
use crate::{Error, ListingId, Market};

/// Why a job run did not succeed.
#[derive(Debug, thiserror::Error)]
pub(super) enum JobError {
    #[error("Xano: {0}")]
    Xano(#[from] master_api::Error),
    #[error(transparent)]
    Core(Error),
    /// Another worker holds the job now; this one must not write anything about it.
    #[error("lease lost to another worker")]
    LostLease,
    /// The mail server did not take the message this time (`postman::MailError::Transient`).
    #[error("mail: {0}")]
    Mail(String),
    /// The work must wait for another to finish (an upgrade for a rotation or a mint): run again
    /// soon, the wait not counted as an attempt.
    #[error("waiting: {0}")]
    NotYet(&'static str),
    /// Xano's token list does not show a token whose installs the job must send back (`update_token`
    /// writes absolute counts): the list may have been cut short, and our last count would set back
    /// the installs the buyer made since. Retried with backoff, counted as an attempt; meanwhile the
    /// listing's reconciliation, brought forward by [`unlisted`], finds out whether the token is
    /// gone (then marked `missing`, its purchase queued for a new one).
    #[error("Xano's token list does not show the token; its installs count is unknown")]
    Unlisted,
    /// Retrying cannot help (the snippet is gone at Xano, the subject no longer parses, …).
    #[error("{0}")]
    Permanent(String),
}

impl From<Error> for JobError {
    /// Xano errors keep their identity, so that a 401 met inside reconciliation is still a refusal.
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

/// Checks, right before a write to Xano that nothing fences, that this worker still holds `job`.
///
/// Xano's `update_token` sets absolute values and has no compare-and-set: the last write wins. A
/// worker paused past its lease (a VM pause, `SIGSTOP`, a starved runtime) resumes where it
/// stopped; if another worker took the job over meanwhile and wrote newer values, the resumed
/// write would set them back (an upgrade's limit, or the installs a buyer made since). The
/// database's own writes are fenced by the lease in their transaction; this is the same check
/// for the call that cannot be, leaving only the send itself as the window.
pub(super) async fn lease_still_held(market: &Market, job: &Job) -> Result<(), JobError> {
    let mut conn = market.db.acquire().await?;
    if queue::hold(&mut conn, job.lease()).await? {
        Ok(())
    } else {
        Err(JobError::LostLease)
    }
}

/// [`JobError::Unlisted`], once `listing`'s reconciliation is due now.
pub(super) async fn unlisted(market: &Market, listing: ListingId) -> JobError {
    let soon = async {
        let mut conn = market.db.acquire().await?;
        queue::reconcile_soon(&mut conn, listing).await
    };
    match soon.await {
        Ok(()) => JobError::Unlisted,
        Err(e) => JobError::Core(e),
    }
}
