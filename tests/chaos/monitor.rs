//! Watches the job table while the nemesis runs: a job that any instance could claim (queued and
//! due, or running with its lease run out, as when its worker was killed or paused) must be
//! claimed again in bounded time while Xano accepts the service's credential (when it refuses it,
//! claiming stops on purpose and only the credential probe runs).
//!
//! The bound is a lease and a sweep, plus one Xano client timeout: what a due job may wait when
//! every worker is held by a Xano call that runs into it.
//!
//! A seller's job (`job.seller_id`, never the house's) waits on purpose while another job of the
//! same seller runs with a live lease: an instance runs at most half its workers on one seller's
//! jobs, so a seller whose Xano is slow waits behind its own work, not everyone else's. Such a job
//! is not counted as stuck; the seller's running job is the progress.
//!
//! A database that stalls for everyone stalls claiming too: CI saw every statement of every
//! instance take ~10 s at once (a checkpoint's or the shared disk's fsync stall on this VM), and the
//! monitor's own two queries with them. The time its own sampling takes beyond its normal second is
//! not counted against the jobs waiting through it: no instance could have claimed them then.
//!
//! A stall may hold back writes alone: a commit waits for the WAL's fsync, a read does not. So each
//! sample also commits one row of its own (`chaos_probe`, a table no instance touches). A sample
//! that took over a second is recorded in the history as a window in which the database stalled
//! ([`History::database_stalled`]); the request checker reads it: a request that waited out the
//! pool's acquire timeout through it answered 503 `unavailable`, which is the stall speaking.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::history::History;

#[derive(sqlx::FromRow)]
struct DueJob {
    job_id: i64,
    kind: String,
    subject: String,
    state: String,
    attempt: i32,
}

pub struct JobMonitor {
    pool: PgPool,
    history: Arc<History>,
    /// How long a claimable job may wait while the credential is healthy.
    pub limit: Duration,
    pub samples: AtomicU64,
    /// The longest any job stayed claimable and unclaimed, in milliseconds.
    pub longest_wait_ms: AtomicU64,
    pub stuck: Mutex<Vec<String>>,
    /// How long the database stalled for everyone, as the monitor's own queries saw it.
    pub stalls_ms: AtomicU64,
}

impl JobMonitor {
    pub fn new(pool: PgPool, history: Arc<History>, limit: Duration) -> Self {
        Self {
            pool,
            history,
            limit,
            samples: AtomicU64::new(0),
            longest_wait_ms: AtomicU64::new(0),
            stuck: Mutex::new(Vec::new()),
            stalls_ms: AtomicU64::new(0),
        }
    }

    /// Samples every 500 ms until `stop` is set.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        // Job id → since when it has been claimable (with the credential healthy throughout).
        let mut waiting: HashMap<i64, Instant> = HashMap::new();
        let mut reported = std::collections::HashSet::new();
        sqlx::query("create table if not exists chaos_probe (id int primary key, at timestamptz)")
            .execute(&self.pool)
            .await
            .expect("create the monitor's probe table");
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (sampling, sampled_from_ms) = (Instant::now(), self.history.now_ms());
            let healthy: Option<bool> = sqlx::query_scalar(
                // The fleet's credential: the first recorded (see `settle`).
                "select state = 'healthy' from xano_credential order by created_at limit 1",
            )
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
            let due: Vec<DueJob> = match sqlx::query_as(
                "select job_id, kind, subject, state::text as state, attempt from job j
                 where state in ('queued', 'running') and due_at <= now()
                   and (seller_id is null
                        or not exists (select 1 from job r
                                       where r.seller_id = j.seller_id and r.state = 'running'
                                         and r.due_at > now()))",
            )
            .fetch_all(&self.pool)
            .await
            {
                Ok(due) => due,
                Err(_) => continue,
            };
            let _ = sqlx::query(
                "insert into chaos_probe values (1, now())
                 on conflict (id) do update set at = excluded.at",
            )
            .execute(&self.pool)
            .await;
            self.samples.fetch_add(1, Ordering::Relaxed);
            // The database stalled for everyone while we asked: excuse the jobs that waited
            // through it (see the module doc).
            let stalled = sampling.elapsed().saturating_sub(Duration::from_secs(1));
            if !stalled.is_zero() {
                self.history
                    .database_stalled(sampled_from_ms, self.history.now_ms());
                self.stalls_ms.fetch_add(
                    u64::try_from(stalled.as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                for since in waiting.values_mut() {
                    *since += stalled;
                }
            }
            if healthy != Some(true) {
                waiting.clear();
                continue;
            }
            let now = Instant::now();
            waiting.retain(|id, _| due.iter().any(|j| j.job_id == *id));
            for job in &due {
                let since = *waiting.entry(job.job_id).or_insert(now);
                let waited = now - since;
                self.longest_wait_ms.fetch_max(
                    u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                if waited > self.limit && reported.insert(job.job_id) {
                    self.stuck.lock().unwrap().push(format!(
                        "job {} {} {} stayed {} and claimable for {waited:?} with the credential healthy (attempt {})",
                        job.job_id, job.kind, job.subject, job.state, job.attempt
                    ));
                }
            }
        }
    }
}
