//! Where the Stripe events backfill stands: one cursor (a Stripe `created` timestamp), leased to
//! one instance per round so that a fleet lists Stripe's events once, not once per instance.
//!
//! The round itself (listing at Stripe, applying each missed event through the webhook's path)
//! is the HTTP crate's; this holds the bookkeeping in the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

/// A round's lease on the cursor.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    pub holder: Uuid,
    /// Every event created up to here was listed by an earlier round; `None` before the first.
    pub created_through: Option<DateTime<Utc>>,
}

/// Takes the cursor for `lease` unless another instance holds it. `None`: someone else is on it.
pub async fn claim(db: &PgPool, holder: Uuid, lease: Duration) -> Result<Option<Lease>> {
    Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
        "update stripe_backfill
         set leased_by = $1, leased_until = now() + make_interval(secs => $2)
         where leased_until is null or leased_until < now()
         returning created_through",
    )
    .bind(holder)
    .bind(lease.as_secs_f64())
    .fetch_optional(db)
    .await?
    .map(|created_through| Lease {
        holder,
        created_through,
    }))
}

/// Keeps the cursor for another `lease` while a round goes on (after each page). `false`: the
/// lease ran out and another instance took the cursor; the round stops.
pub async fn renew(db: &PgPool, lease: &Lease, duration: Duration) -> Result<bool> {
    Ok(sqlx::query(
        "update stripe_backfill set leased_until = now() + make_interval(secs => $2)
         where leased_by = $1",
    )
    .bind(lease.holder)
    .bind(duration.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Ends a round: moves the cursor forward to `created_through` (never back), counts what was
/// applied, and releases the lease. A round whose lease ran out and was taken meanwhile changes
/// nothing; the next round lists the same events again, which the inbox makes harmless.
pub async fn finish(
    db: &PgPool,
    lease: &Lease,
    created_through: Option<DateTime<Utc>>,
    applied: u64,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "update stripe_backfill
         set created_through = greatest(created_through, $2),
             events_applied = events_applied + $3,
             last_run_at = now(), last_error = $4,
             leased_by = null, leased_until = null
         where leased_by = $1",
    )
    .bind(lease.holder)
    .bind(created_through)
    .bind(i64::try_from(applied).unwrap_or(i64::MAX))
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// The cursor as operators see it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Cursor {
    pub created_through: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub events_applied: i64,
}

pub async fn get(db: &PgPool) -> Result<Cursor> {
    Ok(sqlx::query_as::<_, Cursor>(
        "select created_through, last_run_at, last_error, events_applied from stripe_backfill",
    )
    .fetch_one(db)
    .await?)
}

/// Which of `ids` the inbox has not seen (neither applied nor kept as unreadable).
pub async fn unseen(db: &PgPool, ids: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "select id from unnest($1::text[]) as listed (id)
         where not exists (select 1 from stripe_event e where e.stripe_event_id = listed.id)
           and not exists (select 1 from stripe_event_unreadable u where u.stripe_event_id = listed.id)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?)
}
