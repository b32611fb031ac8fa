//! What an endpoint's owner reads of its deliveries (one row per event, and every attempt), and
//! sending again: one delivery (redelivery) or every event of a time range (replay). Both put
//! deliveries back in the queue of `deliveries`, with their retry clocks reset, so order per
//! purchase holds for them as for any delivery.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::endpoints;
use super::kinds::Scope;
use crate::audit::{Actor, Audit};
use crate::{Error, Result};

/// A delivery as its endpoint's log shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Delivery {
    pub delivery_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub purchase_id: Option<Uuid>,
    pub state: String,
    pub attempts: i32,
    pub due_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One attempt as the delivery log shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LoggedAttempt {
    pub attempt_id: i64,
    pub delivery_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub attempted_at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// An endpoint's deliveries (newest first, before `before` when given), optionally in one state.
pub async fn list(
    db: &PgPool,
    scope: Scope,
    endpoint: Uuid,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    endpoints::get(db, scope, endpoint).await?;
    Ok(sqlx::query_as::<_, Delivery>(
        "select d.delivery_id, ev.event_id, ev.type as event_type, ev.purchase_id, d.state, d.attempts,
                d.due_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at
         from webhook_delivery d join webhook_event ev on ev.seq = d.event_seq
         where d.endpoint_id = $1 and ($2::text is null or d.state = $2)
           and ($3::bigint is null or d.delivery_id < $3)
         order by d.delivery_id desc
         limit $4",
    )
    .bind(endpoint)
    .bind(state)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// An endpoint's attempts, newest first (before attempt `before` when given).
pub async fn attempts(
    db: &PgPool,
    scope: Scope,
    endpoint: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LoggedAttempt>> {
    endpoints::get(db, scope, endpoint).await?;
    Ok(sqlx::query_as::<_, LoggedAttempt>(
        "select a.attempt_id, a.delivery_id, ev.event_id, ev.type as event_type, a.attempted_at,
                a.status, a.latency_ms, a.response, a.error
         from webhook_attempt a
         join webhook_delivery d using (delivery_id)
         join webhook_event ev on ev.seq = d.event_seq
         where a.endpoint_id = $1 and ($2::bigint is null or a.attempt_id < $2)
         order by a.attempted_at desc, a.attempt_id desc
         limit $3",
    )
    .bind(endpoint)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Sends one delivery of an endpoint in `scope` again, now (its retries start over). A delivery
/// that is pending already is left as it is.
pub async fn redeliver(
    db: &PgPool,
    scope: Scope,
    actor: &Actor,
    endpoint: Uuid,
    delivery: i64,
) -> Result<Delivery> {
    endpoints::get(db, scope, endpoint).await?;
    let mut tx = db.begin().await?;
    let exists: Option<String> = sqlx::query_scalar(
        "select state from webhook_delivery where delivery_id = $1 and endpoint_id = $2 for update",
    )
    .bind(delivery)
    .bind(endpoint)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.as_deref() != Some("pending") {
        exists.ok_or(Error::NotFound("webhook delivery"))?;
        sqlx::query(&format!(
            "update webhook_delivery set {AGAIN} where delivery_id = $1"
        ))
        .bind(delivery)
        .execute(&mut *tx)
        .await?;
        Audit::new(actor, "webhook.redelivered")
            .detail(serde_json::json!({ "endpoint_id": endpoint, "delivery_id": delivery }))
            .write(&mut tx)
            .await?;
    }
    tx.commit().await?;
    list(db, scope, endpoint, None, Some(delivery + 1), 1)
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound("webhook delivery"))
}

/// The most events one replay sends.
pub const MAX_REPLAY: i64 = 10_000;

/// Sends again every event in `[from, to)` that the endpoint (in `scope`) receives now: its
/// deliveries are queued again (delivered and failed ones too), and events it never had (made
/// before it existed, while it was disabled, or of a type it did not want then) are queued for it.
/// Returns how many deliveries were queued.
pub async fn replay(
    db: &PgPool,
    scope: Scope,
    actor: &Actor,
    endpoint: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64> {
    if from >= to {
        return Err(Error::Invalid {
            field: "from",
            message: "must be before `to`".into(),
        });
    }
    endpoints::get(db, scope, endpoint).await?;
    let mut tx = db.begin().await?;
    let events: i64 = sqlx::query_scalar(&format!(
        "select count(*) from webhook_event ev join webhook_endpoint e on e.endpoint_id = $1
         where {REPLAYED}"
    ))
    .bind(endpoint)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await?;
    if events > MAX_REPLAY {
        return Err(Error::Invalid {
            field: "from",
            message: format!(
                "the range holds {events} events; a replay sends at most {MAX_REPLAY}: narrow it"
            ),
        });
    }
    let queued = sqlx::query(&format!(
        "insert into webhook_delivery (event_seq, endpoint_id, order_key)
         select ev.seq, e.endpoint_id, ev.order_key
         from webhook_event ev join webhook_endpoint e on e.endpoint_id = $1
         where {REPLAYED}
         order by ev.seq
         on conflict (event_seq, endpoint_id) do update set {AGAIN}
             where webhook_delivery.state <> 'pending'"
    ))
    .bind(endpoint)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Audit::new(actor, "webhook.replayed")
        .detail(serde_json::json!({
            "endpoint_id": endpoint, "from": from, "to": to, "queued": queued,
        }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(queued)
}

/// The events of `[$2, $3)` that the endpoint `e` receives.
const REPLAYED: &str = "(e.seller_id is null or ev.seller_id = e.seller_id)
    and (cardinality(e.event_types) = 0 or ev.type = any (e.event_types))
    and ev.created_at >= $2 and ev.created_at < $3";

/// A delivery queued again: due now, its retry clock reset.
const AGAIN: &str =
    "state = 'pending', due_at = now(), first_attempt_at = null, delivered_at = null,
    lease_owner = null, lease_until = null";
