//! Connecting to PostgreSQL, the migrations, and running a transaction again when PostgreSQL asks
//! for it.
//!
//! An instance reaches PostgreSQL directly or through a pooler in transaction mode ([`Pooler`],
//! `MARKET_DB_POOLER`; the reasons are in `pooler`), on one pool or on two (a read replica for the
//! reads that tolerate lag, `Market::read_db`). Either way every server connection must carry the
//! session settings of [`DbConfig`]: [`connect`] checks that once, and refuses a pool without them.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Error, Result};

mod commits;
mod pooler;

pub use pooler::Pooler;

/// Where the commits of a database stand: taken when a request starts (see
/// [`commits_landed_since`]).
#[derive(Clone, Debug)]
pub struct CommitMark {
    /// `None`: the pool reaches PostgreSQL directly, nothing commits late.
    ledger: Option<std::sync::Arc<commits::Commits>>,
    from: u64,
}

/// The mark of now for the database `pool` leads to.
pub fn commit_mark(pool: &PgPool) -> CommitMark {
    let ledger = commits::ledger_of(&pool.connect_options());
    let from = ledger.as_ref().map_or(0, |l| l.mark());
    CommitMark { ledger, from }
}

/// Behind a pooler in transaction mode a write made at pool level commits after its answer
/// (`pooler`): waits until every commit begun so far has landed (at most `statement_timeout`), and
/// says whether they did and none begun since `mark` failed. An answer is sent only then (the HTTP
/// layer). Directly to PostgreSQL there is nothing to wait for: `true` at once.
pub async fn commits_landed_since(mark: &CommitMark) -> bool {
    let Some(ledger) = &mark.ledger else {
        return true;
    };
    let (landed, upto) = ledger.wait_for_earlier().await;
    landed && !ledger.failed_between(mark.from, upto)
}

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
    /// Directly to PostgreSQL, or through a pooler in transaction mode.
    pub pooler: Pooler,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            max_connections: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(2),
            pooler: Pooler::None,
        }
    }
}

/// Opens a pool whose connections carry the session settings of [`DbConfig`], and checks once that
/// a server connection really has them. Directly, they are start-up parameters (no extra round
/// trip); through a pooler in transaction mode, each use of a connection sets them itself
/// (`pooler`), since a server connection there is anyone's.
pub async fn connect(options: PgConnectOptions, config: &DbConfig) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        // No ping before handing out a pooled connection: it was a round trip on every acquire
        // (one of ten per fulfilment, issue 17). A connection PostgreSQL closed meanwhile fails its
        // first statement instead; that request answers 503 (`connection_lost`), a job retries, and
        // sqlx drops the connection. Idle connections are closed after `idle_timeout` (10 min).
        .test_before_acquire(false);
    let pool = match config.pooler {
        Pooler::None => {
            pool.connect_with(options.options(session_settings(config)))
                .await?
        }
        Pooler::Transaction => {
            let settings = session_settings(config);
            pooler::connect(pool, options, &settings, config.statement_timeout).await?
        }
    };
    check_session(&pool, config).await?;
    Ok(pool)
}

/// The settings every session of this service runs with, as PostgreSQL spells them.
fn session_settings(config: &DbConfig) -> [(&'static str, String); 4] {
    let millis = |d: Duration| format!("{}ms", d.as_millis());
    [
        ("statement_timeout", millis(config.statement_timeout)),
        ("lock_timeout", millis(config.lock_timeout)),
        (
            "idle_in_transaction_session_timeout",
            millis(config.idle_in_transaction_timeout),
        ),
        ("timezone", "UTC".to_owned()),
    ]
}

/// Reads the session settings back from a server connection of `pool` (one query, at start-up)
/// and refuses a pool that lacks one. The guarantee that matters most is
/// `idle_in_transaction_session_timeout`: without it a stalled instance holds its row locks until
/// someone kills it, and every other instance's requests for those rows fail ([`DbConfig`]). A
/// pooler that drops the start-up parameters (PgBouncer's `ignore_startup_parameters = options`)
/// without the settings on the role or database shows here, not in production's first stall.
pub async fn check_session(pool: &PgPool, config: &DbConfig) -> Result<()> {
    let (statement, lock, idle, zone) = sqlx::query_as::<_, (String, String, String, String)>(
        "select (select setting from pg_settings where name = 'statement_timeout'),
                (select setting from pg_settings where name = 'lock_timeout'),
                (select setting from pg_settings where name = 'idle_in_transaction_session_timeout'),
                current_setting('TimeZone')",
    )
    .fetch_one(pool)
    .await?;
    let wanted = |d: Duration| d.as_millis().to_string();
    let mut wrong = Vec::new();
    for (name, found, want) in [
        (
            "statement_timeout",
            statement,
            wanted(config.statement_timeout),
        ),
        ("lock_timeout", lock, wanted(config.lock_timeout)),
        (
            "idle_in_transaction_session_timeout",
            idle,
            wanted(config.idle_in_transaction_timeout),
        ),
    ] {
        if found != want {
            wrong.push(format!("{name} is {found} ms, not {want} ms"));
        }
    }
    if !matches!(zone.as_str(), "UTC" | "Etc/UTC") {
        wrong.push(format!("TimeZone is {zone}, not UTC"));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        "database session",
        format!(
            "{}. This instance will not serve without them (a stalled instance would hold its row \
             locks for good). Behind PgBouncer in transaction mode set MARKET_DB_POOLER=transaction; \
             a pooler that drops start-up parameters needs them on the role or database \
             (docs/OPERATIONS.md, \"Behind PgBouncer\")",
            wrong.join("; ")
        ),
    ))
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
