//! The purchase row as every payment path handles it: locked (`select … for update`) for the rest
//! of its transaction, moved along the state machine with its timestamps and audit entry, and the
//! [`Outcome`] each path reports.

use sqlx::PgConnection;

use crate::audit::{Actor, Audit};
use crate::purchases::Purchase;
use crate::{PurchaseEvent, PurchaseId, PurchaseStatus, Result, TokenId};

/// What applying a fact did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The event id was seen before: nothing done.
    Duplicate,
    /// The purchase took a token from the pool.
    Fulfilled { token: TokenId },
    /// Paid (or reinstated), but the pool was empty: a job will mint a token. Or reinstated while
    /// the old token's deletion is still under way: its finish gives the new one.
    AwaitingToken,
    /// Paid and already holding its token.
    AlreadyFulfilled,
    /// An upgrade paid (or taken back): the job that sets its base's limit at Xano is queued.
    UpgradeQueued,
    /// Refunded or disputed: its live tokens are being deleted at Xano.
    Revoking { tokens: u64 },
    /// A refund or dispute for a payment we have not seen yet: it will close the purchase when it comes.
    TombstoneRecorded,
    /// A partial refund: recorded, the token stays.
    PartialRefund,
    /// The status changed, nothing else to do (expired, failed, unpaid completion, …).
    StatusChanged,
    /// Nothing to change (a late or repeated fact).
    NoChange,
    /// The fact names no purchase of ours.
    UnknownPurchase,
    /// The session names a purchase of ours but is not its session: nothing was linked or changed.
    ForeignSession,
    /// A charge's transfer and application fee recorded on its payment (Stripe Connect).
    ChargeRecorded,
    /// What Stripe says about a seller's connected account recorded.
    AccountUpdated,
    /// An account that is no seller's: nothing changed.
    UnknownAccount,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Fulfilled { .. } => "fulfilled",
            Self::AwaitingToken => "awaiting_token",
            Self::AlreadyFulfilled => "already_fulfilled",
            Self::UpgradeQueued => "upgrade_queued",
            Self::Revoking { .. } => "revoking",
            Self::TombstoneRecorded => "tombstone_recorded",
            Self::PartialRefund => "partial_refund",
            Self::StatusChanged => "status_changed",
            Self::NoChange => "no_change",
            Self::UnknownPurchase => "unknown_purchase",
            Self::ForeignSession => "foreign_session",
            Self::ChargeRecorded => "charge_recorded",
            Self::AccountUpdated => "account_updated",
            Self::UnknownAccount => "unknown_account",
        }
    }
}

/// The result of [`apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub purchase: Option<PurchaseId>,
    pub status: Option<PurchaseStatus>,
    pub effect: Effect,
}

pub(super) fn unchanged(purchase: &Purchase) -> Outcome {
    Outcome {
        purchase: Some(purchase.purchase_id),
        status: Some(purchase.status),
        effect: Effect::NoChange,
    }
}

/// Locks a purchase row for the rest of the transaction.
pub(crate) async fn lock(conn: &mut PgConnection, id: PurchaseId) -> Result<Option<Purchase>> {
    Ok(
        sqlx::query_as::<_, Purchase>("select * from purchase where purchase_id = $1 for update")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub(super) async fn locked_by_id(
    conn: &mut PgConnection,
    id: Option<PurchaseId>,
) -> Result<Option<Purchase>> {
    match id {
        Some(id) => lock(conn, id).await,
        None => Ok(None),
    }
}

/// Moves a locked purchase along the state machine, stamping the matching time. `None` when the
/// event changes nothing.
pub(crate) async fn transition(
    conn: &mut PgConnection,
    purchase: &Purchase,
    event: PurchaseEvent,
    actor: &Actor,
) -> Result<Option<PurchaseStatus>> {
    let Some(next) = purchase.status.next(event) else {
        return Ok(None);
    };
    sqlx::query(
        "update purchase
         set status = $2,
             paid_at = case when $2 in ('paid', 'fulfilled', 'reinstated') then coalesce(paid_at, now()) else paid_at end,
             fulfilled_at = case when $2 = 'fulfilled' then coalesce(fulfilled_at, now()) else fulfilled_at end,
             closed_at = case when $2 in ('refunded', 'disputed', 'dispute_lost', 'revoked', 'expired', 'failed') then now()
                              when $2 = 'reinstated' then null
                              else closed_at end
         where purchase_id = $1",
    )
    .bind(purchase.purchase_id)
    .bind(next)
    .execute(&mut *conn)
    .await?;
    Audit::new(actor, status_action(next))
        .purchase(purchase.purchase_id)
        .detail(serde_json::json!({ "from": purchase.status, "to": next }))
        .write(conn)
        .await?;
    Ok(Some(next))
}

fn status_action(status: PurchaseStatus) -> &'static str {
    match status {
        PurchaseStatus::Pending => "purchase.pending",
        PurchaseStatus::Paid => "purchase.paid",
        PurchaseStatus::Fulfilled => "purchase.fulfilled",
        PurchaseStatus::Refunded => "purchase.refunded",
        PurchaseStatus::Disputed => "purchase.disputed",
        PurchaseStatus::Reinstated => "purchase.reinstated",
        PurchaseStatus::DisputeLost => "purchase.dispute_lost",
        PurchaseStatus::Revoked => "purchase.revoked",
        PurchaseStatus::Expired => "purchase.expired",
        PurchaseStatus::Failed => "purchase.failed",
    }
}
