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
//!
//! A seller's listing is called with the seller's own credential (`accounts`), the same on every
//! instance: a refusal of it *parks* the job for the seller (`ParkForSeller`) until the seller
//! replaces it or a probe finds it working, and only that seller's work waits.

use std::time::Duration;

use crate::accounts::{self, SellerCredential};
use crate::queue::{Finish, Job};
use crate::{ListingId, Market, health};

/// The finish of a job Xano refused with `error` (a 401 or a 403); `backoff` is the delay before a
/// retry, when the refusal's scope cannot be told.
pub(super) async fn classify(
    market: &Market,
    job: &Job,
    error: master_api::Error,
    backoff: Duration,
) -> Finish {
    let message = error.to_string();
    match seller_of(market, job).await {
        Ok(Some((listing, credential))) => {
            return seller_refusal(market, job, &error, listing, credential, message, backoff)
                .await;
        }
        Ok(None) => {}
        Err(e) => {
            // Whose credential it was cannot be told: never blame this instance's for it.
            tracing::warn!(job.kind = job.kind.as_str(), error = %e, "could not tell whose Xano credential a job used; job will be retried");
            return retry(backoff, message);
        }
    }
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

/// The listing of the job and the seller credential its calls use, when it is a seller's (not the
/// house's, and not a job whose subject is gone). The credential is the seller's current one: if
/// the seller replaced it since the call, the new one may be marked refused, and the next probe
/// (or the replacement's own success) heals it.
async fn seller_of(
    market: &Market,
    job: &Job,
) -> crate::Result<Option<(ListingId, SellerCredential)>> {
    let Some(listing) = listing_of(market, job).await? else {
        return Ok(None);
    };
    let xano = match accounts::for_listing(market, listing).await {
        Ok(xano) => xano,
        Err(crate::Error::NotFound("listing")) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(xano.seller.map(|credential| (listing, credential)))
}

/// A refusal met with a seller's own credential: the same on every instance, so handing the job
/// back would only loop. A 401 (or a 403 that `GET /auth/me` with the seller's token answers with
/// a refusal too) parks the job for the seller; a 403 for one snippet parks it for its listing.
async fn seller_refusal(
    market: &Market,
    job: &Job,
    error: &master_api::Error,
    listing: ListingId,
    credential: SellerCredential,
    message: String,
    backoff: Duration,
) -> Finish {
    let credential_refused = match error {
        master_api::Error::Forbidden => {
            let me = match accounts::for_seller(market, credential.seller).await {
                Ok(xano) => xano.client.me().await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not build the seller's client to probe a 403");
                    return retry(backoff, message);
                }
            };
            match me {
                Ok(_) => false,
                Err(master_api::Error::Unauthorized | master_api::Error::Forbidden) => true,
                Err(e) => {
                    tracing::info!(job.kind = job.kind.as_str(), error = %e, "a 403 whose scope GET /auth/me could not tell; job will be retried");
                    return retry(backoff, message);
                }
            }
        }
        _ => true,
    };
    if credential_refused {
        return Finish::ParkForSeller {
            seller: credential.seller,
            fingerprint: credential.fingerprint,
            error: message,
        };
    }
    let [a, b, c, d, ..] = credential.fingerprint.as_slice() else {
        return retry(backoff, message);
    };
    Finish::Park {
        listing,
        credential: format!("{a:02x}{b:02x}{c:02x}{d:02x}"),
        error: message,
    }
}

fn retry(after: Duration, error: String) -> Finish {
    Finish::Retry { after, error }
}

/// The listing whose snippet a job calls Xano about; `None` when its subject no longer exists (and
/// for mail, which calls no Xano). The mapping from kind and subject is the schema's `job_listing`
/// (migration 26), which the seller API's job list reads too.
async fn listing_of(market: &Market, job: &Job) -> crate::Result<Option<ListingId>> {
    Ok(sqlx::query_scalar("select job_listing($1, $2)")
        .bind(job.kind.as_str())
        .bind(&job.subject)
        .fetch_one(&market.db)
        .await?)
}
