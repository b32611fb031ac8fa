//! Whose jobs wait for a worker. Every instance's job workers are shared by all sellers, so a
//! seller whose Xano is slow can hold them (each call up to the client's timeout) while another
//! seller's pool refill waits to be claimed; a buyer of that other seller then finds the pool empty.
//! This samples the job table every 250 ms during the isolation run and keeps, per seller and run,
//! the longest any of its claimable jobs (queued and due, or running with its lease run out) had
//! waited: the figure that explains a purchase that was not served from the pool.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Claimable {
    kind: String,
    seller_id: Option<Uuid>,
    waited_secs: f64,
}

/// The longest claim wait seen, by (run, seller id): seconds, the job's kind, and when it was seen
/// (seconds into the run).
pub type Waits = BTreeMap<(u8, Uuid), (f64, String, f64)>;

pub struct SellerJobs {
    pool: PgPool,
    /// The run being sampled (1 or 2), and when it started.
    pub run: AtomicU8,
    pub run_started: Mutex<Instant>,
    pub longest: Mutex<Waits>,
}

impl SellerJobs {
    /// Samples of run `run` from now on.
    pub fn start_run(&self, run: u8) {
        *self.run_started.lock().unwrap() = Instant::now();
        self.run.store(run, Ordering::SeqCst);
    }

    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            run: AtomicU8::new(1),
            run_started: Mutex::new(Instant::now()),
            longest: Mutex::new(BTreeMap::new()),
        }
    }

    /// Samples until `stop` is set. A job is attributed to the seller of what its subject names:
    /// a tier (refills), a purchase (mints), a token (deletions) or a listing (reconciliation).
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Ok(claimable) = sqlx::query_as::<_, Claimable>(
                "select j.kind,
                        coalesce(
                          (select l.seller_id from tier t join listing l using (listing_id)
                           where t.tier_id::text = j.subject),
                          (select l.seller_id from purchase p join tier t using (tier_id)
                             join listing l using (listing_id)
                           where p.purchase_id::text = j.subject),
                          (select l.seller_id from install_token it join listing l using (listing_id)
                           where it.install_token_id::text = j.subject),
                          (select l.seller_id from listing l where l.listing_id::text = j.subject)
                        ) as seller_id,
                        extract(epoch from now() - j.due_at)::float8 as waited_secs
                 from job j where j.state in ('queued', 'running') and j.due_at <= now()",
            )
            .fetch_all(&self.pool)
            .await
            else {
                continue;
            };
            let run = self.run.load(Ordering::SeqCst);
            let at = self.run_started.lock().unwrap().elapsed().as_secs_f64();
            let mut longest = self.longest.lock().unwrap();
            for job in claimable {
                let Some(seller) = job.seller_id else {
                    continue;
                };
                let entry = longest
                    .entry((run, seller))
                    .or_insert((0.0, String::new(), 0.0));
                if job.waited_secs > entry.0 {
                    *entry = (job.waited_secs, job.kind, at);
                }
            }
        }
    }
}
