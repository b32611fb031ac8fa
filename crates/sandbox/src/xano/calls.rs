//! The call log: one record per request that reached `/api:meta`, so tests can count what really
//! got to "Xano" (retries, rate, minted tokens) rather than trusting the client's own account.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;
use super::state::Shared;

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

/// Records its call when dropped. The record is written even if the handler future is cancelled
/// mid-way (the client hung up during a stall), which a plain "log at the end" would miss.
pub(crate) struct CallGuard {
    shared: Shared,
    record: Option<CallRecord>,
}

impl CallGuard {
    pub(crate) fn start(shared: Shared, method: &str, path: &str, query: &str) -> Self {
        let now = Instant::now();
        let record = CallRecord {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            endpoint: None,
            status: CallRecord::NO_RESPONSE,
            started_at: now,
            at: now,
        };
        Self {
            shared,
            record: Some(record),
        }
    }

    pub(crate) fn set_endpoint(&mut self, endpoint: Endpoint) {
        if let Some(record) = &mut self.record {
            record.endpoint = Some(endpoint);
        }
    }

    pub(crate) fn set_status(&mut self, status: u16) {
        if let Some(record) = &mut self.record {
            record.status = status;
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.at = Instant::now();
            self.shared.lock().calls.push(record);
        }
    }
}
