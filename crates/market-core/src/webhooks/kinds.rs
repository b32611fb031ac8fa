//! The two values the rest of `webhooks` shares: who may touch which endpoints ([`Scope`]) and what
//! an event is about ([`EventType`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whose endpoints a call may see and change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A seller: its own endpoints only.
    Seller(Uuid),
    /// The operator: every endpoint, the platform's and every seller's.
    Operator,
}

impl Scope {
    /// The seller a query is limited to, if any (`($n::uuid is null or seller_id = $n)`).
    pub(crate) fn seller(self) -> Option<Uuid> {
        match self {
            Self::Seller(seller) => Some(seller),
            Self::Operator => None,
        }
    }
}

/// What an event is about. The names are the wire's (`purchase.paid`, …) and the schema's
/// (`webhook_event.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "purchase.paid")]
    PurchasePaid,
    #[serde(rename = "purchase.fulfilled")]
    PurchaseFulfilled,
    #[serde(rename = "purchase.refunded")]
    PurchaseRefunded,
    #[serde(rename = "purchase.disputed")]
    PurchaseDisputed,
    #[serde(rename = "purchase.upgraded")]
    PurchaseUpgraded,
    #[serde(rename = "token.rotated")]
    TokenRotated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "pool.low")]
    PoolLow,
    #[serde(rename = "credential.unhealthy")]
    CredentialUnhealthy,
    #[serde(rename = "credential.healthy")]
    CredentialHealthy,
    #[serde(rename = "job.dead")]
    JobDead,
}

impl EventType {
    pub const ALL: [Self; 11] = [
        Self::PurchasePaid,
        Self::PurchaseFulfilled,
        Self::PurchaseRefunded,
        Self::PurchaseDisputed,
        Self::PurchaseUpgraded,
        Self::TokenRotated,
        Self::TokenRevoked,
        Self::PoolLow,
        Self::CredentialUnhealthy,
        Self::CredentialHealthy,
        Self::JobDead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PurchasePaid => "purchase.paid",
            Self::PurchaseFulfilled => "purchase.fulfilled",
            Self::PurchaseRefunded => "purchase.refunded",
            Self::PurchaseDisputed => "purchase.disputed",
            Self::PurchaseUpgraded => "purchase.upgraded",
            Self::TokenRotated => "token.rotated",
            Self::TokenRevoked => "token.revoked",
            Self::PoolLow => "pool.low",
            Self::CredentialUnhealthy => "credential.unhealthy",
            Self::CredentialHealthy => "credential.healthy",
            Self::JobDead => "job.dead",
        }
    }

    /// Whether the event is about the buyer's token, so that an endpoint that opted in
    /// (`include_token`) receives the token's value with it.
    pub fn carries_token(self) -> bool {
        matches!(self, Self::PurchaseFulfilled | Self::TokenRotated)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert!("purchase.unknown".parse::<EventType>().is_err());
    }
}
