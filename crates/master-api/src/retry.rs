//! When and how long to wait before sending a request again.
//!
//! Capped exponential backoff with *full* jitter (a uniformly random wait in
//! `[0, min(cap, base·2ⁿ⁻¹)]`), which spreads out clients that failed together, and at least the
//! server's `Retry-After` when it sent one. Which errors are retried is decided by
//! [`Error::is_retryable`](crate::Error::is_retryable); this module only decides *when*.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// How a call retries. All bounds apply together: whichever is hit first ends the retries and
/// the last error is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff ceiling for the first retry; doubles per retry.
    pub base_delay: Duration,
    /// Cap on the backoff ceiling (a server's `Retry-After` may exceed it).
    pub max_delay: Duration,
    /// Wall-clock budget from the first attempt. A wait that would end past it is not started:
    /// the last error is returned at once instead.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 500 ms base, 30 s cap, 60 s budget: rides out a short Xano incident or one
    /// free-plan rate-limit window without keeping a buyer waiting for minutes.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry: every call makes exactly one attempt.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_elapsed: Duration::ZERO,
        }
    }

    /// The highest backoff before retry number `retry` (1-based): `min(max_delay, base·2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        self.base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay)
    }

    /// The wait before retry number `retry`: a full-jitter backoff, but never less than the
    /// server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=ceiling)
        };
        retry_after.map_or(jittered, |server| server.max(jittered))
    }
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
        }
    }

    #[test]
    fn retry_after_parses_delta_seconds() {
        assert_eq!(
            parse_retry_after(" 7 ", SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("0", SystemTime::now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_parses_an_http_date_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();

        let wait = parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now);

        assert_eq!(wait, Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_in_the_past_means_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();

        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_garbage_or_negative_is_ignored() {
        for value in ["soon", "-5", "1.5", ""] {
            assert_eq!(
                parse_retry_after(value, SystemTime::now()),
                None,
                "{value:?}"
            );
        }
    }

    #[test]
    fn backoff_ceiling_doubles_from_base_and_stops_at_the_cap() {
        let policy = policy();

        let ceilings: Vec<u128> = (1..=6)
            .map(|n| policy.backoff_ceiling(n).as_millis())
            .collect();

        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            policy.backoff_ceiling(u32::MAX),
            Duration::from_secs(1),
            "no overflow"
        );
    }

    #[test]
    fn jittered_delays_stay_within_zero_and_the_ceiling() {
        let policy = policy();

        for retry in 1..=8 {
            for _ in 0..200 {
                let delay = policy.delay(retry, None);
                assert!(
                    delay <= policy.backoff_ceiling(retry),
                    "retry {retry}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let policy = policy();

        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.delay(4, None)).collect();

        assert!(
            delays.len() > 10,
            "full jitter should rarely repeat: {delays:?}"
        );
    }

    #[test]
    fn a_delay_is_never_shorter_than_retry_after_even_above_the_cap() {
        let policy = policy();

        for _ in 0..100 {
            let delay = policy.delay(1, Some(Duration::from_secs(5)));
            assert!(delay >= Duration::from_secs(5), "{delay:?}");
        }
    }

    #[test]
    fn the_none_policy_makes_a_single_attempt() {
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }
}
