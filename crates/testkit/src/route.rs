//! How the application under test reaches its database: directly (the default), through a pooler
//! in transaction mode, or with its lag-tolerant reads on a streaming replica. The environment
//! decides, so the same API suite runs against each topology (`scripts/ensure-test-topology` makes
//! them; `scripts/test` runs the suite through each):
//!
//! - `MARKET_TEST_POOLER_URL`: a PgBouncer in transaction mode in front of `DATABASE_URL`'s server
//!   (its wildcard entry reaches every database). The app connects through it; the test's
//!   database is still created, migrated and dropped on the server directly.
//! - `MARKET_TEST_READ_REPLICA`: a streaming replica of `DATABASE_URL`'s server (which must then be
//!   its primary). The app reads there what tolerates lag; the database appears on it by
//!   replication.

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Where the application under test connects (`TestDb::app_route`).
#[derive(Clone, Debug)]
pub struct AppRoute {
    /// The primary, or the pooler in front of it.
    pub options: PgConnectOptions,
    /// Whether `options` (and `read_options`) lead to a pooler in transaction mode.
    pub transaction_pooler: bool,
    /// The test's database on the read replica, when the tests run with one.
    pub read_options: Option<PgConnectOptions>,
}

impl AppRoute {
    /// The route for `database` on `direct` (the server the test database was created on).
    pub(crate) fn for_database(direct: PgConnectOptions, database: &str) -> Self {
        let pooler = server_from_env("MARKET_TEST_POOLER_URL");
        Self {
            transaction_pooler: pooler.is_some(),
            options: pooler.map_or(direct, |server| server.database(database)),
            read_options: read_replica().map(|server| server.database(database)),
        }
    }
}

/// The read replica's server (its `postgres` database), when the tests run with one: for a test
/// that pauses its replay.
pub fn read_replica() -> Option<PgConnectOptions> {
    server_from_env("MARKET_TEST_READ_REPLICA")
}

fn server_from_env(name: &str) -> Option<PgConnectOptions> {
    let url = std::env::var(name).ok().filter(|u| !u.trim().is_empty())?;
    let options = url
        .parse::<PgConnectOptions>()
        .unwrap_or_else(|e| panic!("{name} is not a valid PostgreSQL URL: {e}"));
    // Per-test chatter is noise in test logs (as on the direct server).
    Some(options.log_statements(tracing::log::LevelFilter::Trace))
}
