//! The purchase state machine: the one place that says which status changes are allowed.
//!
//! ```text
//!            Paid            Fulfilled
//!   pending ──────▶ paid ───────────▶ fulfilled
//!      │ │            │                  │
//!      │ └── Refunded / Disputed / Revoked ┴──▶ refunded | disputed | revoked (terminal)
//!      ├── Expired ──▶ expired                                      (terminal)
//!      └── PaymentFailed ──▶ failed                                 (terminal)
//! ```
//!
//! It is monotonic: no status is ever left for an earlier one, and the four terminal statuses absorb
//! everything. A refund or dispute seen before the payment moves a pending purchase straight to its
//! terminal status, so a late (or replayed) "paid" finds it closed and can never mint a token. The
//! database backs the terminal rule with the `purchase_never_reopens` trigger.

use serde::{Deserialize, Serialize};

/// Where a purchase is. Stored as the `purchase_status` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "purchase_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PurchaseStatus {
    Pending,
    Paid,
    Fulfilled,
    Refunded,
    Disputed,
    Revoked,
    Expired,
    Failed,
}

/// Something that happened to a purchase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PurchaseEvent {
    /// Stripe says the money is there.
    Paid,
    /// A token was assigned.
    Fulfilled,
    /// A full refund.
    Refunded,
    /// A dispute (chargeback) was opened.
    Disputed,
    /// An operator revoked access without refunding.
    Revoked,
    /// The Checkout Session expired unpaid.
    Expired,
    /// A delayed payment method failed.
    PaymentFailed,
}

impl PurchaseStatus {
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Paid,
        Self::Fulfilled,
        Self::Refunded,
        Self::Disputed,
        Self::Revoked,
        Self::Expired,
        Self::Failed,
    ];

    /// No event moves a purchase out of a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Refunded | Self::Disputed | Self::Revoked | Self::Expired | Self::Failed
        )
    }

    /// Whether a purchase in this status is owed a live token.
    pub fn is_owed_a_token(self) -> bool {
        matches!(self, Self::Paid | Self::Fulfilled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// The status after `event`, or `None` when the event changes nothing (a duplicate, a late
    /// event, or one that does not apply to this status).
    pub fn next(self, event: PurchaseEvent) -> Option<Self> {
        use PurchaseEvent as E;
        use PurchaseStatus as S;
        match (self, event) {
            (S::Pending, E::Paid) => Some(S::Paid),
            (S::Paid, E::Fulfilled) => Some(S::Fulfilled),
            (S::Pending | S::Paid | S::Fulfilled, E::Refunded) => Some(S::Refunded),
            (S::Pending | S::Paid | S::Fulfilled, E::Disputed) => Some(S::Disputed),
            (S::Paid | S::Fulfilled, E::Revoked) => Some(S::Revoked),
            (S::Pending, E::Expired) => Some(S::Expired),
            (S::Pending, E::PaymentFailed) => Some(S::Failed),
            _ => None,
        }
    }

    /// Position along the machine, for the monotonicity property: every change goes up.
    #[cfg(test)]
    fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Paid => 1,
            Self::Fulfilled => 2,
            Self::Refunded | Self::Disputed | Self::Revoked | Self::Expired | Self::Failed => 3,
        }
    }
}

impl std::fmt::Display for PurchaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PurchaseStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                crate::Error::invalid("status", format!("unknown purchase status {s:?}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PurchaseEvent as E;
    use PurchaseStatus as S;

    const EVENTS: [PurchaseEvent; 7] = [
        E::Paid,
        E::Fulfilled,
        E::Refunded,
        E::Disputed,
        E::Revoked,
        E::Expired,
        E::PaymentFailed,
    ];

    #[test]
    fn the_happy_path_is_pending_paid_fulfilled() {
        assert_eq!(S::Pending.next(E::Paid), Some(S::Paid));
        assert_eq!(S::Paid.next(E::Fulfilled), Some(S::Fulfilled));
    }

    #[test]
    fn every_change_moves_forward() {
        for from in S::ALL {
            for event in EVENTS {
                if let Some(to) = from.next(event) {
                    assert!(
                        to.rank() > from.rank(),
                        "{from:?} --{event:?}--> {to:?} goes backwards"
                    );
                }
            }
        }
    }

    #[test]
    fn terminal_statuses_absorb_every_event() {
        for from in S::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                assert_eq!(from.next(event), None, "{from:?} moved on {event:?}");
            }
        }
    }

    #[test]
    fn refund_before_payment_is_a_tombstone_that_a_late_payment_cannot_lift() {
        let refunded = S::Pending.next(E::Refunded).unwrap();
        assert_eq!(refunded, S::Refunded);
        assert_eq!(refunded.next(E::Paid), None);
        assert_eq!(refunded.next(E::Fulfilled), None);
        let disputed = S::Pending.next(E::Disputed).unwrap();
        assert_eq!(disputed.next(E::Paid), None);
    }

    #[test]
    fn duplicates_change_nothing() {
        assert_eq!(S::Paid.next(E::Paid), None);
        assert_eq!(S::Fulfilled.next(E::Paid), None);
        assert_eq!(S::Fulfilled.next(E::Fulfilled), None);
    }

    #[test]
    fn only_paid_and_fulfilled_purchases_are_owed_a_token() {
        let owed: Vec<_> = S::ALL.into_iter().filter(|s| s.is_owed_a_token()).collect();
        assert_eq!(owed, [S::Paid, S::Fulfilled]);
    }

    #[test]
    fn a_token_is_only_reachable_through_payment() {
        // Walk every event sequence of length <= 4 from pending: a purchase reaches `fulfilled`
        // only if `Paid` came before any refund, dispute, expiry or failure.
        fn walk(status: S, seen_paid_first: bool, depth: u8) {
            if status == S::Fulfilled {
                assert!(seen_paid_first);
            }
            if depth == 0 {
                return;
            }
            for event in EVENTS {
                if let Some(next) = status.next(event) {
                    walk(
                        next,
                        seen_paid_first || (event == E::Paid && !status.is_terminal()),
                        depth - 1,
                    );
                }
            }
        }
        walk(S::Pending, false, 4);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in S::ALL {
            assert_eq!(status.as_str().parse::<S>().unwrap(), status);
        }
        assert!("bogus".parse::<S>().is_err());
    }
}
