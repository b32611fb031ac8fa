//! The fault engine: from the rules in force, what one request suffers.
//!
//! Rules are consulted in the order they were added, and only those whose scope covers the
//! request's account (see [`FaultRule`]). Every matching `Latency` rule adds its delay; the first
//! matching rule that *disrupts* (429, 5xx, dropped connection) decides the outcome and only that
//! rule's count is used up. Commit-then-fail rules are looked at only after a token creation
//! really succeeded, so a rule is never spent on a request that failed validation. Count-based
//! rules disappear once used up; ratio and latency rules stay until cleared.

use std::time::Duration;

use rand::Rng;

use super::endpoint::Endpoint;
use super::faults::{Fault, FaultRule};

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
    rules: Vec<FaultRule>,
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
    pub(crate) fn push(&mut self, rule: FaultRule) {
        self.rules.push(FaultRule {
            fault: rule.fault.normalized(),
            account: rule.account,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    /// Decides the delay and the disruption (if any) for one request to `endpoint` made as
    /// `account` (the `id` of the account holding its bearer token; `None` when no account does).
    pub(crate) fn before(
        &mut self,
        endpoint: Endpoint,
        account: Option<&str>,
        rng: &mut impl Rng,
    ) -> (Duration, Option<Disruption>) {
        let mut delay = Duration::ZERO;
        let mut disruption = None;
        for rule in self.rules.iter_mut().filter(|r| r.applies_to(account)) {
            if let Fault::Latency { min, max, only } = &rule.fault {
                if matches(*only, endpoint) {
                    delay += rng.random_range(*min..=*max);
                }
            } else if disruption.is_none() {
                disruption = disrupt(&mut rule.fault, endpoint, rng);
            }
        }
        self.forget_used_up();
        (delay, disruption)
    }

    /// Called once a token creation made as `account` has been committed: what, if anything,
    /// goes wrong now.
    pub(crate) fn after_commit(&mut self, account: Option<&str>) -> Option<AfterCommit> {
        let outcome = self
            .rules
            .iter_mut()
            .filter(|r| r.applies_to(account))
            .find_map(|rule| match &mut rule.fault {
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
        self.rules.retain(|rule| match &rule.fault {
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
        rules.push(
            Fault::ServerError {
                count: 1,
                status: 503,
                only: Some(Endpoint::CreateToken),
            }
            .into(),
        );
        rules.push(
            Fault::RateLimited {
                count: 2,
                retry_after: None,
                only: None,
            }
            .into(),
        );
        let mut rng = StdRng::seed_from_u64(7);

        let (_, first) = rules.before(Endpoint::Me, None, &mut rng);
        assert_eq!(first, Some(Disruption::RateLimited { retry_after: None }));
        let (_, second) = rules.before(Endpoint::CreateToken, None, &mut rng);
        assert_eq!(second, Some(Disruption::ServerError { status: 503 }));
        let (_, third) = rules.before(Endpoint::CreateToken, None, &mut rng);
        assert_eq!(third, Some(Disruption::RateLimited { retry_after: None }));
        assert_eq!(rules.before(Endpoint::Me, None, &mut rng).1, None);
        assert!(rules.rules().is_empty());
    }

    #[test]
    fn a_scoped_rule_is_neither_met_nor_spent_by_another_accounts_requests() {
        let mut rules = FaultRules::default();
        rules.push(
            Fault::RateLimited {
                count: 1,
                retry_after: None,
                only: None,
            }
            .for_account("c"),
        );
        rules.push(
            Fault::Latency {
                min: Duration::from_secs(20),
                max: Duration::from_secs(20),
                only: None,
            }
            .for_account("c"),
        );
        rules.push(Fault::CommitThenDrop { count: 1 }.for_account("c"));
        let mut rng = StdRng::seed_from_u64(7);

        assert_eq!(
            rules.before(Endpoint::Me, Some("a"), &mut rng),
            (Duration::ZERO, None)
        );
        assert_eq!(
            rules.before(Endpoint::Me, None, &mut rng),
            (Duration::ZERO, None)
        );
        assert_eq!(rules.after_commit(Some("a")), None);
        assert_eq!(rules.rules().len(), 3, "nothing was spent");

        let (delay, disruption) = rules.before(Endpoint::Me, Some("c"), &mut rng);
        assert_eq!(delay, Duration::from_secs(20));
        assert_eq!(
            disruption,
            Some(Disruption::RateLimited { retry_after: None })
        );
        assert_eq!(rules.after_commit(Some("c")), Some(AfterCommit::Drop));
        assert_eq!(rules.rules().len(), 1, "only the latency stays");
    }
}
