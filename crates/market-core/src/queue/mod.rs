//! The job table as a queue: enqueue, claim with a lease, and fenced finishes.
//!
//! **Claim.** One statement picks due jobs with `for update skip locked` inside `materialized` CTEs
//! (one per lane: mail, then Xano work, see [`claim_in`]) and marks them running. The CTEs matter:
//! written as `where job_id in (select … limit n)`, PostgreSQL may plan the subquery as the inner
//! side of a nested loop and run it again per row, claiming more than `n` rows (odd-jobs#115,
//! delayed_job_active_record#177). A materialized CTE runs exactly once.
//! `tests/core/job_claim.rs` pins this with hash and merge joins disabled.
//!
//! **Fencing.** A claim bumps `attempt` and sets `lease_owner`. Every later write of the worker is
//! conditional on `(job_id, lease_owner, attempt)`; when the lease ran out and another worker claimed
//! the job, those writes match no row and the late worker knows it lost. `fence` holds the
//! [`Lease`] and the fenced [`finish`]es.
//!
//! **Xano's refusals.** A job whose instance's credential Xano refuses is *released* (queued, due
//! now, the attempt not counted): another instance's credential may work. A job whose snippet Xano
//! forbids is *parked* for its listing (`job.parked_for_listing`) until [`unpark_listing`], called
//! by `health::lift`, resumes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::{Conflict, Error, ListingId, Result};

mod fence;

pub use fence::{Finish, Lease, finish};

/// What a job does. Stored as text in `job.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum JobKind {
    /// Mint tokens until a tier's pool reaches its target. Subject: tier id.
    ReplenishPool,
    /// Give a paid purchase a token when the pool had none. Subject: purchase id.
    MintForPurchase,
    /// Delete a revoked or retired token at Xano. Subject: install token id.
    DeleteToken,
    /// Compare a listing's tokens at Xano with ours. Subject: listing id.
    ReconcileListing,
    /// Send a buyer's email from the outbox (`letters`). Subject: mail id. The one kind that does
    /// not call Xano.
    SendMail,
    /// Replace a purchase's token (`rotation`). Subject: rotation id.
    RotateToken,
    /// Set a purchase's token limit at Xano to its entitlement after an upgrade is paid or taken
    /// back (`upgrades`). Subject: the upgraded purchase's id.
    ApplyUpgrade,
}

impl JobKind {
    pub const ALL: [Self; 7] = [
        Self::ReplenishPool,
        Self::MintForPurchase,
        Self::DeleteToken,
        Self::ReconcileListing,
        Self::SendMail,
        Self::RotateToken,
        Self::ApplyUpgrade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReplenishPool => "replenish_pool",
            Self::MintForPurchase => "mint_for_purchase",
            Self::DeleteToken => "delete_token",
            Self::ReconcileListing => "reconcile_listing",
            Self::SendMail => "send_mail",
            Self::RotateToken => "rotate_token",
            Self::ApplyUpgrade => "apply_upgrade",
        }
    }
}

/// A job as a worker holds it after claiming it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub job_id: i64,
    pub kind: JobKind,
    pub subject: String,
    pub attempt: i32,
    pub lease_owner: Option<Uuid>,
    /// When the job was queued: a job failing for longer than `max_age` dies.
    pub created_at: DateTime<Utc>,
    /// The seller (not the house) whose listing the job is about (migration 28): an instance runs
    /// at most half its workers on one seller's jobs.
    pub seller_id: Option<Uuid>,
}

impl Job {
    /// The fence: this worker's claim.
    pub fn lease(&self) -> Lease {
        Lease {
            job_id: self.job_id,
            owner: self.lease_owner.unwrap_or_default(),
            attempt: self.attempt,
        }
    }
}

/// Queues a job unless one for the same subject is already live (queued, running or parked).
/// Returns whether a new job was queued.
pub async fn enqueue(conn: &mut PgConnection, kind: JobKind, subject: &str) -> Result<bool> {
    enqueue_at(conn, kind, subject, None).await
}

/// Like [`enqueue`], due at `due_at` (now when `None`).
pub async fn enqueue_at(
    conn: &mut PgConnection,
    kind: JobKind,
    subject: &str,
    due_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let inserted = sqlx::query(
        "insert into job (kind, subject, due_at) values ($1, $2, coalesce($3, now()))
         on conflict (kind, subject) where state in ('queued', 'running', 'parked') do nothing",
    )
    .bind(kind)
    .bind(subject)
    .bind(due_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Which jobs a claim may take, by what they wait on: mail (the SMTP server) or Xano.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub mail: bool,
    pub xano: bool,
}

impl Lanes {
    pub const ALL: Self = Self {
        mail: true,
        xano: true,
    };

    /// Whether a claim in these lanes could take anything at all.
    pub fn any(self) -> bool {
        self.mail || self.xano
    }
}

/// Claims up to `limit` due jobs (queued and due, or running with an expired lease) for `owner`.
pub async fn claim(pool: &PgPool, owner: Uuid, limit: i64, lease: Duration) -> Result<Vec<Job>> {
    claim_in(pool, owner, limit, lease, Lanes::ALL, &[]).await
}

/// Like [`claim`], in `lanes` only (an instance whose Xano credential is refused still sends mail;
/// one whose mail share is taken claims Xano work alone), and none of the sellers in `busy` (this
/// instance already runs its share of theirs).
///
/// **Mail first.** Due mail is claimed before Xano work of any age: a buyer waiting for a sign-in
/// link must not wait behind a backlog of mints after a Xano outage (the chaos suite saw mail
/// claimable for 15 s behind one). Mail is quick and bounded by the messages written; the runner
/// caps how many workers it holds. The two lanes are two locking reads, each in due order on its own
/// partial index (`job_due`, `job_due_mail`), so neither sorts the other's backlog.
pub async fn claim_in(
    pool: &PgPool,
    owner: Uuid,
    limit: i64,
    lease: Duration,
    lanes: Lanes,
    busy: &[Uuid],
) -> Result<Vec<Job>> {
    let jobs = sqlx::query_as::<_, Job>(
        "with mail as materialized (
             select job_id from job
             where state in ('queued', 'running') and due_at <= now() and kind = 'send_mail'
               and $4
             order by due_at
             limit $2
             for update skip locked
         ),
         xano as materialized (
             select job_id from job
             where state in ('queued', 'running') and due_at <= now() and kind <> 'send_mail'
               and $5
               and (seller_id is null or seller_id <> all($6))
             order by due_at
             limit (select $2 - count(*) from mail)
             for update skip locked
         ),
         due as (select job_id from mail union all select job_id from xano)
         update job
         set state = 'running', attempt = attempt + 1, lease_owner = $1,
             due_at = now() + make_interval(secs => $3)
         from due
         where job.job_id = due.job_id
         returning job.job_id, job.kind, job.subject, job.attempt, job.lease_owner, job.created_at,
                   job.seller_id",
    )
    .bind(owner)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(lanes.mail)
    .bind(lanes.xano)
    .bind(busy)
    .fetch_all(pool)
    .await?;
    Ok(jobs)
}

/// Extends the lease; `false` means the lease was lost to another worker.
pub async fn heartbeat(conn: &mut PgConnection, lease: Lease, duration: Duration) -> Result<bool> {
    let updated = sqlx::query(
        "update job set due_at = now() + make_interval(secs => $4)
         where job_id = $1 and lease_owner = $2 and attempt = $3 and state = 'running'",
    )
    .bind(lease.job_id)
    .bind(lease.owner)
    .bind(lease.attempt)
    .bind(duration.as_secs_f64())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Locks the job row if this worker still holds the lease: call it inside the transaction that
/// records a job's effect, so the effect commits only together with a valid claim.
pub async fn hold(conn: &mut PgConnection, lease: Lease) -> Result<bool> {
    let held = sqlx::query_scalar::<_, i64>(
        "select job_id from job
         where job_id = $1 and lease_owner = $2 and attempt = $3 and state = 'running'
         for update",
    )
    .bind(lease.job_id)
    .bind(lease.owner)
    .bind(lease.attempt)
    .fetch_optional(conn)
    .await?;
    Ok(held.is_some())
}

/// Hands back every job `owner` still holds, due at once (graceful shutdown: another instance picks
/// them up without waiting for the leases to run out).
pub async fn release_all(pool: &PgPool, owner: Uuid) -> Result<u64> {
    Ok(sqlx::query(
        "update job set state = 'queued', lease_owner = null, due_at = now()
         where lease_owner = $1 and state = 'running'",
    )
    .bind(owner)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Puts the jobs parked for `listing` back in the queue (Xano allows its snippet again). Call it in
/// the transaction that deletes the listing's refusal, after locking that row.
pub async fn unpark_listing(conn: &mut PgConnection, listing: ListingId) -> Result<u64> {
    Ok(sqlx::query(
        "update job set state = 'queued', due_at = now(), parked_for_listing = null
         where state = 'parked' and parked_for_listing = $1",
    )
    .bind(listing)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Makes `listing`'s reconciliation due now: the queued one brought forward, or one queued if there
/// is none. For a job that finds a token of ours missing from Xano's list and cannot tell a list
/// cut short from a token gone; the reconciliation, with its guard, decides which.
pub async fn reconcile_soon(conn: &mut PgConnection, listing: ListingId) -> Result<()> {
    let subject = listing.to_string();
    let moved = sqlx::query(
        "update job set due_at = now()
         where kind = $1 and subject = $2 and state = 'queued' and due_at > now()",
    )
    .bind(JobKind::ReconcileListing)
    .bind(&subject)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        enqueue(conn, JobKind::ReconcileListing, &subject).await?;
    }
    Ok(())
}

/// Puts a dead job back in the queue, due now, its attempts counted afresh. Refused when the job is
/// not dead, or when a live job for the same work exists (the sweep revived it meanwhile).
pub async fn requeue(pool: &PgPool, job_id: i64, actor: &Actor) -> Result<()> {
    let mut tx = pool.begin().await?;
    let state =
        sqlx::query_scalar::<_, String>("select state::text from job where job_id = $1 for update")
            .bind(job_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("job"))?;
    if state != "dead" {
        return Err(Conflict::JobNotDead.into());
    }
    let requeued = sqlx::query(
        "update job
         set state = 'queued', attempt = 0, due_at = now(), finished_at = null
         where job_id = $1
           and not exists (select 1 from job live
                           where live.kind = job.kind and live.subject = job.subject
                             and live.state in ('queued', 'running', 'parked'))",
    )
    .bind(job_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if requeued == 0 {
        return Err(Conflict::JobAlreadyLive.into());
    }
    Audit::new(actor, "job.requeued")
        .detail(serde_json::json!({ "job_id": job_id }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
