//! Watches the job table while the nemesis runs: a job that any instance could claim (queued and
//! due, or running with its lease run out, as when its worker was killed or paused) must be
//! claimed again in bounded time while Xano accepts the service's credential (when it refuses it,
//! claiming stops on purpose and only the credential probe runs).
//!
//! The bound is a lease and a sweep, plus one Xano client timeout: what a due job may wait when
//! every worker is held by a Xano call that runs into it.
//!
//! **A queue is not a stuck job.** Claims take due jobs in order (`queue::claim_in`: mail first, then
//! Xano work, each lane oldest first). After the credential was refused for a while, or while
//! instances crash-loop and pause, hundreds of jobs fall due at once, and the last of them waits for
//! the fleet to work through the ones before it: that wait is the backlog's size over the fleet's
//! throughput, not a claim that failed. So a job's clock starts once it is within one instance's
//! round of workers ([`FRONT`]) of the head of its lane. A claim that stops, or a job that every
//! claim passes over, still reaches the front and is counted there.
//!
//! **Nor is a fleet whose every worker is busy.** A job may hold its worker for longer than one Xano
//! timeout: under a storm of 5xx its calls retry (the client's budget is a minute), and a mint
//! reconciles its listing first. With two instances paused and the third's four workers each
//! retrying, the job at the head of the queue waited 19 s (seed 1792034188581015852), and nothing
//! was wrong: every live worker was working. So the clock of a waiting job stands still while the
//! jobs running under a live lease fill the workers of the instances that are up (the nemesis's
//! open pauses, kills and crashes are the ones down), or, for mail, mail's share of them. A fleet
//! with a free worker and a job at the head still counts every second. (The leases of an instance
//! just paused or killed count among the running until they run out, at most one lease: the
//! monitor cannot tell whose a lease is.)
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

/// How near the head of its lane a claimable job is when its clock starts: one instance's workers
/// (the default four, which the chaos cluster runs).
const FRONT: i64 = 4;

/// One instance's workers (the default), and how many of them mail may hold (`Runner::share`).
const WORKERS: i64 = 4;
const MAIL_SHARE: i64 = 2;

/// The jobs running under a live lease, all and mail.
#[derive(sqlx::FromRow)]
struct Busy {
    running: i64,
    mail: i64,
}

#[derive(sqlx::FromRow)]
struct DueJob {
    job_id: i64,
    kind: String,
    subject: String,
    state: String,
    attempt: i32,
    /// Its place in its lane's claim order, from 1.
    place: i64,
}

pub struct JobMonitor {
    pool: PgPool,
    history: Arc<History>,
    /// The instances of the cluster.
    instances: usize,
    /// How long a claimable job may wait while the credential is healthy.
    pub limit: Duration,
    pub samples: AtomicU64,
    /// The longest any job stayed claimable and unclaimed, in milliseconds.
    pub longest_wait_ms: AtomicU64,
    /// Which job that was, and from when (ms from the start of the run).
    pub longest: Mutex<String>,
    pub stuck: Mutex<Vec<String>>,
    /// How long the database stalled for everyone, as the monitor's own queries saw it.
    pub stalls_ms: AtomicU64,
    /// How long every worker of the instances up was busy (the Xano lane's clock stood still).
    pub saturated_ms: AtomicU64,
}

impl JobMonitor {
    pub fn new(pool: PgPool, history: Arc<History>, instances: usize, limit: Duration) -> Self {
        Self {
            pool,
            history,
            instances,
            limit,
            samples: AtomicU64::new(0),
            longest_wait_ms: AtomicU64::new(0),
            longest: Mutex::new(String::new()),
            stuck: Mutex::new(Vec::new()),
            stalls_ms: AtomicU64::new(0),
            saturated_ms: AtomicU64::new(0),
        }
    }

    /// Samples every 500 ms until `stop` is set.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        // Job id → since when it has been claimable (with the credential healthy throughout), and
        // that instant in the history's milliseconds.
        let mut waiting: HashMap<i64, (Instant, u64)> = HashMap::new();
        let mut reported = std::collections::HashSet::new();
        sqlx::query("create table if not exists chaos_probe (id int primary key, at timestamptz)")
            .execute(&self.pool)
            .await
            .expect("create the monitor's probe table");
        let mut last_sample = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (sampling, sampled_from_ms) = (Instant::now(), self.history.now_ms());
            let since_last = sampling - last_sample;
            last_sample = sampling;
            let healthy: Option<bool> = sqlx::query_scalar(
                // The fleet's credential: the first recorded (see `settle`).
                "select state = 'healthy' from xano_credential order by created_at limit 1",
            )
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
            let due: Vec<DueJob> = match sqlx::query_as(
                "select job_id, kind, subject, state::text as state, attempt,
                        row_number() over (partition by kind = 'send_mail'
                                           order by due_at, job_id) as place
                 from job j
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
            let Ok(busy) = sqlx::query_as::<_, Busy>(
                "select count(*) as running, count(*) filter (where kind = 'send_mail') as mail
                 from job where state = 'running' and due_at > now()",
            )
            .fetch_one(&self.pool)
            .await
            else {
                continue;
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
                for (since, since_ms) in waiting.values_mut() {
                    *since += stalled;
                    *since_ms += u64::try_from(stalled.as_millis()).unwrap_or(u64::MAX);
                }
            }
            if healthy != Some(true) {
                waiting.clear();
                continue;
            }
            let now = Instant::now();
            // Every worker of the instances up was busy since the last sample: the waiting jobs'
            // clocks stand still for that long (see the module doc).
            let up = i64::try_from(self.instances.saturating_sub(self.history.instances_down()))
                .unwrap_or(i64::MAX);
            let full = busy.running >= WORKERS * up;
            let mail_full = full || busy.mail >= MAIL_SHARE * up;
            // (A stall's time beyond a second is excused above already.)
            let since_last = since_last.saturating_sub(stalled);
            if full {
                self.saturated_ms.fetch_add(
                    u64::try_from(since_last.as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            for job in &due {
                let lane_full = if job.kind == "send_mail" {
                    mail_full
                } else {
                    full
                };
                if lane_full && let Some((since, since_ms)) = waiting.get_mut(&job.job_id) {
                    *since += since_last;
                    *since_ms += u64::try_from(since_last.as_millis()).unwrap_or(u64::MAX);
                }
            }
            waiting.retain(|id, _| due.iter().any(|j| j.job_id == *id));
            for job in &due {
                if job.place > FRONT && !waiting.contains_key(&job.job_id) {
                    continue;
                }
                let (since, since_ms) = *waiting
                    .entry(job.job_id)
                    .or_insert((now, self.history.now_ms()));
                let waited = now - since;
                let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                if self.longest_wait_ms.fetch_max(waited_ms, Ordering::Relaxed) < waited_ms {
                    let since_utc =
                        chrono::Utc::now() - chrono::Duration::from_std(waited).unwrap_or_default();
                    *self.longest.lock().unwrap() = format!(
                        "job {} {} {} {} (attempt {}) from {since_ms} ms ({})",
                        job.job_id,
                        job.kind,
                        job.subject,
                        job.state,
                        job.attempt,
                        since_utc.format("%H:%M:%S%.3f")
                    );
                }
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
