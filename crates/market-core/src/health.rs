//! The health of our Xano credential, shared by all instances through one row.
//!
//! Xano access tokens expire (7 days by default) and can lose their rights. When Xano answers 401 or
//! 403, jobs park instead of failing or retrying in a hot loop, and workers stop claiming new ones.
//! A probe (`GET /auth/me`) runs every `probe_interval` while the credential is refused; its first
//! success, or any successful job call, marks the credential healthy and puts parked jobs back in the
//! queue. Operators see the state in `/readyz` and the admin API.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::queue;
use crate::{Market, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Health {
    /// `healthy`, `unauthorized` (401: unknown or expired token) or `forbidden` (403: no rights).
    pub state: String,
    pub since: DateTime<Utc>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.state == "healthy"
    }
}

pub async fn get(pool: &PgPool) -> Result<Health> {
    Ok(sqlx::query_as::<_, Health>(
        "select state, since, last_checked_at, last_error from xano_health",
    )
    .fetch_one(pool)
    .await?)
}

/// Records that Xano refused the credential.
pub async fn record_refusal(pool: &PgPool, error: &master_api::Error) -> Result<()> {
    let state = match error {
        master_api::Error::Forbidden => "forbidden",
        _ => "unauthorized",
    };
    sqlx::query(
        "update xano_health
         set since = case when state = $1 then since else now() end,
             state = $1, last_checked_at = now(), last_error = $2",
    )
    .bind(state)
    .bind(error.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that a Xano call succeeded; when the credential had been refused, marks it healthy and
/// resumes the parked jobs. Costs one cheap update when nothing changes.
pub async fn record_success(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    let healed = sqlx::query(
        "update xano_health set state = 'healthy', since = now(), last_checked_at = now(), last_error = null
         where state <> 'healthy'",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if healed {
        let resumed = queue::unpark_all(&mut tx).await?;
        tracing::info!(
            resumed,
            "Xano accepts our credential again; parked jobs resumed"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// Tries the credential when it is refused and was last tried more than `probe_interval` ago.
/// Several instances may probe at about the same time; that costs a few `GET /auth/me`, nothing more.
pub async fn probe_if_due(market: &Market) -> Result<()> {
    let due = sqlx::query_scalar::<_, bool>(
        "select state <> 'healthy'
                and coalesce(last_checked_at < now() - make_interval(secs => $1), true)
         from xano_health",
    )
    .bind(market.jobs.probe_interval.as_secs_f64())
    .fetch_one(&market.db)
    .await?;
    if !due {
        return Ok(());
    }
    match market.xano.me().await {
        Ok(_) => record_success(&market.db).await,
        Err(e @ (master_api::Error::Unauthorized | master_api::Error::Forbidden)) => {
            record_refusal(&market.db, &e).await
        }
        Err(e) => {
            // Xano is down or slow: says nothing about the credential. Try again next interval.
            sqlx::query("update xano_health set last_checked_at = now()")
                .execute(&market.db)
                .await?;
            tracing::debug!(error = %e, "credential probe inconclusive");
            Ok(())
        }
    }
}
