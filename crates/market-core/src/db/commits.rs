//! The commits of pooled connections behind a pooler in transaction mode, as this process knows
//! them: begun, landed, failed.
//!
//! There, every use of a pooled connection is one server transaction, and sqlx commits it when the
//! connection goes back to the pool, in a task of its own, after the code has its answer
//! (`pooler`). So two things wait on this ledger: the next use of a connection, for the commits
//! begun before it (what a task wrote is visible to what it runs next), and an HTTP answer, for
//! the commits begun before it is sent (nothing is acknowledged before it is written; a commit
//! that failed meanwhile turns the answer into a 503).
//!
//! One ledger per database (host, port and name): the pools of one process to the same database
//! share it, and a database that another part of the process uses (a test's neighbour, dropped
//! with its connections terminated) does not fail this one's answers. Directly to PostgreSQL no
//! ledger exists, and every wait returns at once.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::Notify;

/// The ledgers of the databases this process reaches through a pooler in transaction mode.
static LEDGERS: LazyLock<Mutex<HashMap<String, Arc<Commits>>>> = LazyLock::new(Mutex::default);

fn database(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// The ledger of the database `options` lead to, made on first use.
pub(super) fn ledger_for(options: &PgConnectOptions) -> Arc<Commits> {
    let mut all = LEDGERS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(all.entry(database(options)).or_default())
}

/// The ledger of the database `options` lead to, if a pool reaches it through a pooler. (Asked on
/// every request: with no pooler at all it returns before naming the database.)
pub(super) fn ledger_of(options: &PgConnectOptions) -> Option<Arc<Commits>> {
    let all = LEDGERS.lock().unwrap_or_else(PoisonError::into_inner);
    if all.is_empty() {
        return None;
    }
    all.get(&database(options)).map(Arc::clone)
}

/// How many failed commits are remembered: an answer asks about those begun while its request
/// ran, which are the last few.
const FAILURES_KEPT: usize = 1024;

/// One use's commit in the ledger: begun when made, landed by [`Landing::land`], or as failed when
/// dropped before (its task cancelled), so that no wait hangs on a ticket nobody will land.
pub(super) struct Landing {
    ledger: Arc<Commits>,
    ticket: u64,
    landed: bool,
}

impl Landing {
    pub(super) fn start(ledger: &Arc<Commits>) -> Self {
        Self {
            ledger: Arc::clone(ledger),
            ticket: ledger.start(),
            landed: false,
        }
    }

    pub(super) fn land(mut self, ok: bool) {
        self.landed = true;
        self.ledger.land(self.ticket, ok);
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed {
            self.ledger.land(self.ticket, false);
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Commits {
    state: Mutex<Tickets>,
    landed: Notify,
    /// The longest any wait lasts, in milliseconds (`statement_timeout`, set by the pool that made
    /// the ledger).
    limit_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct Tickets {
    next: u64,
    pending: BTreeSet<u64>,
    failed: VecDeque<u64>,
}

impl Commits {
    /// Sets the longest any wait lasts.
    pub(super) fn wait_at_most(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.limit_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A use has ended: its commit begins. Returns its ticket.
    fn start(&self) -> u64 {
        let mut tickets = self.tickets();
        let ticket = tickets.next;
        tickets.next += 1;
        tickets.pending.insert(ticket);
        ticket
    }

    /// The commit of `ticket` has landed, or failed (`ok` false).
    fn land(&self, ticket: u64, ok: bool) {
        {
            let mut tickets = self.tickets();
            tickets.pending.remove(&ticket);
            if !ok {
                if tickets.failed.len() == FAILURES_KEPT {
                    tickets.failed.pop_front();
                }
                tickets.failed.push_back(ticket);
            }
        }
        self.landed.notify_waiters();
    }

    /// The next ticket: commits begun from now on have this one or a later one.
    pub(super) fn mark(&self) -> u64 {
        self.tickets().next
    }

    /// Waits for the commits begun so far to land, at most the limit. Returns whether they all
    /// landed, and the first ticket after them.
    pub(super) async fn wait_for_earlier(&self) -> (bool, u64) {
        // The connection this task just dropped is handed back by a task spawned then: let it
        // start (and take its ticket) first.
        tokio::task::yield_now().await;
        let upto = self.mark();
        let limit = Duration::from_millis(self.limit_ms.load(Ordering::Relaxed));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let landed = self.landed.notified();
            tokio::pin!(landed);
            landed.as_mut().enable();
            let waiting = self
                .tickets()
                .pending
                .first()
                .is_some_and(|&first| first < upto);
            if !waiting {
                return (true, upto);
            }
            if tokio::time::timeout_at(deadline, landed).await.is_err() {
                return (false, upto);
            }
        }
    }

    /// Whether a commit with a ticket in `from..upto` failed.
    pub(super) fn failed_between(&self, from: u64, upto: u64) -> bool {
        self.tickets()
            .failed
            .iter()
            .any(|ticket| (from..upto).contains(ticket))
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, Tickets> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_returns_once_every_earlier_commit_landed_and_reports_a_failure_in_its_window() {
        let ledger = Commits::default();
        ledger.wait_at_most(Duration::from_secs(5));
        let before = ledger.start();
        let mark = ledger.mark();
        let ours = ledger.start();
        let landing = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ledger.land(before, false);
            ledger.land(ours, true);
        };
        let ((landed, upto), ()) = tokio::join!(ledger.wait_for_earlier(), landing);
        assert!(landed, "both commits landed");
        assert!(ledger.tickets().pending.is_empty());
        assert!(
            !ledger.failed_between(mark, upto),
            "the failed commit began before the mark"
        );
        let late = ledger.start();
        ledger.land(late, false);
        assert!(ledger.failed_between(mark, ledger.mark()));
    }

    #[tokio::test]
    async fn a_landing_dropped_before_it_landed_counts_as_failed_and_ends_the_wait() {
        let ledger = Arc::new(Commits::default());
        ledger.wait_at_most(Duration::from_secs(5));
        let mark = ledger.mark();
        drop(Landing::start(&ledger));
        let (landed, upto) = ledger.wait_for_earlier().await;
        assert!(landed, "nothing is left pending");
        assert!(ledger.failed_between(mark, upto));
    }

    #[tokio::test]
    async fn a_commit_that_never_lands_ends_the_wait_at_the_limit_as_not_landed() {
        let ledger = Commits::default();
        ledger.wait_at_most(Duration::from_millis(30));
        let _stuck = ledger.start();
        assert!(!ledger.wait_for_earlier().await.0);
    }

    #[tokio::test]
    async fn a_ledger_is_one_databases_and_none_exists_for_a_database_reached_directly() {
        let options = |name: &str| {
            PgConnectOptions::new()
                .host("127.0.0.1")
                .port(6432)
                .database(name)
        };
        assert!(ledger_of(&options("direct_only")).is_none());
        let one = ledger_for(&options("one"));
        assert!(Arc::ptr_eq(&one, &ledger_for(&options("one"))));
        assert!(!Arc::ptr_eq(&one, &ledger_for(&options("other"))));
        let unused = Commits::default();
        assert_eq!(unused.wait_for_earlier().await, (true, 0));
    }
}
