//! Running behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`), where a
//! client's server connection is its own only until the end of a transaction.
//!
//! **What breaks, and why a switch is not enough.** sqlx 0.8.6 runs every statement in two
//! exchanges: Parse (and Describe) then Sync; Bind and Execute then Sync. Outside a transaction a
//! pooler in transaction mode may hand each exchange to a different server connection. And
//! `statement_cache_capacity(0)` does not stop named statements: it only stops reusing them, each
//! statement is still parsed as `sqlx_s_<n>`, numbered per client connection, and never closed.
//! PgBouncer 1.18 (Debian 12) does not track prepared statements (1.21's
//! `max_prepared_statements` does), so another client's `sqlx_s_1` is already on the server
//! (`prepared statement "sqlx_s_1" already exists`), or a Bind lands on a server where that name,
//! or the unnamed statement, is someone else's statement, which then runs with our parameters.
//! Unnamed statements (`persistent(false)`) alone fix the first and not the second: measured
//! through PgBouncer 1.18 with 16 clients on 2 server connections, they answered hundreds of
//! queries with another query's result and no error (`tests/api/pooler.rs` keeps the failure
//! with named statements).
//!
//! **What this does.** Every use of a pooled connection is one server transaction: the pool's
//! hooks open it when a connection is handed out (`after_connect`, `before_acquire`) and commit it
//! when it comes back (`after_release`). A server connection is then the client's from Parse to
//! the last Sync, whatever the code runs on the connection. The opening statement also drops the
//! named statements other clients left on that server (`deallocate all`), so the names the client
//! counts from 1 never collide, and sets the session settings with `set local` (a session `set`
//! would stay on the server for its next client). It is one round trip per use, all in one simple
//! query; the statement cache is off (a cached name is gone on the next server connection), so
//! each statement costs a second round trip (docs/OPERATIONS.md has the figures). sqlx commits a
//! use after handing the answer back (the connection returns in a task of its own), so a use
//! waits for the commits begun before it (`commits`): a write at pool level is visible to the
//! statement that follows it, as it is without a pooler. (Found by the API suite through
//! PgBouncer: `keys::open` inserts, then reads on another connection, and found nothing.)
//!
//! **A write at pool level commits after its answer; a request's answer waits for it.** sqlx gives
//! a statement run on the pool (`execute(&pool)`, or a function that writes, called with
//! `select`) its answer before the connection goes back, and the commit goes with the connection.
//! Another process (another instance, the buyer's next request served elsewhere) could read before
//! it lands, and a crash in between would lose a write already acknowledged: the API suite through
//! PgBouncer showed it (`intake`: the webhook's answer said `fulfilled`, the database still
//! `pending`). So the HTTP layer sends no answer before every commit begun by then has landed,
//! and answers 503 `unavailable` instead when one begun during the request failed (a deferred
//! constraint, a lost server connection): [`super::commits_landed_since`]. A job's writes need no
//! such wait: a job is at least once, and its claim and its fenced finish hold their rows.
//!
//! **What changes for the code.** Statements on one pool connection behave as one transaction:
//! after a failed statement, the next on the same connection fails too (each pool-level query
//! takes its own connection, and every multi-statement use is already a transaction). The code's
//! own `begin()` runs inside the opened transaction (PostgreSQL's "already a transaction in
//! progress" warning is silenced by `client_min_messages`) and its commit ends it, so nothing may
//! run on that connection after its commit and before it goes back to the pool. A connection held
//! without a statement for `idle_in_transaction_timeout` is ended by PostgreSQL: no code holds
//! one across a call to Xano or Stripe.
//!
//! **Session state does not exist.** No `listen`, session `set`, temporary table, cursor across
//! transactions or session advisory lock (advisory locks here are `pg_advisory_xact_lock`).
//! sqlx's migrator takes a session advisory lock: `market migrate` goes to PostgreSQL directly.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

use super::commits;

/// How this instance reaches PostgreSQL (`MARKET_DB_POOLER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Directly, or through a pooler in session mode: sessions are this instance's.
    #[default]
    None,
    /// Through a pooler in transaction mode (PgBouncer's `pool_mode = transaction`).
    Transaction,
}

impl Pooler {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Transaction => "transaction",
        }
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pooler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "session" => Ok(Self::None),
            "transaction" => Ok(Self::Transaction),
            other => Err(format!(
                "{other:?}: expected `none` (PostgreSQL directly, or a pooler in session mode) or \
                 `transaction` (a pooler in transaction mode)"
            )),
        }
    }
}

/// Ends the transaction a use of the connection ran in, whether or not the code's own commit
/// already did (PostgreSQL's "no transaction in progress" warning silenced: the session `set` is
/// undone in the same simple query, so it never stays on the server).
const CLOSE: &str = "set client_min_messages = error; commit; reset client_min_messages";

/// Opens `pool` on `options` with each use of a connection pinned to one server transaction that
/// sets `settings` (the session settings, as PostgreSQL spells them); a use waits at most `wait`
/// for the commits begun before it.
pub(super) async fn connect(
    pool: PgPoolOptions,
    options: PgConnectOptions,
    settings: &[(&'static str, String)],
    wait: Duration,
) -> sqlx::Result<PgPool> {
    let open: Arc<str> = open_sql(settings).into();
    let open_fresh = Arc::clone(&open);
    let ledger = commits::ledger_for(&options);
    ledger.wait_at_most(wait);
    let (ledger_fresh, ledger_idle) = (Arc::clone(&ledger), Arc::clone(&ledger));
    // sqlx closes a connection past its lifetime when it comes back, without `after_release`:
    // its use's transaction, and any write at pool level in it, would be rolled back unreported.
    // So connections here live until they fail or idle out.
    let pool = pool.max_lifetime(None);
    let options = options
        // A cached statement's name would be gone on the next server connection.
        .statement_cache_capacity(0)
        // PgBouncer 1.18 refuses start-up parameters it does not know (and keeps none of
        // `options` on the server connection): the settings come with each use instead.
        .extra_float_digits(None);
    pool.after_connect(move |conn, _| {
        let (open, ledger) = (Arc::clone(&open_fresh), Arc::clone(&ledger_fresh));
        Box::pin(async move {
            ledger.wait_for_earlier().await;
            conn.execute(&*open).await.map(drop)
        })
    })
    .before_acquire(move |conn, _| {
        let (open, ledger) = (Arc::clone(&open), Arc::clone(&ledger_idle));
        Box::pin(async move {
            ledger.wait_for_earlier().await;
            conn.execute(&*open).await.map(|_| true)
        })
    })
    .after_release(move |conn, _| {
        // Taken as sqlx hands the connection back, before anything is awaited. Dropped unlanded
        // (the task cancelled), it lands as failed: no wait hangs on it.
        let landing = commits::Landing::start(&ledger);
        Box::pin(async move {
            let Ok(closed) = tokio::time::timeout(wait, conn.execute(CLOSE)).await else {
                tracing::warn!("a pooled connection's use did not commit in time");
                landing.land(false);
                return Ok(false);
            };
            let lost = match &closed {
                Ok(_) => false,
                // A statement of this use failed, and told its caller: the use is one statement
                // (or the code's own transaction, rolled back), so nothing else was waiting to
                // commit. The connection is closed all the same.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("25P02") => false,
                Err(e) => {
                    tracing::warn!(error = %e, "a pooled connection's use did not commit");
                    true
                }
            };
            landing.land(!lost);
            closed.map(|_| true)
        })
    })
    .connect_with(options)
    .await
}

/// What opens a use of a connection, in one simple query (one round trip).
fn open_sql(settings: &[(&'static str, String)]) -> String {
    let settings: Vec<String> = settings
        .iter()
        .map(|(name, value)| format!("set local {name} = '{value}'"))
        .collect();
    let mut sql = format!("deallocate all; begin; {}", settings.join("; "));
    // The code's own `begin` inside this transaction would warn on every transaction.
    sql.push_str("; set local client_min_messages = error");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_statement_sets_every_session_setting_locally_in_one_query() {
        let sql = open_sql(&[
            ("statement_timeout", "10000ms".to_owned()),
            ("lock_timeout", "5000ms".to_owned()),
            ("idle_in_transaction_session_timeout", "2000ms".to_owned()),
            ("timezone", "UTC".to_owned()),
        ]);
        assert!(sql.starts_with("deallocate all; begin; "));
        for setting in [
            "set local statement_timeout = '10000ms'",
            "set local lock_timeout = '5000ms'",
            "set local idle_in_transaction_session_timeout = '2000ms'",
            "set local timezone = 'UTC'",
        ] {
            assert!(sql.contains(setting), "{setting} missing from {sql}");
        }
    }

    #[test]
    fn the_mode_is_read_from_its_setting_and_a_typo_is_refused() {
        assert_eq!("transaction".parse::<Pooler>(), Ok(Pooler::Transaction));
        assert_eq!("none".parse::<Pooler>(), Ok(Pooler::None));
        assert!("transactions".parse::<Pooler>().is_err());
    }
}
