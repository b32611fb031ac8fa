//! Verified Stripe events the service could not read: kept raw, so none is lost, until a release
//! that reads them replays them (`market events replay`) through the same path as webhooks.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::Result;

/// A stored event waiting for a replay.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Unreadable {
    pub stripe_event_id: String,
    pub r#type: Option<String>,
    pub payload: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub deliveries: i32,
}

/// Keeps a verified event that could not be read; a second delivery of it is counted.
pub async fn record(
    db: &PgPool,
    event_id: &str,
    event_type: Option<&str>,
    payload: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "insert into stripe_event_unreadable (stripe_event_id, type, payload, reason)
         values ($1, $2, $3, $4)
         on conflict (stripe_event_id) do update
         set deliveries = stripe_event_unreadable.deliveries + 1, reason = excluded.reason",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

/// Events waiting for a replay, oldest first.
pub async fn waiting(db: &PgPool) -> Result<Vec<Unreadable>> {
    Ok(sqlx::query_as::<_, Unreadable>(
        "select stripe_event_id, type, payload, reason, received_at, deliveries
         from stripe_event_unreadable where replayed_at is null
         order by received_at, stripe_event_id",
    )
    .fetch_all(db)
    .await?)
}

/// Records that a replay applied the event (its outcome), or that it is still unreadable (the
/// new reason).
pub async fn replayed(db: &PgPool, event_id: &str, outcome: Result<&str, &str>) -> Result<()> {
    match outcome {
        Ok(outcome) => {
            sqlx::query(
                "update stripe_event_unreadable set replayed_at = now(), replay_outcome = $2
                 where stripe_event_id = $1",
            )
            .bind(event_id)
            .bind(outcome)
            .execute(db)
            .await?;
        }
        Err(reason) => {
            sqlx::query(
                "update stripe_event_unreadable set reason = $2 where stripe_event_id = $1",
            )
            .bind(event_id)
            .bind(reason)
            .execute(db)
            .await?;
        }
    }
    Ok(())
}
