//! What operators see of the job table (admin API `GET /v1/admin/jobs`, `market status`): counts by
//! kind and state, the jobs that need a person's eye, and what Xano refuses (credentials and
//! snippets), which is what queued and parked jobs wait for; and what a seller sees of it: the jobs
//! about its own listings (`GET /v1/seller/jobs`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::Actor;
use crate::health::{self, CredentialHealth, ForbiddenListing};
use crate::queue;
use crate::{Error, Result};

/// Every state a job can be in (`job_state`), for gauges that must read 0 when none is.
pub const STATES: [&str; 5] = ["queued", "running", "parked", "done", "dead"];

#[derive(Debug, sqlx::FromRow)]
pub struct JobCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: i64,
    pub kind: String,
    pub subject: String,
    pub state: String,
    pub attempt: i32,
    pub due_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn counts(pool: &PgPool) -> Result<Vec<JobCount>> {
    Ok(sqlx::query_as::<_, JobCount>(
        "select kind, state::text as state, count(*) as count
         from job
         group by kind, state
         order by kind, state",
    )
    .fetch_all(pool)
    .await?)
}

/// Dead and parked jobs, and live ones retried more than five times (Xano keeps refusing them),
/// most recently changed first; at most 100.
pub async fn needing_attention(pool: &PgPool) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(
        "select job_id, kind, subject, state::text as state, attempt, due_at, last_error, updated_at
         from job
         where state in ('dead', 'parked')
            or (state in ('queued', 'running') and attempt > 5)
         order by updated_at desc
         limit 100",
    )
    .fetch_all(pool)
    .await?)
}

/// Jobs in `state` (all when `None`), most recently changed first; at most `limit` (1..=1000).
pub async fn list(pool: &PgPool, state: Option<&str>, limit: i64) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(
        "select job_id, kind, subject, state::text as state, attempt, due_at, last_error, updated_at
         from job
         where $1::text is null or state::text = $1
         order by updated_at desc, job_id desc
         limit $2",
    )
    .bind(state)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?)
}

/// The jobs about `seller`'s listings (through the schema's `job_listing`: mail is nobody's), in
/// `state` (all when `None`), most recently changed first; at most `limit` (1..=1000).
pub async fn of_seller(
    pool: &PgPool,
    seller: Uuid,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(
        "select j.job_id, j.kind, j.subject, j.state::text as state, j.attempt, j.due_at,
                j.last_error, j.updated_at
         from job j join listing l on l.listing_id = job_listing(j.kind, j.subject)
         where l.seller_id = $3 and ($1::text is null or j.state::text = $1)
         order by j.updated_at desc, j.job_id desc
         limit $2",
    )
    .bind(state)
    .bind(limit.clamp(1, 1000))
    .bind(seller)
    .fetch_all(pool)
    .await?)
}

/// Requeues a dead job of `seller`'s (as `queue::requeue`); another seller's job, or the house's,
/// is `NotFound` like one that does not exist.
pub async fn requeue_for_seller(
    pool: &PgPool,
    job_id: i64,
    seller: Uuid,
    actor: &Actor,
) -> Result<()> {
    let owner = sqlx::query_scalar::<_, Uuid>(
        "select l.seller_id from job j join listing l on l.listing_id = job_listing(j.kind, j.subject)
         where j.job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await?;
    if owner != Some(seller) {
        return Err(Error::NotFound("job"));
    }
    queue::requeue(pool, job_id, actor).await
}

/// Everything operators see of the jobs at once: counts, the jobs needing attention, every Xano
/// credential instances use (jobs wait while every one is refused) and the listings whose snippet
/// Xano forbids (their jobs are parked).
#[derive(Debug)]
pub struct Overview {
    pub counts: Vec<JobCount>,
    pub attention: Vec<JobRow>,
    pub credentials: Vec<CredentialHealth>,
    pub forbidden_listings: Vec<ForbiddenListing>,
}

impl Overview {
    /// The credential in use in the worst state ([`health::worst_in_use`]).
    pub fn worst_credential(&self) -> Option<&CredentialHealth> {
        health::worst_in_use(&self.credentials)
    }
}

pub async fn read(pool: &PgPool) -> Result<Overview> {
    Ok(Overview {
        counts: counts(pool).await?,
        attention: needing_attention(pool).await?,
        credentials: health::credentials(pool).await?,
        forbidden_listings: health::forbidden_listings(pool).await?,
    })
}
