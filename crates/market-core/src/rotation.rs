//! Token rotation: a buyer (or an operator) replaces a leaked token. The new token carries the old
//! one's installs, the old one is deleted at Xano, and the purchase never holds two live tokens.
//!
//! Asking ([`request`]) records a rotation and its `rotate_token` job in one transaction, so a
//! crash loses nothing and asking twice while one runs returns that one. The job (`jobs`) does the
//! work in steps that are each safe to run again (migration 18 lists them): it reserves the new
//! token away from the pool (state `reserved`, never live for a purchase), carries the installs
//! over with Xano's absolute update, deletes the old token, and only then, in one transaction,
//! revokes the old row and assigns the new one. Reconciliation leaves a token being rotated out
//! alone (its deletion at Xano may come before that transaction).
//!
//! **The install window.** Xano's update is absolute (`max_installs` and `current_installs` both
//! sent) and has no compare-and-set, so an install landing on the old token between the read of its
//! count and its deletion is not carried over: the buyer gains at most the installs of that
//! moment (one Xano round trip), never loses one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::payments::lock;
use crate::queue::{self, JobKind};
use crate::{Conflict, Error, PurchaseId, Result, TokenId, db};

/// A rotation as asked for.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Rotation {
    pub rotation_id: Uuid,
    pub purchase_id: PurchaseId,
    pub old_token_id: TokenId,
    pub new_token_id: Option<TokenId>,
    pub state: String,
    pub installs_carried: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Asks for `purchase`'s token to be replaced; returns the rotation (the running one, when one is
/// already under way). Refused unless the purchase holds a working token.
pub async fn request(pool: &PgPool, purchase: PurchaseId, actor: &Actor) -> Result<Rotation> {
    db::retry_transient(|| request_once(pool, purchase, actor)).await
}

async fn request_once(pool: &PgPool, purchase_id: PurchaseId, actor: &Actor) -> Result<Rotation> {
    let mut tx = pool.begin().await?;
    let purchase = lock(&mut tx, purchase_id)
        .await?
        .ok_or(Error::NotFound("purchase"))?;
    if let Some(running) = sqlx::query_as::<_, Rotation>(
        "select * from token_rotation where purchase_id = $1 and state = 'pending'",
    )
    .bind(purchase_id)
    .fetch_optional(&mut *tx)
    .await?
    {
        return Ok(running);
    }
    let old = sqlx::query_scalar::<_, TokenId>(
        "select install_token_id from install_token where purchase_id = $1 and state = 'assigned'",
    )
    .bind(purchase_id)
    .fetch_optional(&mut *tx)
    .await?
    .filter(|_| purchase.status.may_hold_a_token())
    .ok_or(Error::Conflict(Conflict::NotRotatable))?;
    let rotation = sqlx::query_as::<_, Rotation>(
        "insert into token_rotation (rotation_id, purchase_id, old_token_id, requested_by)
         values ($1, $2, $3, $4)
         returning *",
    )
    .bind(Uuid::new_v4())
    .bind(purchase_id)
    .bind(old)
    .bind(actor.label())
    .fetch_one(&mut *tx)
    .await?;
    queue::enqueue(
        &mut tx,
        JobKind::RotateToken,
        &rotation.rotation_id.to_string(),
    )
    .await?;
    Audit::new(actor, "token.rotation_requested")
        .purchase(purchase_id)
        .token(old)
        .detail(serde_json::json!({ "rotation_id": rotation.rotation_id }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(rotation)
}

/// The rotations of `purchase`, newest first.
pub async fn of_purchase(pool: &PgPool, purchase: PurchaseId) -> Result<Vec<Rotation>> {
    Ok(sqlx::query_as::<_, Rotation>(
        "select * from token_rotation where purchase_id = $1 order by created_at desc",
    )
    .bind(purchase)
    .fetch_all(pool)
    .await?)
}
