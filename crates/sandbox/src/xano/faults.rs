//! Fault injection: rules a test adds at run time to make the simulator slow, limited, broken or
//! rude, and the engine that decides what each request suffers.
//!
//! Rules are consulted in the order they were added. Every matching `Latency` rule adds its delay;
//! the first matching rule that *disrupts* (429, 5xx, dropped connection) decides the outcome and
//! only that rule's count is used up. Commit-then-fail rules are looked at only after a token
//! creation really succeeded, so a rule is never spent on a request that failed validation.
//! Count-based rules disappear once used up; ratio and latency rules stay until cleared.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// A fault rule. Over HTTP (`POST /__sim/faults`) it is JSON tagged by `kind`, with durations in
/// milliseconds, e.g. `{"kind":"rate_limited","count":2,"retry_after":1}` or
/// `{"kind":"latency","min_ms":50,"max_ms":200,"only":"create_token"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The next `count` matching requests get a 429; `retry_after` adds a `Retry-After` header
    /// (seconds), which the real API is not documented to send.
    RateLimited {
        count: u32,
        retry_after: Option<u64>,
        only: Option<Endpoint>,
    },
    /// A fraction (0.0..=1.0) of matching requests get a 429, until cleared.
    RateLimitedRatio {
        ratio: f64,
        retry_after: Option<u64>,
        only: Option<Endpoint>,
    },
    /// The next `count` matching requests get `status` (500..=599) with Xano's `ERROR_FATAL` body.
    ServerError {
        count: u32,
        status: u16,
        only: Option<Endpoint>,
    },
    /// A fraction (0.0..=1.0) of matching requests get `status`, until cleared.
    ServerErrorRatio {
        ratio: f64,
        status: u16,
        only: Option<Endpoint>,
    },
    /// The next `count` successful token creations are committed (the token exists and is listed),
    /// then the answer is a 500 (`stall: None`) or the real answer delayed by `stall`, long enough
    /// to outlast the client's timeout.
    CommitThenFail {
        count: u32,
        #[serde(default, rename = "stall_ms", with = "super::serde_ms::option_millis")]
        stall: Option<Duration>,
    },
    /// The next `count` successful token creations are committed, then the connection is dropped.
    CommitThenDrop { count: u32 },
    /// Every matching request is delayed by a duration drawn uniformly from `[min, max]`.
    Latency {
        #[serde(rename = "min_ms", with = "super::serde_ms::millis")]
        min: Duration,
        #[serde(rename = "max_ms", with = "super::serde_ms::millis")]
        max: Duration,
        only: Option<Endpoint>,
    },
    /// The next `count` matching requests get no complete response: the connection is closed
    /// before a status line reaches the client, which sees a transport error.
    DropConnection { count: u32, only: Option<Endpoint> },
}

impl Fault {
    /// Why this rule cannot be used as written, if it cannot (used to answer 400 over HTTP).
    pub fn problem(&self) -> Option<&'static str> {
        match self {
            Self::RateLimitedRatio { ratio, .. } | Self::ServerErrorRatio { ratio, .. }
                if !(0.0..=1.0).contains(ratio) =>
            {
                Some("ratio must be between 0.0 and 1.0")
            }
            Self::ServerError { status, .. } | Self::ServerErrorRatio { status, .. }
                if !(500..=599).contains(status) =>
            {
                Some("status must be between 500 and 599")
            }
            Self::Latency { min, max, .. } if min > max => Some("min must not exceed max"),
            _ => None,
        }
    }

    /// A usable version of this rule: a ratio is clamped, a status outside 500..=599 becomes 500,
    /// and swapped latency bounds are put in order. The Rust API takes any rule without failing.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        match &mut self {
            Self::RateLimitedRatio { ratio, .. } => *ratio = usable_ratio(*ratio),
            Self::ServerErrorRatio { ratio, status, .. } => {
                *ratio = usable_ratio(*ratio);
                *status = usable_status(*status);
            }
            Self::ServerError { status, .. } => *status = usable_status(*status),
            Self::Latency { min, max, .. } if *min > *max => std::mem::swap(min, max),
            _ => {}
        }
        self
    }
}

fn usable_ratio(ratio: f64) -> f64 {
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

fn usable_status(status: u16) -> u16 {
    if (500..=599).contains(&status) {
        status
    } else {
        500
    }
}

/// What a request suffers before it reaches the API logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disruption {
    RateLimited { retry_after: Option<u64> },
    ServerError { status: u16 },
    DropConnection,
}

/// What happens to a token creation that was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterCommit {
    Fail,
    Stall(Duration),
    Drop,
}

#[derive(Debug, Default)]
pub(crate) struct FaultRules {
    rules: Vec<Fault>,
}

fn matches(only: Option<Endpoint>, endpoint: Endpoint) -> bool {
    only.is_none_or(|only| only == endpoint)
}

/// Uses up one of `count`, saying whether there was one to use.
fn take(count: &mut u32) -> bool {
    if *count == 0 {
        return false;
    }
    *count -= 1;
    true
}

/// The disruption `rule` causes for a request to `endpoint`, using up one of its count if so.
fn disrupt(rule: &mut Fault, endpoint: Endpoint, rng: &mut impl Rng) -> Option<Disruption> {
    let mut roll = |ratio: f64| rng.random::<f64>() < ratio;
    let (fires, disruption) = match rule {
        Fault::RateLimited {
            count,
            retry_after,
            only,
        } => {
            let fires = matches(*only, endpoint) && take(count);
            (
                fires,
                Disruption::RateLimited {
                    retry_after: *retry_after,
                },
            )
        }
        Fault::RateLimitedRatio {
            ratio,
            retry_after,
            only,
        } => {
            let fires = matches(*only, endpoint) && roll(*ratio);
            (
                fires,
                Disruption::RateLimited {
                    retry_after: *retry_after,
                },
            )
        }
        Fault::ServerError {
            count,
            status,
            only,
        } => {
            let fires = matches(*only, endpoint) && take(count);
            (fires, Disruption::ServerError { status: *status })
        }
        Fault::ServerErrorRatio {
            ratio,
            status,
            only,
        } => {
            let fires = matches(*only, endpoint) && roll(*ratio);
            (fires, Disruption::ServerError { status: *status })
        }
        Fault::DropConnection { count, only } => (
            matches(*only, endpoint) && take(count),
            Disruption::DropConnection,
        ),
        // Latency is summed by the caller; commit-then-fail waits for a committed creation.
        Fault::Latency { .. } | Fault::CommitThenFail { .. } | Fault::CommitThenDrop { .. } => {
            return None;
        }
    };
    fires.then_some(disruption)
}

impl FaultRules {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.rules.push(fault.normalized());
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn rules(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    /// Decides the delay and the disruption (if any) for one request to `endpoint`.
    pub(crate) fn before(
        &mut self,
        endpoint: Endpoint,
        rng: &mut impl Rng,
    ) -> (Duration, Option<Disruption>) {
        let mut delay = Duration::ZERO;
        let mut disruption = None;
        for rule in &mut self.rules {
            if let Fault::Latency { min, max, only } = rule {
                if matches(*only, endpoint) {
                    delay += rng.random_range(*min..=*max);
                }
            } else if disruption.is_none() {
                disruption = disrupt(rule, endpoint, rng);
            }
        }
        self.forget_used_up();
        (delay, disruption)
    }

    /// Called once a token creation has been committed: what, if anything, goes wrong now.
    pub(crate) fn after_commit(&mut self) -> Option<AfterCommit> {
        let outcome = self.rules.iter_mut().find_map(|rule| match rule {
            Fault::CommitThenFail { count, stall } => {
                take(count).then(|| stall.map_or(AfterCommit::Fail, AfterCommit::Stall))
            }
            Fault::CommitThenDrop { count } => take(count).then_some(AfterCommit::Drop),
            _ => None,
        });
        self.forget_used_up();
        outcome
    }

    fn forget_used_up(&mut self) {
        self.rules.retain(|rule| match rule {
            Fault::RateLimited { count, .. }
            | Fault::ServerError { count, .. }
            | Fault::CommitThenFail { count, .. }
            | Fault::CommitThenDrop { count }
            | Fault::DropConnection { count, .. } => *count > 0,
            Fault::RateLimitedRatio { .. }
            | Fault::ServerErrorRatio { .. }
            | Fault::Latency { .. } => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn only_the_first_matching_disruption_is_spent_and_used_up_rules_disappear() {
        let mut rules = FaultRules::default();
        rules.push(Fault::ServerError {
            count: 1,
            status: 503,
            only: Some(Endpoint::CreateToken),
        });
        rules.push(Fault::RateLimited {
            count: 2,
            retry_after: None,
            only: None,
        });
        let mut rng = StdRng::seed_from_u64(7);

        let (_, first) = rules.before(Endpoint::Me, &mut rng);
        assert_eq!(first, Some(Disruption::RateLimited { retry_after: None }));
        let (_, second) = rules.before(Endpoint::CreateToken, &mut rng);
        assert_eq!(second, Some(Disruption::ServerError { status: 503 }));
        let (_, third) = rules.before(Endpoint::CreateToken, &mut rng);
        assert_eq!(third, Some(Disruption::RateLimited { retry_after: None }));
        assert_eq!(rules.before(Endpoint::Me, &mut rng).1, None);
        assert!(rules.rules().is_empty());
    }

    #[test]
    fn faults_serialize_as_kind_tagged_json_with_millisecond_durations() {
        let fault = Fault::CommitThenFail {
            count: 1,
            stall: Some(Duration::from_millis(1500)),
        };
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "commit_then_fail", "count": 1, "stall_ms": 1500})
        );
        let parsed: Fault = serde_json::from_str(r#"{"kind":"rate_limited","count":3}"#).unwrap();
        assert_eq!(
            parsed,
            Fault::RateLimited {
                count: 3,
                retry_after: None,
                only: None
            }
        );
    }

    #[test]
    fn unusable_rules_are_normalized_rather_than_rejected_from_rust() {
        let fault = Fault::ServerErrorRatio {
            ratio: 7.0,
            status: 404,
            only: None,
        };
        assert!(fault.problem().is_some());
        assert_eq!(
            fault.normalized(),
            Fault::ServerErrorRatio {
                ratio: 1.0,
                status: 500,
                only: None
            }
        );
    }
}
