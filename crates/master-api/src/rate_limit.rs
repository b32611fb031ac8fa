//! Client-side rate limiting shared by every clone of a [`Client`](crate::Client).
//!
//! Xano states its free-plan limit as "10 requests per 20 seconds" and measures it on its side,
//! so a classic refilling bucket (full burst, then steady refill) is not enough: it lets through
//! up to twice the limit in the first window and earns a 429. Here each of the `requests` tokens
//! comes back exactly one window after it was spent, which guarantees that **no window of
//! length `per` ever holds more than `requests` sends**, including the initial burst.
//!
//! Slots are handed out in FIFO order under a short, never-awaited mutex: each caller reserves
//! its send time, then sleeps until it. A caller dropped while waiting wastes its slot, which
//! errs on the safe side.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A request-rate ceiling: at most `requests` sends in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    limit: Option<(u32, Duration)>,
}

impl RateLimit {
    /// Xano's documented free-plan limit: 10 requests per 20 seconds.
    pub const XANO_FREE_PLAN: Self = Self::new(10, Duration::from_secs(20));

    /// At most `requests` sends in any window of `per`. Zero values are rejected by
    /// [`ClientBuilder::build`](crate::ClientBuilder::build).
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self {
            limit: Some((requests, per)),
        }
    }

    /// No client-side limit (paid plans document none).
    pub const fn unlimited() -> Self {
        Self { limit: None }
    }

    /// `(requests, per)`, or `None` when unlimited.
    pub const fn limit(&self) -> Option<(u32, Duration)> {
        self.limit
    }
}

impl Default for RateLimit {
    /// Unlimited: the right limit depends on the seller's Xano plan.
    fn default() -> Self {
        Self::unlimited()
    }
}

/// The shared limiter state behind a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct Limiter {
    requests: usize,
    /// The window plus a safety margin; see [`Limiter::new`].
    spacing: Duration,
    /// Send times of the last `requests` reservations, oldest first (never longer).
    slots: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    /// Returns `None` for an unlimited rate. Zero values are configuration errors.
    pub(crate) fn new(rate: RateLimit) -> Result<Option<Self>, crate::Error> {
        let Some((requests, per)) = rate.limit else {
            return Ok(None);
        };
        if requests == 0 || per.is_zero() {
            return Err(crate::Error::Config(
                "rate limit needs at least 1 request per non-zero window",
            ));
        }
        // Xano counts *arrivals*; network and scheduling jitter can bring two sends spaced exactly
        // `per` apart closer together on arrival. The margin absorbs that: 100 ms (a tenth of a
        // shorter window), or a twentieth of a long one, at most 1 s. So 100 ms on a 1 s window,
        // 0.5 s on 10 s, 1 s on the free plan's 20 s: a long window now loses 1/21 of its limit
        // to the margin, where a tenth of the window lost 1/11 (docs/PERFORMANCE.md, "refill").
        let margin = (per / 20)
            .max((per / 10).min(Duration::from_millis(100)))
            .min(Duration::from_secs(1));
        let requests = usize::try_from(requests).unwrap_or(usize::MAX);
        Ok(Some(Self {
            requests,
            spacing: per + margin,
            slots: Mutex::new(VecDeque::with_capacity(requests.min(1024))),
        }))
    }

    /// Waits until this caller may send.
    pub(crate) async fn acquire(&self) {
        let slot = self.reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    /// Reserves the earliest send time that keeps every window within the limit. Slots are
    /// non-decreasing, so the oldest of the last `requests` slots is the binding one.
    fn reserve(&self, now: Instant) -> Instant {
        // A panic while holding this lock cannot leave the queue inconsistent (each operation is
        // a single push/pop), so a poisoned lock is still safe to use.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // Never earlier than the previous slot, so order holds even when callers read the clock
        // in one order and take the lock in another.
        let floor = slots.back().map_or(now, |last| (*last).max(now));
        let slot = if slots.len() < self.requests {
            floor
        } else {
            slots
                .front()
                .map_or(floor, |oldest| (*oldest + self.spacing).max(floor))
        };
        slots.push_back(slot);
        while slots.len() > self.requests {
            slots.pop_front();
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests: u32, per_ms: u64) -> Limiter {
        Limiter::new(RateLimit::new(requests, Duration::from_millis(per_ms)))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_first_burst_up_to_the_limit_goes_out_immediately() {
        let limiter = limiter(5, 1000);
        let now = Instant::now();

        let slots: Vec<Instant> = (0..5).map(|_| limiter.reserve(now)).collect();

        assert!(slots.iter().all(|slot| *slot == now));
    }

    #[test]
    fn no_window_of_the_configured_length_ever_holds_more_than_the_limit() {
        let limiter = limiter(5, 1000);
        let start = Instant::now();

        // 40 callers arriving at irregular times, some all at once.
        let slots: Vec<Instant> = (0..40u64)
            .map(|i| limiter.reserve(start + Duration::from_millis(i * 37 % 900 + i * 50)))
            .collect();

        for (i, first) in slots.iter().enumerate() {
            let in_window = slots[i..]
                .iter()
                .filter(|slot| **slot < *first + Duration::from_secs(1))
                .count();
            assert!(in_window <= 5, "window from slot {i} holds {in_window}");
        }
    }

    #[test]
    fn slots_are_handed_out_in_order() {
        let limiter = limiter(2, 100);
        let now = Instant::now();

        let slots: Vec<Instant> = (0..9).map(|_| limiter.reserve(now)).collect();

        assert!(slots.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(
            slots[8] - now,
            Duration::from_millis(4 * 110),
            "4 windows plus margins"
        );
    }

    #[test]
    fn a_long_window_is_widened_by_a_twentieth_of_it_at_most_one_second() {
        let now = Instant::now();
        let next_window = |requests: u32, per_ms: u64| {
            let limiter = limiter(requests, per_ms);
            let slots: Vec<Instant> = (0..=requests).map(|_| limiter.reserve(now)).collect();
            slots[usize::try_from(requests).unwrap()] - now
        };

        assert_eq!(next_window(10, 1_000), Duration::from_millis(1_100));
        assert_eq!(next_window(100, 10_000), Duration::from_millis(10_500));
        assert_eq!(next_window(10, 20_000), Duration::from_secs(21));
        assert_eq!(next_window(10, 60_000), Duration::from_secs(61));
    }

    #[test]
    fn an_unlimited_rate_builds_no_limiter_and_zero_values_are_refused() {
        assert!(Limiter::new(RateLimit::unlimited()).unwrap().is_none());
        assert!(Limiter::new(RateLimit::new(0, Duration::from_secs(1))).is_err());
        assert!(Limiter::new(RateLimit::new(1, Duration::ZERO)).is_err());
    }

    #[test]
    fn the_free_plan_preset_is_ten_per_twenty_seconds() {
        assert_eq!(
            RateLimit::XANO_FREE_PLAN.limit(),
            Some((10, Duration::from_secs(20)))
        );
    }
}
