//! When Xano says no (401 or 403) to a job: whose refusal is it?
//!
//! - **This instance's credential** (a 401, or a 403 that `GET /auth/me` answers with a 401 or 403
//!   too): recorded on this credential's row only, and the job is *released*: queued, due now, its
//!   attempt not counted, for an instance whose credential works. No instance parks work another one
//!   could do; if every credential is refused, the jobs simply wait in the queue.
//! - **One snippet** (a 403 while `GET /auth/me` succeeds): the job *parks* for its listing, and the
//!   listing is recorded as forbidden (`queue::finish`), so every other listing's work goes on.
//! - **Unknown** (`GET /auth/me` fails otherwise: Xano is down or slow): retried with backoff, like
//!   any other transient failure.

use std::time::Duration;

use crate::queue::{Finish, Job, JobKind};
use crate::{ListingId, Market, PurchaseId, TierId, health};

/// The finish of a job Xano refused with `error` (a 401 or a 403); `backoff` is the delay before a
/// retry, when the refusal's scope cannot be told.
pub(super) async fn classify(
    market: &Market,
    job: &Job,
    error: master_api::Error,
    backoff: Duration,
) -> Finish {
    let message = error.to_string();
    let credential_refusal = match error {
        master_api::Error::Forbidden => match market.xano.me().await {
            Ok(_) => None,
            Err(e @ (master_api::Error::Unauthorized | master_api::Error::Forbidden)) => Some(e),
            Err(e) => {
                tracing::info!(job.kind = job.kind.as_str(), error = %e, "a 403 whose scope GET /auth/me could not tell; job will be retried");
                return retry(backoff, message);
            }
        },
        other => Some(other),
    };
    if let Some(refusal) = credential_refusal {
        if let Err(db) = health::record_refusal(market, &refusal).await {
            tracing::warn!(error = %db, "could not record the credential's refusal");
        }
        tracing::info!(job.kind = job.kind.as_str(), credential = %market.credential(), "Xano refused this instance's credential; job handed back for other instances");
        return Finish::Release { error: message };
    }
    match listing_of(market, job).await {
        Ok(Some(listing)) => Finish::Park {
            listing,
            credential: market.credential().display_id(),
            error: message,
        },
        Ok(None) => Finish::Dead {
            error: format!("{message}; and the job's subject is gone"),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not find the listing of a job Xano forbids");
            retry(backoff, message)
        }
    }
}

fn retry(after: Duration, error: String) -> Finish {
    Finish::Retry { after, error }
}

/// The listing whose snippet a job calls Xano about; `None` when its subject no longer exists.
async fn listing_of(market: &Market, job: &Job) -> crate::Result<Option<ListingId>> {
    let db = &market.db;
    let listing = match job.kind {
        JobKind::ReplenishPool => match job.subject.parse::<TierId>() {
            Ok(tier) => {
                sqlx::query_scalar("select listing_id from tier where tier_id = $1")
                    .bind(tier)
                    .fetch_optional(db)
                    .await?
            }
            Err(_) => None,
        },
        JobKind::MintForPurchase | JobKind::ApplyUpgrade => match job.subject.parse::<PurchaseId>()
        {
            Ok(purchase) => {
                sqlx::query_scalar(
                    "select t.listing_id from purchase p join tier t using (tier_id)
                     where p.purchase_id = $1",
                )
                .bind(purchase)
                .fetch_optional(db)
                .await?
            }
            Err(_) => None,
        },
        JobKind::DeleteToken => match job.subject.parse::<i64>() {
            Ok(token) => {
                sqlx::query_scalar(
                    "select listing_id from install_token where install_token_id = $1",
                )
                .bind(token)
                .fetch_optional(db)
                .await?
            }
            Err(_) => None,
        },
        JobKind::ReconcileListing => match job.subject.parse::<ListingId>() {
            Ok(listing) => {
                sqlx::query_scalar("select listing_id from listing where listing_id = $1")
                    .bind(listing)
                    .fetch_optional(db)
                    .await?
            }
            Err(_) => None,
        },
        // Mail does not call Xano: no snippet of its can be refused.
        JobKind::SendMail => None,
        JobKind::RotateToken => match job.subject.parse::<uuid::Uuid>() {
            Ok(rotation) => {
                sqlx::query_scalar(
                    "select it.listing_id from token_rotation r
                     join install_token it on it.install_token_id = r.old_token_id
                     where r.rotation_id = $1",
                )
                .bind(rotation)
                .fetch_optional(db)
                .await?
            }
            Err(_) => None,
        },
    };
    Ok(listing)
}
