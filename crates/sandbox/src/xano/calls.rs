//! The call log: one record per request that reached `/api:meta`, so tests can count what really
//! got to "Xano" (retries, rate, minted tokens) rather than trusting the client's own account.
//! Each record also says whose token the call carried and whose snippet it named (`caller`), which
//! is how a multi-seller test proves that no call carried another seller's token.
//! The records live in the simulator's state; `call_guard` writes them.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// One request to the Master API as the simulator saw it.
///
/// `path` is the real path, install token values included: keep records out of logs. The access
/// token is never in a record, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub method: String,
    /// The request path including the `/api:meta` base, still percent-encoded as sent.
    pub path: String,
    /// The raw query string (`page=2`), empty when there was none.
    pub query: String,
    /// The matched endpoint; `None` for a path or method that is not part of the API.
    pub endpoint: Option<Endpoint>,
    /// The status sent, or [`CallRecord::NO_RESPONSE`] when no complete response went out (a
    /// dropped connection, or a client that gave up while the request was stalled).
    pub status: u16,
    pub started_at: Instant,
    /// When the response was handed to the server (or the request was abandoned).
    pub at: Instant,
    /// The `id` of the account holding the bearer token, whatever that token's state (a revoked
    /// token still names its account); `None` without a token or with one no account holds.
    pub account: Option<String>,
    /// The first 12 hex digits of the bearer token's SHA-256 ([`token_fingerprint`]); `None`
    /// without a token.
    ///
    /// [`token_fingerprint`]: super::caller::token_fingerprint
    pub token_fingerprint: Option<String>,
    /// The `id` of the account owning the snippet the path names (snippet and token endpoints),
    /// as the request started; `None` when it names none or a snippet that does not exist.
    pub snippet_account: Option<String>,
}

impl CallRecord {
    pub const NO_RESPONSE: u16 = 0;
}

/// A [`CallRecord`] as `GET /__sim/calls` renders it: times in milliseconds since the simulator
/// started, since an `Instant` means nothing in another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecordJson {
    pub method: String,
    pub path: String,
    pub query: String,
    pub endpoint: Option<Endpoint>,
    pub status: u16,
    pub started_ms: f64,
    pub ended_ms: f64,
    /// As in [`CallRecord`]; absent (`None`) in logs written before they existed.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub token_fingerprint: Option<String>,
    #[serde(default)]
    pub snippet_account: Option<String>,
}

impl CallRecordJson {
    pub(crate) fn from_record(record: &CallRecord, epoch: Instant) -> Self {
        let ms = |at: Instant| at.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        Self {
            method: record.method.clone(),
            path: record.path.clone(),
            query: record.query.clone(),
            endpoint: record.endpoint,
            status: record.status,
            started_ms: ms(record.started_at),
            ended_ms: ms(record.at),
            account: record.account.clone(),
            token_fingerprint: record.token_fingerprint.clone(),
            snippet_account: record.snippet_account.clone(),
        }
    }
}
