//! The one error type of `market-core`. `market-http` maps each variant to an HTTP status and a
//! stable error code in one place.

/// What went wrong, by meaning. Messages are safe to show: they never carry secrets (tokens, keys,
/// e-mail addresses).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (or the caller may not know that it does).
    #[error("{0} not found")]
    NotFound(&'static str),

    /// An input broke a rule; `field` names it.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    /// The request is well-formed but conflicts with the current state; `code` is stable.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// Xano refused or failed an operator's request (listing a snippet, …).
    #[error("Xano: {0}")]
    Xano(#[from] master_api::Error),

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A serialization failure or deadlock: the whole transaction may simply be run again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
