//! The purchase state machine: the one place that says which status changes are allowed.
//!
//! ```text
//!            Paid            Fulfilled           Disputed              DisputeWon
//!   pending ──────▶ paid ───────────▶ fulfilled ─────────▶ disputed ────────────▶ reinstated
//!    │ │ │           │                  │                   │   │                    │
//!    │ │ └───────────┴── Disputed ──────┘                   │   └─ DisputeLost ──▶ dispute_lost
//!    │ └── Refunded / Revoked (from every status owed a token, and from disputed) ──▶ refunded | revoked
//!    ├── Expired ──▶ expired
//!    └── PaymentFailed ──▶ failed
//! ```
//!
//! It is monotonic: every change moves right along `pending < paid < fulfilled < disputed <
//! reinstated < (terminal)`, so no status is ever left for an earlier one and the machine has no
//! cycle. The five terminal statuses (refunded, revoked, dispute_lost, expired, failed) absorb
//! everything. A refund or dispute seen before the payment moves a pending purchase straight to
//! its closing status, so a late (or replayed) "paid" finds it closed and can never mint a token.
//!
//! Disputes are not final at creation. An open dispute (`disputed`) takes access away while the
//! bank decides: its token is deleted at Xano. A dispute the seller wins (`reinstated`) gives access
//! back, through a new token and the same exactly-once path as a payment; one the seller loses
//! (`dispute_lost`) is final. An inquiry (Stripe's `warning_*` statuses) is not a dispute yet and
//! changes no status. A charge has at most one dispute, so `reinstated` is never disputed again.
//!
//! `paid`, `fulfilled` and `reinstated` are owed a token; `fulfilled` and `reinstated` may hold one.
//! The database backs the order with the `purchase_moves_forward` trigger
//! (`purchase_status_rank`), so even a bug here cannot reopen a closed purchase.

use serde::{Deserialize, Serialize};

/// Where a purchase is. Stored as the `purchase_status` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "purchase_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    Pending,
    Paid,
    Fulfilled,
    Refunded,
    Disputed,
    /// The seller won the dispute: access is given back (a new token).
    Reinstated,
    /// The seller lost the dispute: closed for good.
    DisputeLost,
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
    /// A dispute (chargeback) was opened; not an inquiry.
    Disputed,
    /// The dispute closed in the seller's favour.
    DisputeWon,
    /// The dispute closed in the buyer's favour.
    DisputeLost,
    /// An operator revoked access without refunding.
    Revoked,
    /// The Checkout Session expired unpaid.
    Expired,
    /// A delayed payment method failed.
    PaymentFailed,
}

impl PurchaseStatus {
    pub const ALL: [Self; 10] = [
        Self::Pending,
        Self::Paid,
        Self::Fulfilled,
        Self::Refunded,
        Self::Disputed,
        Self::Reinstated,
        Self::DisputeLost,
        Self::Revoked,
        Self::Expired,
        Self::Failed,
    ];

    /// No event moves a purchase out of a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Refunded | Self::DisputeLost | Self::Revoked | Self::Expired | Self::Failed
        )
    }

    /// Whether a purchase in this status is owed a live token.
    pub fn is_owed_a_token(self) -> bool {
        matches!(self, Self::Paid | Self::Fulfilled | Self::Reinstated)
    }

    /// Whether a purchase in this status may hold an assigned token (the constraint triggers of
    /// migration 12 say the same).
    pub fn may_hold_a_token(self) -> bool {
        matches!(self, Self::Fulfilled | Self::Reinstated)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::Reinstated => "reinstated",
            Self::DisputeLost => "dispute_lost",
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
            (S::Pending | S::Paid | S::Fulfilled | S::Disputed | S::Reinstated, E::Refunded) => {
                Some(S::Refunded)
            }
            (S::Pending | S::Paid | S::Fulfilled, E::Disputed) => Some(S::Disputed),
            (S::Disputed, E::DisputeWon) => Some(S::Reinstated),
            (S::Pending | S::Paid | S::Fulfilled | S::Disputed, E::DisputeLost) => {
                Some(S::DisputeLost)
            }
            (S::Paid | S::Fulfilled | S::Disputed | S::Reinstated, E::Revoked) => Some(S::Revoked),
            (S::Pending, E::Expired) => Some(S::Expired),
            (S::Pending, E::PaymentFailed) => Some(S::Failed),
            _ => None,
        }
    }

    /// Position along the machine: every change goes up. The `purchase_status_rank` SQL function
    /// (migration 12) is the same table, for the trigger; a test compares the two.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Paid => 1,
            Self::Fulfilled => 2,
            Self::Disputed => 3,
            Self::Reinstated => 4,
            Self::Refunded | Self::DisputeLost | Self::Revoked | Self::Expired | Self::Failed => 5,
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

    const EVENTS: [PurchaseEvent; 9] = [
        E::Paid,
        E::Fulfilled,
        E::Refunded,
        E::Disputed,
        E::DisputeWon,
        E::DisputeLost,
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
        assert_eq!(disputed.next(E::Fulfilled), None);
    }

    #[test]
    fn duplicates_change_nothing() {
        assert_eq!(S::Paid.next(E::Paid), None);
        assert_eq!(S::Fulfilled.next(E::Paid), None);
        assert_eq!(S::Fulfilled.next(E::Fulfilled), None);
    }

    #[test]
    fn only_paid_fulfilled_and_reinstated_purchases_are_owed_a_token() {
        let owed: Vec<_> = S::ALL.into_iter().filter(|s| s.is_owed_a_token()).collect();
        assert_eq!(owed, [S::Paid, S::Fulfilled, S::Reinstated]);
        for status in S::ALL.into_iter().filter(|s| s.may_hold_a_token()) {
            assert!(
                status.is_owed_a_token(),
                "{status:?} holds a token it is not owed"
            );
        }
    }

    #[test]
    fn an_inquiry_changes_nothing_and_an_open_dispute_takes_access_away_until_it_closes() {
        // An inquiry is no event at all; an open dispute is not terminal.
        assert!(!S::Disputed.is_owed_a_token());
        assert!(!S::Disputed.is_terminal());
        assert_eq!(S::Fulfilled.next(E::Disputed), Some(S::Disputed));
    }

    #[test]
    fn a_won_dispute_reinstates_access_once_and_a_lost_one_is_final() {
        let reinstated = S::Disputed.next(E::DisputeWon).unwrap();
        assert_eq!(reinstated, S::Reinstated);
        assert!(reinstated.is_owed_a_token());
        // One dispute per charge: a late or replayed "created" never takes access away again.
        assert_eq!(reinstated.next(E::Disputed), None);
        assert_eq!(reinstated.next(E::DisputeLost), None);
        assert_eq!(reinstated.next(E::Refunded), Some(S::Refunded));
        let lost = S::Disputed.next(E::DisputeLost).unwrap();
        assert!(lost.is_terminal());
        assert_eq!(lost.next(E::DisputeWon), None);
        // A "won" for a purchase that never saw its dispute open changes nothing: it kept access.
        assert_eq!(S::Fulfilled.next(E::DisputeWon), None);
        // A "lost" seen first closes the purchase; a late "paid" or "created" cannot reopen it.
        assert_eq!(S::Pending.next(E::DisputeLost), Some(S::DisputeLost));
        assert_eq!(S::DisputeLost.next(E::Paid), None);
    }

    #[test]
    fn a_token_is_only_reachable_through_payment_or_a_won_dispute() {
        // Walk every event sequence of length <= 5 from pending: a purchase is owed a token only
        // if `Paid` came before any refund, dispute, expiry or failure, or a dispute was won (a
        // dispute needs a charge that succeeded; winning it is proof of payment).
        fn walk(status: S, proof: bool, depth: u8) {
            if status.is_owed_a_token() {
                assert!(proof, "{status:?} reached without payment");
            }
            if depth == 0 {
                return;
            }
            for event in EVENTS {
                if let Some(next) = status.next(event) {
                    let proves = match event {
                        E::Paid => status == S::Pending,
                        E::DisputeWon => true,
                        _ => false,
                    };
                    walk(next, (proof && !next.is_terminal()) || proves, depth - 1);
                }
            }
        }
        walk(S::Pending, false, 5);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in S::ALL {
            assert_eq!(status.as_str().parse::<S>().unwrap(), status);
        }
        assert!("bogus".parse::<S>().is_err());
    }
}
