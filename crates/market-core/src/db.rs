//! Connecting to PostgreSQL, the migrations, and running a transaction again when PostgreSQL asks
//! for it.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Error, Result};

/// The schema, from the top-level `migrations/` directory (embedded at compile time).
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Pool settings. Timeouts bound the damage of a stuck query or a forgotten transaction: no
/// statement holds a pooled connection for long, and nothing waits forever on a lock.
///
/// `idle_in_transaction_timeout` is well below `lock_timeout`: when an instance stalls in the
/// middle of a transaction (a VM pause, `SIGSTOP`, a starved runtime) its row locks stay held
/// until PostgreSQL ends that transaction, and the other instances' requests for the same
/// purchase wait on them. PostgreSQL must end the stalled transaction before those waits give
/// up, or one frozen instance makes every other one answer 500. No code path awaits anything but
/// PostgreSQL inside a transaction (Xano is never called with one open), so a transaction idle
/// for two seconds is a stalled one. (`tests/core/stalled_instance.rs`; found by the chaos suite.)
#[derive(Clone, Debug)]
pub struct DbConfig {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            max_connections: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(2),
        }
    }
}

/// Opens a pool whose connections carry the session settings of [`DbConfig`] (sent as start-up
/// parameters, so they cost no extra round trip).
pub async fn connect(options: PgConnectOptions, config: &DbConfig) -> Result<PgPool> {
    let millis = |d: Duration| format!("{}ms", d.as_millis());
    let options = options.options([
        ("statement_timeout", millis(config.statement_timeout)),
        ("lock_timeout", millis(config.lock_timeout)),
        (
            "idle_in_transaction_session_timeout",
            millis(config.idle_in_transaction_timeout),
        ),
        ("timezone", "UTC".to_owned()),
    ]);
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        // No ping before handing out a pooled connection: it was a round trip on every acquire
        // (one of ten per fulfilment, issue 17). A connection PostgreSQL closed meanwhile fails its
        // first statement instead; that request answers 503 (`connection_lost`), a job retries, and
        // sqlx drops the connection. Idle connections are closed after `idle_timeout` (10 min).
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Runs `attempt` (one whole transaction) again when PostgreSQL aborted it as a deadlock victim or
/// for a serialization failure, a bounded number of times. Anything else is returned at once.
pub async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 5;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if e.is_transient() && tries < ATTEMPTS => {
                tracing::debug!(tries, "transaction aborted by PostgreSQL; running it again");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

/// Whether the error is PostgreSQL's unique violation on the named constraint or index.
pub fn is_unique_violation(error: &Error, constraint: &str) -> bool {
    match error {
        Error::Database(sqlx::Error::Database(e)) => {
            e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// Whether the database lacks a migration this build knows (an instance of a newer build started
/// before `market migrate` ran): such an instance is not ready to serve.
pub async fn migrations_pending(pool: &PgPool) -> Result<bool> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default();
    let applied = sqlx::query_scalar::<_, Option<i64>>(
        "select max(version) from _sqlx_migrations where success",
    )
    .fetch_one(pool)
    .await?;
    Ok(applied.is_none_or(|version| version < latest))
}
