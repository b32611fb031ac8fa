//! Giving a paid purchase its token: from the pool in one short transaction, or, when the pool is
//! empty, through a job that mints one. (The common case, a pending purchase paid while its pool
//! has a token, is done in one statement before this path is taken: `one_statement.rs`.)

use sqlx::PgConnection;

use super::locked::{Effect, transition};
use crate::audit::{Actor, Audit};
use crate::purchases::Purchase;
use crate::queue::{self, JobKind};
use crate::{PurchaseEvent, PurchaseId, PurchaseStatus, Result, pool};

/// Gives a locked purchase owed a token (paid, fulfilled but token-less, or reinstated) a token
/// from its tier's pool; when the pool is empty, queues a job that mints one. The purchase's
/// `status` is as it was locked (a reinstated one's, as it is now).
///
/// A reinstated purchase whose old token is still `revoking` (its deletion at Xano under way)
/// waits: one purchase holds at most one live token, and the deletion's finish
/// (`jobs::delete`) calls this again.
pub(crate) async fn fulfil_locked(
    conn: &mut PgConnection,
    purchase: &Purchase,
    actor: &Actor,
) -> Result<Effect> {
    if let Some(base) = purchase.upgrade_of {
        // A repeated "paid" for an upgrade already applied: nothing to do.
        if purchase.status == PurchaseStatus::Fulfilled {
            return Ok(Effect::AlreadyFulfilled);
        }
        return queue_upgrade(conn, purchase.purchase_id, base, actor).await;
    }
    let live = sqlx::query_scalar::<_, String>(
        "select state::text from install_token
         where purchase_id = $1 and state in ('assigned', 'revoking')",
    )
    .bind(purchase.purchase_id)
    .fetch_optional(&mut *conn)
    .await?;
    match live.as_deref() {
        Some("assigned") => return Ok(Effect::AlreadyFulfilled),
        Some(_) => return Ok(Effect::AwaitingToken),
        None => {}
    }
    let effect = if let Some(token) = pool::claim(
        conn,
        purchase.tier_id,
        purchase.purchase_id,
        purchase.max_installs,
    )
    .await?
    {
        // A purchase locked as pending has just been moved to paid by its caller.
        if !purchase.status.may_hold_a_token() {
            let paid = Purchase {
                status: PurchaseStatus::Paid,
                ..purchase.clone()
            };
            transition(conn, &paid, PurchaseEvent::Fulfilled, actor).await?;
        }
        Audit::new(actor, "token.assigned")
            .purchase(purchase.purchase_id)
            .token(token)
            .write(&mut *conn)
            .await?;
        Effect::Fulfilled { token }
    } else {
        queue::enqueue(
            conn,
            JobKind::MintForPurchase,
            &purchase.purchase_id.to_string(),
        )
        .await?;
        Audit::new(actor, "purchase.awaiting_token")
            .purchase(purchase.purchase_id)
            .write(&mut *conn)
            .await?;
        Effect::AwaitingToken
    };
    pool::top_up_if_low(conn, purchase.tier_id).await?;
    Ok(effect)
}

/// A paid (or reinstated) upgrade holds no token: it raises its base's limit, through the
/// `apply_upgrade` job, which moves it to `fulfilled` once Xano has the new limit (`upgrades`).
pub(crate) async fn queue_upgrade(
    conn: &mut PgConnection,
    upgrade: PurchaseId,
    base: PurchaseId,
    actor: &Actor,
) -> Result<Effect> {
    if queue::enqueue(conn, JobKind::ApplyUpgrade, &base.to_string()).await? {
        Audit::new(actor, "upgrade.queued")
            .purchase(base)
            .detail(serde_json::json!({ "upgrade_id": upgrade }))
            .write(&mut *conn)
            .await?;
    }
    Ok(Effect::UpgradeQueued)
}
