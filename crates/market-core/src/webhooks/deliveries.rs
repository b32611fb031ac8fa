//! The outbox as a queue: claiming deliveries in order, recording how each attempt ended, and
//! pruning what is old (putting deliveries back is `history`'s).
//!
//! **Order per purchase.** A delivery is claimable only while no delivery of an earlier event with
//! the same `order_key` to the same endpoint is pending (`webhook_delivery_in_order` answers that
//! from the index alone). Pending includes waiting out a backoff and being in flight under another
//! instance's lease, so an endpoint never receives a purchase's `purchase.refunded` before its
//! `purchase.fulfilled` was answered 2xx, and a retry of the first is never overtaken.
//!
//! **At least once.** A claim takes a lease (`due_at` moves to its end); an instance killed
//! mid-delivery leaves the delivery pending, and it is claimed again when the lease runs out. The
//! receiver then sees the same `webhook-id` twice: the duplicate the specification allows.
//!
//! **Fenced.** An attempt's end is recorded only while its lease is held; the log row is written
//! either way (the attempt happened).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;
use crate::audit::{Actor, Audit};
use crate::courier::Attempt;

/// Retries and patience.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The wait after the first failed attempt; doubled after each (with ±20 % jitter).
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_cap: Duration,
    /// How long after its first attempt a delivery is still retried (about three days).
    pub retry_for: Duration,
    /// How long an endpoint may fail without a single success before it is disabled.
    pub disable_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(6 * 3600),
            retry_for: Duration::from_secs(72 * 3600),
            disable_after: Duration::from_secs(72 * 3600),
        }
    }
}

impl Policy {
    /// The wait before the attempt after `attempts` failed ones.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let wait = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.retry_cap);
        wait.mul_f64(rand::rng().random_range(0.8..=1.2))
    }
}

/// A delivery claimed for sending, with what it takes to send it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Claimed {
    pub delivery_id: i64,
    pub endpoint_id: Uuid,
    pub url: String,
    pub include_token: bool,
    /// This attempt's number (1 for the first).
    pub attempts: i32,
    pub first_attempt_at: DateTime<Utc>,
    pub seq: i64,
    /// The `webhook-id`.
    pub event_id: Uuid,
    pub event_type: String,
    pub seller_id: Uuid,
    pub purchase_id: Option<Uuid>,
    pub token_id: Option<i64>,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries for `owner` (an instance), each under a lease of `lease`.
pub async fn claim(db: &PgPool, owner: Uuid, limit: i64, lease: Duration) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as::<_, Claimed>(
        "with picked as (
             select d.delivery_id
             from webhook_delivery d
             join webhook_endpoint e using (endpoint_id)
             where d.state = 'pending' and d.due_at <= now() and e.state = 'enabled'
               and not exists (select 1 from webhook_delivery p
                               where p.endpoint_id = d.endpoint_id and p.order_key = d.order_key
                                 and p.state = 'pending' and p.event_seq < d.event_seq)
             order by d.due_at
             limit $2
             for update of d skip locked
         ), leased as (
             update webhook_delivery d
             set lease_owner = $1, lease_until = now() + make_interval(secs => $3),
                 due_at = now() + make_interval(secs => $3), attempts = d.attempts + 1,
                 first_attempt_at = coalesce(d.first_attempt_at, now()), last_attempt_at = now()
             from picked
             where d.delivery_id = picked.delivery_id
             returning d.delivery_id, d.endpoint_id, d.event_seq, d.attempts, d.first_attempt_at
         )
         select l.delivery_id, l.endpoint_id, e.url, e.include_token, l.attempts, l.first_attempt_at,
                ev.seq, ev.event_id, ev.type as event_type, ev.seller_id, ev.purchase_id, ev.token_id,
                ev.data, ev.created_at
         from leased l
         join webhook_endpoint e using (endpoint_id)
         join webhook_event ev on ev.seq = l.event_seq
         order by ev.seq",
    )
    .bind(owner)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(db)
    .await?)
}

/// How recording an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Delivered,
    /// To be tried again after this wait.
    Retry(Duration),
    /// Still failing when its retries ran out: `failed`, until a redelivery or a replay.
    GaveUp,
    /// Another instance holds the delivery now (this one's lease ran out): only the log row was
    /// written.
    LostLease,
}

/// Records `attempt` of the `claimed` delivery by `owner`: the log row, the delivery's new state,
/// and the endpoint's run of failures; an endpoint failing for `policy.disable_after` is disabled
/// and its seller's message queued (returned `true` then).
pub async fn record(
    db: &PgPool,
    owner: Uuid,
    claimed: &Claimed,
    attempt: &Attempt,
    policy: &Policy,
) -> Result<(Recorded, bool)> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "insert into webhook_attempt (delivery_id, endpoint_id, status, latency_ms, response, error)
         values ($1, $2, $3, $4, left($5, 1024), left($6, 1024))",
    )
    .bind(claimed.delivery_id)
    .bind(claimed.endpoint_id)
    .bind(attempt.status.map(i32::from))
    .bind(i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX))
    .bind(attempt.response.as_deref())
    .bind(attempt.error.as_deref())
    .execute(&mut *tx)
    .await?;
    let succeeded = attempt.succeeded();
    let gave_up = !succeeded
        && (Utc::now() - claimed.first_attempt_at)
            .to_std()
            .unwrap_or_default()
            >= policy.retry_for;
    let wait = policy.backoff(claimed.attempts);
    let outcome = if succeeded {
        Recorded::Delivered
    } else if gave_up {
        Recorded::GaveUp
    } else {
        Recorded::Retry(wait)
    };
    let state = match outcome {
        Recorded::Delivered => "delivered",
        Recorded::GaveUp => "failed",
        _ => "pending",
    };
    let held = sqlx::query(
        "update webhook_delivery
         set state = $3, lease_owner = null, lease_until = null,
             due_at = case when $3 = 'pending' then now() + make_interval(secs => $4) else due_at end,
             delivered_at = case when $3 = 'delivered' then now() end,
             last_status = $5, last_error = left($6, 1024)
         where delivery_id = $1 and lease_owner = $2 and state = 'pending'",
    )
    .bind(claimed.delivery_id)
    .bind(owner)
    .bind(state)
    .bind(wait.as_secs_f64())
    .bind(attempt.status.map(i32::from))
    .bind(attempt.error.as_deref())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let disabled = endpoint_outcome(&mut tx, claimed.endpoint_id, succeeded, policy).await?;
    tx.commit().await?;
    Ok((if held { outcome } else { Recorded::LostLease }, disabled))
}

/// The endpoint's side of an attempt: a success ends its run of failures; a failure extends it,
/// and a run as long as `policy.disable_after` disables the endpoint and queues its seller's
/// message. Returns whether it was disabled now.
async fn endpoint_outcome(
    conn: &mut PgConnection,
    endpoint: Uuid,
    succeeded: bool,
    policy: &Policy,
) -> Result<bool> {
    if succeeded {
        sqlx::query(
            "update webhook_endpoint set failing_since = null, consecutive_failures = 0,
                 last_success_at = now()
             where endpoint_id = $1",
        )
        .bind(endpoint)
        .execute(&mut *conn)
        .await?;
        return Ok(false);
    }
    // Two statements: an update of a row that a `with` of the same statement updated is skipped
    // without a word (both see the same snapshot), so the endpoint was never disabled.
    sqlx::query(
        "update webhook_endpoint
         set failing_since = coalesce(failing_since, now()),
             consecutive_failures = consecutive_failures + 1
         where endpoint_id = $1",
    )
    .bind(endpoint)
    .execute(&mut *conn)
    .await?;
    let disabled = sqlx::query_as::<_, (Option<Uuid>, DateTime<Utc>, i32)>(
        "update webhook_endpoint
         set state = 'disabled', disabled_at = now(),
             disabled_reason = 'failed ' || consecutive_failures || ' attempts in a row since '
                 || to_char(failing_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
         where endpoint_id = $1 and state = 'enabled'
           and failing_since <= now() - make_interval(secs => $2)
         returning seller_id, failing_since, consecutive_failures",
    )
    .bind(endpoint)
    .bind(policy.disable_after.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((seller, failing_since, failures)) = disabled else {
        return Ok(false);
    };
    tracing::warn!(webhook.endpoint = %endpoint, failures, %failing_since, "webhook endpoint disabled after failing without a break");
    // The seller hears of it by email (the platform's endpoints: the operator reads the log, the
    // dashboard and the alert).
    let mail = Uuid::new_v4();
    let queued = sqlx::query(
        "insert into mail_message (mail_id, kind, fact, webhook_endpoint_id, recipient)
         select $1, 'webhook_disabled', 'webhook_disabled:' || $2::text || ':' || now()::text, $2, s.contact_email
         from seller s where s.seller_id = $3 and s.contact_email is not null",
    )
    .bind(mail)
    .bind(endpoint)
    .bind(seller)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if queued == 1 {
        crate::queue::enqueue(conn, crate::queue::JobKind::SendMail, &mail.to_string()).await?;
    }
    Audit::new(&Actor::System, "webhook.endpoint_disabled")
        .detail(serde_json::json!({
            "endpoint_id": endpoint,
            "failing_since": failing_since,
            "consecutive_failures": failures,
        }))
        .write(conn)
        .await?;
    Ok(true)
}

/// Deletes log rows and finished deliveries older than `keep`, and events no delivery needs that
/// are older than that too. Returns how many attempts went.
pub async fn prune(db: &PgPool, keep: Duration) -> Result<u64> {
    let secs = keep.as_secs_f64();
    let attempts = sqlx::query(
        "delete from webhook_attempt where attempted_at < now() - make_interval(secs => $1)",
    )
    .bind(secs)
    .execute(db)
    .await?
    .rows_affected();
    sqlx::query(
        "delete from webhook_delivery d using webhook_event ev
         where ev.seq = d.event_seq and d.state <> 'pending'
           and ev.created_at < now() - make_interval(secs => $1)",
    )
    .bind(secs)
    .execute(db)
    .await?;
    sqlx::query(
        "delete from webhook_event ev
         where ev.created_at < now() - make_interval(secs => $1)
           and not exists (select 1 from webhook_delivery d where d.event_seq = ev.seq)",
    )
    .bind(secs)
    .execute(db)
    .await?;
    Ok(attempts)
}
