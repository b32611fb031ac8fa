//! Disputes, from inquiry to close. A dispute is not a refund: the bank may decide for the seller.
//!
//! Stripe tells a dispute's story in several events (`charge.dispute.created`, `.updated`,
//! `.closed`), delivered in any order, perhaps before the payment itself. Each is folded into the
//! PaymentIntent's `stripe_payment` row, which only ever learns more (`disputed` once a real
//! dispute is opened, `dispute_outcome` once it closes, first close wins), and the purchase's event
//! is derived from that merged row, never from the event alone. So a late `created` after a won
//! close derives "won" again and changes nothing, and a close seen first is waiting in the row for
//! the payment (like a refund's tombstone).
//!
//! - An inquiry (`warning_*` statuses) is not a dispute yet: audited, no status change, the buyer
//!   keeps access.
//! - An open dispute suspends access: `disputed`, its token deleted at Xano.
//! - Won: `reinstated`, and the buyer is given a token again through the same path as a payment
//!   ([`fulfil_locked`]); when the old token's deletion has not finished, its finish does it.
//! - Lost: `dispute_lost`, final.

use sqlx::PgConnection;

use super::closing::revoke_closed;
use super::fulfil::fulfil_locked;
use super::locked::{Outcome, locked_by_id, transition, unchanged};
use crate::audit::{Actor, Audit};
use crate::purchases::Purchase;
use crate::{PurchaseEvent, PurchaseId, PurchaseStatus, Result};

/// Where a dispute stands, as one of its events says (its object's `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeStage {
    /// `warning_needs_response` or `warning_under_review`: an inquiry, not (yet) a chargeback.
    Inquiry,
    /// `warning_closed`: an inquiry closed without becoming a chargeback.
    InquiryClosed,
    /// `needs_response` or `under_review`: a chargeback, funds withdrawn while the bank decides.
    Opened,
    /// `won` (or `prevented`): the seller keeps the money.
    Won,
    /// `lost`: the buyer keeps the money.
    Lost,
}

impl DisputeStage {
    /// Reads a dispute object's `status`. `None` for a status Stripe may add later.
    pub fn from_status(status: &str) -> Option<Self> {
        Some(match status {
            "warning_needs_response" | "warning_under_review" => Self::Inquiry,
            "warning_closed" => Self::InquiryClosed,
            "needs_response" | "under_review" => Self::Opened,
            "won" | "prevented" => Self::Won,
            "lost" => Self::Lost,
            _ => return None,
        })
    }

    fn outcome(self) -> Option<&'static str> {
        match self {
            Self::Won => Some("won"),
            Self::Lost => Some("lost"),
            Self::Inquiry | Self::InquiryClosed | Self::Opened => None,
        }
    }

    /// Whether this stage says a chargeback (not an inquiry) exists or existed.
    fn is_chargeback(self) -> bool {
        matches!(self, Self::Opened | Self::Won | Self::Lost)
    }
}

/// The purchase event a PaymentIntent's merged dispute facts call for.
pub(super) fn dispute_event(disputed: bool, outcome: Option<&str>) -> Option<PurchaseEvent> {
    match outcome {
        Some("won") => Some(PurchaseEvent::DisputeWon),
        Some("lost") => Some(PurchaseEvent::DisputeLost),
        _ if disputed => Some(PurchaseEvent::Disputed),
        _ => None,
    }
}

pub(super) async fn dispute(
    conn: &mut PgConnection,
    payment_intent: &str,
    stage: DisputeStage,
    actor: &Actor,
) -> Result<Outcome> {
    let (purchase_id, disputed, outcome) = sqlx::query_as::<_, (Option<PurchaseId>, bool, Option<String>)>(
        "insert into stripe_payment (payment_intent_id, disputed, dispute_outcome) values ($1, $2, $3)
         on conflict (payment_intent_id) do update
             set disputed = stripe_payment.disputed or excluded.disputed,
                 dispute_outcome = coalesce(stripe_payment.dispute_outcome, excluded.dispute_outcome)
         returning purchase_id, disputed, dispute_outcome",
    )
    .bind(payment_intent)
    .bind(stage.is_chargeback())
    .bind(stage.outcome())
    .fetch_one(&mut *conn)
    .await?;
    let Some(purchase) = locked_by_id(conn, purchase_id).await? else {
        return Ok(super::closing::tombstone());
    };
    let Some(event) = dispute_event(disputed, outcome.as_deref()) else {
        // An inquiry, opened or closed: the buyer keeps access; an operator can see it.
        let action = match stage {
            DisputeStage::InquiryClosed => "purchase.inquiry_closed",
            _ => "purchase.inquiry_opened",
        };
        Audit::new(actor, action)
            .purchase(purchase.purchase_id)
            .write(&mut *conn)
            .await?;
        return Ok(unchanged(&purchase));
    };
    apply_event(conn, &purchase, event, actor).await
}

/// Moves a locked purchase on a dispute event and does what the new status asks.
pub(super) async fn apply_event(
    conn: &mut PgConnection,
    purchase: &Purchase,
    event: PurchaseEvent,
    actor: &Actor,
) -> Result<Outcome> {
    match transition(conn, purchase, event, actor).await? {
        None => Ok(unchanged(purchase)),
        Some(PurchaseStatus::Reinstated) => {
            let reinstated = Purchase {
                status: PurchaseStatus::Reinstated,
                ..purchase.clone()
            };
            let effect = fulfil_locked(conn, &reinstated, actor).await?;
            Ok(Outcome {
                purchase: Some(purchase.purchase_id),
                status: Some(PurchaseStatus::Reinstated),
                effect,
            })
        }
        Some(status) => revoke_closed(conn, purchase, status, actor).await,
    }
}
