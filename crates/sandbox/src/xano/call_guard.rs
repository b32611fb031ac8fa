//! Writing the call log: a guard that records its request when dropped.

use std::time::Instant;

use super::caller::Caller;
use super::calls::CallRecord;
use super::endpoint::Endpoint;
use super::state::Shared;

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
            account: None,
            token_fingerprint: None,
            snippet_account: None,
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

    pub(crate) fn set_caller(&mut self, caller: Caller) {
        if let Some(record) = &mut self.record {
            record.account = caller.account;
            record.token_fingerprint = caller.token_fingerprint;
            record.snippet_account = caller.snippet_account;
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
