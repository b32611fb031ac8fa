//! Xano's free-plan rate limit: at most `requests` per `window` for each access token.
//!
//! A sliding window (a log of the accepted requests' times) is used rather than fixed buckets:
//! it is the stricter of the two readings of "10 requests per 20 seconds", so a client that
//! passes here also passes a fixed-window server. Refused requests are not counted, so a client
//! that backs off is served again once the window has slid past its earlier requests.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many requests fit in how long a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreePlanPolicy {
    pub requests: u32,
    #[serde(rename = "window_ms", with = "super::serde_ms::millis")]
    pub window: Duration,
}

impl Default for FreePlanPolicy {
    /// Xano's documented free plan: 10 requests per 20 seconds.
    fn default() -> Self {
        Self {
            requests: 10,
            window: Duration::from_secs(20),
        }
    }
}

/// Per-account sliding-window state; accounts are keyed by their index in the store.
#[derive(Debug, Default)]
pub(crate) struct FreePlanLimiter {
    pub(crate) enabled: bool,
    pub(crate) policy: FreePlanPolicy,
    accepted: HashMap<usize, VecDeque<Instant>>,
}

impl FreePlanLimiter {
    pub(crate) fn new(enabled: bool, policy: FreePlanPolicy) -> Self {
        Self {
            enabled,
            policy,
            accepted: HashMap::new(),
        }
    }

    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        // A fresh start, so a test that switches the limit on is not charged for earlier calls.
        self.accepted.clear();
    }

    /// Records a request at `now` and says whether it is within the limit.
    pub(crate) fn admit(&mut self, account: usize, now: Instant) -> bool {
        if !self.enabled {
            return true;
        }
        let log = self.accepted.entry(account).or_default();
        while log
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.policy.window)
        {
            log.pop_front();
        }
        if log.len() >= self.policy.requests as usize {
            return false;
        }
        log.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_request_inside_the_window_is_refused_and_admitted_once_the_window_slides() {
        let mut limiter = FreePlanLimiter::new(true, FreePlanPolicy::default());
        let start = Instant::now();
        for i in 0..10 {
            assert!(
                limiter.admit(0, start + Duration::from_secs(i)),
                "request {i}"
            );
        }
        assert!(!limiter.admit(0, start + Duration::from_secs(19)));
        assert!(
            limiter.admit(1, start + Duration::from_secs(19)),
            "other accounts are separate"
        );
        assert!(limiter.admit(0, start + Duration::from_secs(20)));
        assert!(!limiter.admit(0, start + Duration::from_secs(20)));
    }

    #[test]
    fn a_disabled_limiter_admits_everything() {
        let mut limiter = FreePlanLimiter::new(false, FreePlanPolicy::default());
        let now = Instant::now();
        assert!((0..100).all(|_| limiter.admit(0, now)));
    }
}
