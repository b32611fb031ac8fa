//! How a job run fails. The kinds share it, so that the runner can classify every failure the same
//! way: hand back or park on a refusal (`refusal.rs`), back off on a rate limit, give up on what
//! cannot pass.

use crate::Error;

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
