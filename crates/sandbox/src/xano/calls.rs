//! The call log: one record per request that reached `/api:meta`, so tests can count what really
//! got to "Xano" (retries, rate, minted tokens) rather than trusting the client's own account.
//! The records live in the simulator's state; `call_guard` writes them.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// One request to the Master API as the simulator saw it.
///
/// `path` is the real path, token values included: keep records out of logs.
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
        }
    }
}
