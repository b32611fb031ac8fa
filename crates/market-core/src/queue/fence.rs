//! A worker's claim ([`Lease`]) and the fenced writes that end a run ([`finish`]): every one is
//! conditional on `(job_id, lease_owner, attempt)`, so a worker that lost its lease writes nothing.
//!
//! Two of the ends answer Xano's refusals: a job whose instance's credential is refused is
//! *released* (queued, due now, the attempt not counted) for an instance whose credential works; a
//! job whose snippet Xano forbids is *parked* for its listing, in the same transaction that records
//! the refusal it waits for.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::{ListingId, Result, db};

/// Identifies one claim of one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub job_id: i64,
    pub owner: Uuid,
    pub attempt: i32,
}

/// How a run ended, as the runner records it.
#[derive(Debug)]
pub enum Finish {
    Done,
    /// Run again after the delay (the error is kept for operators).
    Retry {
        after: Duration,
        error: String,
    },
    /// Xano refused this instance's credential: hand the job back, due now and its attempt not
    /// counted, for an instance whose credential works.
    Release {
        error: String,
    },
    /// Xano forbids the listing's snippet while the credential works: wait until a probe finds it
    /// allowed again (`health::lift`). `credential` is the display id of the one that met the 403.
    Park {
        listing: ListingId,
        credential: String,
        error: String,
    },
    /// Xano refused a seller's own credential (which every instance uses alike): wait until the
    /// seller replaces it or a probe finds it working again (`seller_xano`). `fingerprint` names the
    /// credential that was refused: if the seller replaced it meanwhile, the job is handed back
    /// instead.
    ParkForSeller {
        seller: Uuid,
        fingerprint: Vec<u8>,
        error: String,
    },
    /// Give up: retrying cannot help, or has not for too long. The job becomes `dead` (audited)
    /// until an operator requeues it or the sweep revives the work it was for.
    Dead {
        error: String,
    },
    /// Succeeded; a standing job (reconciliation) comes back after the delay as a fresh run.
    Reschedule {
        after: Duration,
    },
    /// Not done, and not failed: the work waits for other work (an upgrade for a rotation). It
    /// comes back after the delay, the wait counted as no attempt; dead jobs of the same work are
    /// left as they are (unlike [`Finish::Reschedule`], nothing was done).
    Wait {
        after: Duration,
    },
}

/// Records how the run ended; `false` when the lease had been lost (nothing is written about the
/// job then).
///
/// A park must not outlive the refusal it waits for, or nothing would ever resume it. It therefore
/// records the refusal (`xano_forbidden_listing`) in its own transaction, and the job names it under
/// a foreign key; `health::lift` locks that row before it resumes the listing's jobs and deletes it.
/// Either the park commits first and the lift resumes it, or the lift comes first and the park
/// records the refusal afresh, for the next probe to lift.
pub async fn finish(pool: &PgPool, lease: Lease, finish: &Finish) -> Result<bool> {
    let outcome = match finish {
        Finish::Done => Outcome::new("done", lease.attempt),
        Finish::Retry { after, error } => Outcome {
            after: *after,
            error: Some(error),
            ..Outcome::new("queued", lease.attempt)
        },
        Finish::Release { error } => Outcome {
            error: Some(error),
            ..Outcome::new("queued", lease.attempt - 1)
        },
        Finish::Reschedule { after } | Finish::Wait { after } => Outcome {
            after: *after,
            clear_error: true,
            ..Outcome::new("queued", 0)
        },
        Finish::Park {
            listing,
            credential,
            error,
        } => return park(pool, lease, *listing, credential, error).await,
        Finish::ParkForSeller {
            seller,
            fingerprint,
            error,
        } => return park_for_seller(pool, lease, *seller, fingerprint, error).await,
        Finish::Dead { error } => return die(pool, lease, error).await,
    };
    let mut conn = pool.acquire().await?;
    let written = record(&mut conn, lease, &outcome).await?;
    if written && matches!(finish, Finish::Done | Finish::Reschedule { .. }) {
        supersede_dead(&mut conn, lease.job_id).await?;
    }
    Ok(written)
}

/// A job whose work just succeeded settles the dead jobs of the same kind and subject: their work
/// is done (an operator requeued one of several that had died, or the sweep revived it), so they
/// no longer need anyone. They become `done`, their last error kept with a note; the audit log
/// still has each `job.dead`.
async fn supersede_dead(conn: &mut PgConnection, job_id: i64) -> Result<()> {
    let settled = sqlx::query(
        "update job dead
         set state = 'done',
             last_error = coalesce(dead.last_error, '') || ' (its work was done by job ' || done.job_id || ')'
         from job done
         where done.job_id = $1 and dead.kind = done.kind and dead.subject = done.subject
           and dead.state = 'dead'",
    )
    .bind(job_id)
    .execute(conn)
    .await?
    .rows_affected();
    if settled > 0 {
        tracing::info!(
            job.id = job_id,
            settled,
            "dead jobs whose work this job did are settled"
        );
    }
    Ok(())
}

async fn park(
    pool: &PgPool,
    lease: Lease,
    listing: ListingId,
    credential: &str,
    error: &str,
) -> Result<bool> {
    let (written, new) = db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let new = sqlx::query_scalar::<_, bool>(
            "insert into xano_forbidden_listing as f (listing_id, last_error, seen_by)
             values ($1, $2, $3)
             on conflict (listing_id) do update
                 set last_error = excluded.last_error, seen_by = excluded.seen_by
             returning f.since = now()",
        )
        .bind(listing)
        .bind(error)
        .bind(credential)
        .fetch_one(&mut *tx)
        .await?;
        if new {
            Audit::new(&Actor::System, "xano.snippet_forbidden")
                .listing(listing)
                .detail(serde_json::json!({ "credential": credential, "error": error }))
                .write(&mut tx)
                .await?;
        }
        let outcome = Outcome {
            error: Some(error),
            parked_for: Some(listing),
            ..Outcome::new("parked", lease.attempt)
        };
        let written = record(&mut tx, lease, &outcome).await?;
        tx.commit().await?;
        Ok((written, new))
    })
    .await?;
    if new {
        tracing::warn!(listing.id = %listing, credential, error, "Xano forbids this listing's snippet while the credential works; its jobs park until a probe finds it allowed again");
    }
    Ok(written)
}

/// Records the seller's credential as refused (only if it is still the one that was refused) and
/// parks the job for the seller, in one transaction; a credential replaced meanwhile hands the job
/// back, due now, its attempt not counted.
async fn park_for_seller(
    pool: &PgPool,
    lease: Lease,
    seller: Uuid,
    fingerprint: &[u8],
    error: &str,
) -> Result<bool> {
    let (written, newly) = db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let refused = sqlx::query_scalar::<_, bool>(
            "update seller_xano_credential c
             set state = 'unauthorized', last_error = $3, refused_at = coalesce(c.refused_at, now())
             where seller_id = $1 and fingerprint = $2
             returning c.refused_at = now()",
        )
        .bind(seller)
        .bind(fingerprint)
        .bind(error)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match refused {
            Some(_) => Outcome {
                error: Some(error),
                parked_for_seller: Some(seller),
                ..Outcome::new("parked", lease.attempt)
            },
            None => Outcome {
                error: Some(error),
                ..Outcome::new("queued", lease.attempt - 1)
            },
        };
        let newly = refused == Some(true);
        if newly {
            Audit::new(&Actor::System, "seller.xano_refused")
                .detail(serde_json::json!({ "seller_id": seller, "error": error }))
                .write(&mut tx)
                .await?;
        }
        let written = record(&mut tx, lease, &outcome).await?;
        tx.commit().await?;
        Ok((written, newly))
    })
    .await?;
    if newly {
        tracing::warn!(seller.id = %seller, error, "Xano refuses this seller's credential; the seller's jobs park until it is replaced or works again");
    }
    Ok(written)
}

async fn die(pool: &PgPool, lease: Lease, error: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let outcome = Outcome {
        error: Some(error),
        ..Outcome::new("dead", lease.attempt)
    };
    let written = record(&mut tx, lease, &outcome).await?;
    if written {
        let (kind, subject) = sqlx::query_as::<_, (String, String)>(
            "select kind, subject from job where job_id = $1",
        )
        .bind(lease.job_id)
        .fetch_one(&mut *tx)
        .await?;
        Audit::new(&Actor::System, "job.dead")
            .detail(serde_json::json!({
                "job_id": lease.job_id, "kind": kind, "subject": subject,
                "attempts": lease.attempt, "error": error,
            }))
            .write(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// The row a finish writes.
struct Outcome<'a> {
    state: &'static str,
    attempt: i32,
    /// Due this long from now (queued jobs).
    after: Duration,
    /// Kept for operators; the previous error stays when `None`.
    error: Option<&'a str>,
    clear_error: bool,
    parked_for: Option<ListingId>,
    parked_for_seller: Option<Uuid>,
}

impl Outcome<'_> {
    fn new(state: &'static str, attempt: i32) -> Self {
        Self {
            state,
            attempt,
            after: Duration::ZERO,
            error: None,
            clear_error: false,
            parked_for: None,
            parked_for_seller: None,
        }
    }
}

async fn record(conn: &mut PgConnection, lease: Lease, outcome: &Outcome<'_>) -> Result<bool> {
    let updated = sqlx::query(
        "update job
         set state = $4::job_state, attempt = $5, lease_owner = null,
             due_at = now() + make_interval(secs => $6),
             last_error = case when $8 then null else coalesce($7, last_error) end,
             finished_at = case when $4 in ('done', 'dead') then now() end,
             parked_for_listing = $9, parked_for_seller = $10
         where job_id = $1 and lease_owner = $2 and attempt = $3 and state = 'running'",
    )
    .bind(lease.job_id)
    .bind(lease.owner)
    .bind(lease.attempt)
    .bind(outcome.state)
    .bind(outcome.attempt)
    .bind(outcome.after.as_secs_f64())
    .bind(outcome.error)
    .bind(outcome.clear_error)
    .bind(outcome.parked_for)
    .bind(outcome.parked_for_seller)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
