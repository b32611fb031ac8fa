//! Fault injection: the rules a test adds at run time to make the simulator slow, limited, broken
//! or rude, and the scope that narrows a rule to one account's calls. What each request suffers is
//! decided from these rules by `fault_engine`.
//!
//! A rule is a [`Fault`] (what goes wrong, for which endpoint) inside a [`FaultRule`] (for whom).
//! The scope exists for multi-seller tests: a 429 storm or a latency at one seller's Xano account
//! must leave every other account's calls alone, and the call log must be able to show that it
//! did. A rule is matched on the account holding the request's bearer token, whatever that
//! token's state; a request with no token, or one no account holds, meets unscoped rules only.
//! [`Fault`] itself is unchanged by the scope, so every existing `Fault` literal and JSON body
//! still means "every account".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// What goes wrong, for every account unless put in a [`FaultRule`] with an account. Over HTTP
/// (`POST /__sim/faults`) it is JSON tagged by `kind`, with durations in milliseconds, e.g.
/// `{"kind":"rate_limited","count":2,"retry_after":1}` or
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

/// A [`Fault`] with its scope: `account` (an account's `id`, as in [`SimAccount`]) narrows it to
/// the requests whose bearer token that account holds; `None` hits every request.
///
/// Over HTTP it is the fault's own JSON with an optional `"account"` beside `"kind"`, e.g.
/// `{"kind":"latency","min_ms":20000,"max_ms":20000,"account":"103"}`; without `"account"` it is
/// exactly the JSON a [`Fault`] always had.
///
/// [`SimAccount`]: super::model::SimAccount
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub fault: Fault,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl FaultRule {
    /// Whether a request acting as `account` (`None`: no known account) is in this rule's scope.
    pub(crate) fn applies_to(&self, account: Option<&str>) -> bool {
        self.account
            .as_deref()
            .is_none_or(|scope| Some(scope) == account)
    }
}

impl From<Fault> for FaultRule {
    /// The rule for every account.
    fn from(fault: Fault) -> Self {
        Self {
            fault,
            account: None,
        }
    }
}

impl Fault {
    /// This fault for the calls of one account only (its [`SimAccount`] `id`).
    ///
    /// [`SimAccount`]: super::model::SimAccount
    #[must_use]
    pub fn for_account(self, account: impl Into<String>) -> FaultRule {
        FaultRule {
            fault: self,
            account: Some(account.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_rule_is_the_faults_json_with_an_optional_account_beside_its_kind() {
        let scoped = Fault::Latency {
            min: Duration::from_secs(20),
            max: Duration::from_secs(20),
            only: None,
        }
        .for_account("103");
        let json = serde_json::to_value(&scoped).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "latency", "min_ms": 20000, "max_ms": 20000, "only": null,
                "account": "103"
            })
        );
        assert_eq!(serde_json::from_value::<FaultRule>(json).unwrap(), scoped);

        let unscoped = r#"{"kind":"rate_limited","count":2,"retry_after":1}"#;
        let rule: FaultRule = serde_json::from_str(unscoped).unwrap();
        assert_eq!(rule.account, None, "no account: every account, as before");
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            serde_json::json!({"kind": "rate_limited", "count": 2, "retry_after": 1, "only": null}),
            "an unscoped rule is written without an account"
        );
    }

    #[test]
    fn a_scoped_rule_applies_to_its_account_only_and_an_unscoped_one_to_every_request() {
        let fault = Fault::DropConnection {
            count: 1,
            only: None,
        };
        let scoped = fault.clone().for_account("7");
        let unscoped = FaultRule::from(fault);

        assert!(scoped.applies_to(Some("7")));
        assert!(!scoped.applies_to(Some("8")));
        assert!(!scoped.applies_to(None), "an unknown caller is no account");
        assert!(unscoped.applies_to(Some("8")) && unscoped.applies_to(None));
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
