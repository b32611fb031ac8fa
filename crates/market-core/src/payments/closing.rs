//! Closing a purchase: refunds and an operator's revocation (disputes, which may also reopen one,
//! are `disputes.rs`'s). Each closes a known purchase and marks its live token for deletion at
//! Xano; a refund for a purchase not (yet) known leaves a tombstone on `stripe_payment` that a
//! later "paid" reads.

use sqlx::{PgConnection, PgPool};

use super::locked::{Effect, Outcome, lock, locked_by_id, transition, unchanged};
use crate::audit::{Actor, Audit};
use crate::provider::Refunds;
use crate::purchases::{self, Purchase};
use crate::queue::{self, JobKind};
use crate::{Conflict, Error, PurchaseEvent, PurchaseId, PurchaseStatus, Result, TokenId, db};

pub(super) async fn refund(
    conn: &mut PgConnection,
    payment_intent: &str,
    amount_refunded: i64,
    fully_refunded: bool,
    actor: &Actor,
) -> Result<Outcome> {
    let purchase_id = sqlx::query_scalar::<_, Option<PurchaseId>>(
        "insert into stripe_payment (payment_intent_id, amount_refunded, fully_refunded) values ($1, $2, $3)
         on conflict (payment_intent_id) do update
             set amount_refunded = greatest(stripe_payment.amount_refunded, excluded.amount_refunded),
                 fully_refunded = stripe_payment.fully_refunded or excluded.fully_refunded
         returning purchase_id",
    )
    .bind(payment_intent)
    .bind(amount_refunded)
    .bind(fully_refunded)
    .fetch_one(&mut *conn)
    .await?;
    let Some(purchase) = locked_by_id(conn, purchase_id).await? else {
        return Ok(tombstone());
    };
    sqlx::query("update purchase set amount_refunded = greatest(amount_refunded, $2) where purchase_id = $1")
        .bind(purchase.purchase_id)
        .bind(amount_refunded)
        .execute(&mut *conn)
        .await?;
    if !fully_refunded {
        Audit::new(actor, "purchase.partially_refunded")
            .purchase(purchase.purchase_id)
            .detail(serde_json::json!({ "amount_refunded": amount_refunded }))
            .write(&mut *conn)
            .await?;
        return Ok(Outcome {
            purchase: Some(purchase.purchase_id),
            status: Some(purchase.status),
            effect: Effect::PartialRefund,
        });
    }
    close(conn, &purchase, PurchaseEvent::Refunded, actor).await
}

/// Refund, dispute or revocation of a known purchase: close it and revoke whatever token it holds.
async fn close(
    conn: &mut PgConnection,
    purchase: &Purchase,
    event: PurchaseEvent,
    actor: &Actor,
) -> Result<Outcome> {
    let Some(status) = transition(conn, purchase, event, actor).await? else {
        return Ok(unchanged(purchase));
    };
    revoke_closed(conn, purchase, status, actor).await
}

/// A purchase just moved to the closed `status`: revokes whatever token it holds, and says so.
pub(super) async fn revoke_closed(
    conn: &mut PgConnection,
    purchase: &Purchase,
    status: PurchaseStatus,
    actor: &Actor,
) -> Result<Outcome> {
    if let Some(base) = purchase.upgrade_of {
        // An upgrade holds no token: its base's limit comes down (never below what is used).
        super::queue_upgrade(conn, purchase.purchase_id, base, actor).await?;
    }
    let tokens = revoke_locked(conn, purchase, actor).await?;
    let effect = if tokens > 0 {
        Effect::Revoking { tokens }
    } else {
        Effect::StatusChanged
    };
    Ok(Outcome {
        purchase: Some(purchase.purchase_id),
        status: Some(status),
        effect,
    })
}

/// A refund or dispute for a purchase not known yet: only the tombstone on `stripe_payment` changed.
pub(super) fn tombstone() -> Outcome {
    Outcome {
        purchase: None,
        status: None,
        effect: Effect::TombstoneRecorded,
    }
}

/// An operator takes a purchase's access away without refunding it (a leaked token, abuse): the
/// purchase becomes `revoked` and its token is deleted at Xano. Refunds go through Stripe instead,
/// and come back as `charge.refunded`.
pub async fn revoke_by_operator(
    pool: &PgPool,
    purchase: PurchaseId,
    actor: &Actor,
) -> Result<Outcome> {
    db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let Some(locked) = lock(&mut tx, purchase).await? else {
            return Err(Error::NotFound("purchase"));
        };
        let outcome = close(&mut tx, &locked, PurchaseEvent::Revoked, actor).await?;
        tx.commit().await?;
        Ok(outcome)
    })
    .await
}

/// Marks a closed purchase's live token for deletion at Xano and queues the deletion.
async fn revoke_locked(conn: &mut PgConnection, purchase: &Purchase, actor: &Actor) -> Result<u64> {
    let tokens = sqlx::query_scalar::<_, TokenId>(
        "update install_token set state = 'revoking' where purchase_id = $1 and state = 'assigned'
         returning install_token_id",
    )
    .bind(purchase.purchase_id)
    .fetch_all(&mut *conn)
    .await?;
    for token in &tokens {
        queue::enqueue(conn, JobKind::DeleteToken, &token.to_string()).await?;
        Audit::new(actor, "token.revoking")
            .purchase(purchase.purchase_id)
            .token(*token)
            .write(&mut *conn)
            .await?;
    }
    Ok(tokens.len() as u64)
}

/// What an operator's refund request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRequest {
    /// The provider was asked to refund (under the purchase's idempotency key).
    Requested,
    /// The purchase is already refunded (by an earlier request whose answer was lost, or at the
    /// provider's dashboard): nothing was asked, and a retry gets a success, not a conflict.
    AlreadyRefunded,
}

/// An operator refunds a purchase in full through the payment provider, and with it its upgrades
/// that are paid, applied or reinstated. Nothing changes here but the audit log: the token is
/// revoked when the provider's refund event arrives, like any other refund. Asking twice refunds once (the provider's idempotency key is the purchase), and asking
/// again once the refund has landed answers [`RefundRequest::AlreadyRefunded`]. Returns the
/// purchase as it was when the refund was asked for.
pub async fn request_refund(
    pool: &PgPool,
    purchase: PurchaseId,
    refunds: &impl Refunds,
    actor: &Actor,
) -> Result<(Purchase, RefundRequest)> {
    let purchase = purchases::by_id(pool, purchase)
        .await?
        .ok_or(Error::NotFound("purchase"))?;
    // What was paid for the purchase's upgrades goes back with it (each under its own key, so a
    // retry refunds nothing twice): refunded, the purchase has no token left to raise.
    let upgrades = purchases::upgrades_of(pool, purchase.purchase_id).await?;
    let standing = upgrades
        .iter()
        .filter(|u| u.status.is_owed_a_token() && u.payment_intent_id.is_some());
    if purchase.status == PurchaseStatus::Refunded {
        for upgrade in standing {
            refund_one(pool, upgrade, refunds, actor).await?;
        }
        return Ok((purchase, RefundRequest::AlreadyRefunded));
    }
    if purchase.payment_intent_id.is_none() || !purchase.status.is_owed_a_token() {
        return Err(Conflict::NotRefundable.into());
    }
    refund_one(pool, &purchase, refunds, actor).await?;
    for upgrade in standing {
        refund_one(pool, upgrade, refunds, actor).await?;
    }
    Ok((purchase, RefundRequest::Requested))
}

/// Asks the provider to refund `purchase` in full (keyed by the purchase), and audits it.
async fn refund_one(
    pool: &PgPool,
    purchase: &Purchase,
    refunds: &impl Refunds,
    actor: &Actor,
) -> Result<()> {
    let Some(payment_intent) = purchase.payment_intent_id.as_deref() else {
        return Err(Conflict::NotRefundable.into());
    };
    refunds
        .refund(
            purchase.purchase_id,
            payment_intent,
            purchase.connect_destination.is_some(),
        )
        .await
        .map_err(Error::Payments)?;
    let mut conn = pool.acquire().await?;
    let mut audit = Audit::new(actor, "purchase.refund_requested").purchase(purchase.purchase_id);
    if let Some(base) = purchase.upgrade_of {
        audit = audit.detail(serde_json::json!({ "upgrade_of": base }));
    }
    audit.write(&mut conn).await?;
    Ok(())
}
