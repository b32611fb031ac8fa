//! The job queue's claim and fence, against real PostgreSQL.
//!
//! - A claim returns exactly its limit while enough jobs are due, and no job is ever handed to two
//!   claimers, even with hash and merge joins disabled (the planner settings under which a
//!   `where job_id in (select … limit n for update skip locked)` claim is known to return more than
//!   `n` rows), with many claimers of several instances racing.
//! - A running job whose lease ran out is claimable again with `attempt + 1`, and the worker that
//!   lost it can no longer finish, heartbeat or hold it: its writes match no row. That holds even
//!   when the new claim is by the same instance (same lease owner), where only the attempt differs.
//! - Due mail is claimed before Xano work of any age, a claim fills its limit from both lanes, and a
//!   claim in one lane takes nothing of the other (`seller_fairness.rs` has the runner's shares).
//! - A job handed back because Xano refused its instance's credential is queued again at once, its
//!   attempt not counted, for another instance to claim (`credentials.rs` has the instances; a park
//!   racing a lift is in `forbidden_snippets.rs`).

use std::collections::HashMap;
use std::time::Duration;

use market_core::queue::{self, Finish, Job, JobKind, Lanes};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use testkit::TestDb;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::common::job_row;

const JOBS: i64 = 1000;
const LIMIT: i64 = 10;
const INSTANCES: usize = 3;
const WORKERS_PER_INSTANCE: usize = 8;

/// A pool whose every connection has hash and merge joins switched off, so the planner can only
/// join with nested loops.
async fn nested_loops_only(db: &TestDb, connections: u32) -> PgPool {
    let options = db
        .connect_options()
        .options([("enable_hashjoin", "off"), ("enable_mergejoin", "off")]);
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .unwrap()
}

/// Queues `n` jobs of several kinds (mail among them: a claim reads mail's lane and then Xano's)
/// in turn, each with a subject of its own.
async fn queue_jobs(pool: &PgPool, n: i64) {
    sqlx::query(
        "insert into job (kind, subject)
         select (array['replenish_pool', 'mint_for_purchase', 'delete_token', 'reconcile_listing',
                       'send_mail'])[1 + g % 5],
                'subject-' || g
         from generate_series(1, $1) g",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

/// Claims for `owner` as soon as something is claimable (a lease ran out); fails after 20 s.
async fn claim_when_expired(pool: &PgPool, owner: Uuid, lease: Duration) -> Vec<Job> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = queue::claim(pool, owner, 10, lease).await.unwrap();
        if !jobs.is_empty() {
            return jobs;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was never claimable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_claim_returns_exactly_its_limit_even_with_hash_and_merge_joins_off() {
    // Arrange: 1000 due jobs, and claimers that can only plan nested loops.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    queue_jobs(db.pool(), JOBS).await;
    let pool = nested_loops_only(&db, 8).await;
    let settings: (String, String) = sqlx::query_as(
        "select current_setting('enable_hashjoin'), current_setting('enable_mergejoin')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(settings, ("off".to_owned(), "off".to_owned()));

    // Act 1: one claimer alone takes the first batches.
    let lease = Duration::from_secs(600);
    let alone = Uuid::new_v4();
    let mut claimed: Vec<(Uuid, i64)> = Vec::new();
    for _ in 0..5 {
        let jobs = queue::claim(&pool, alone, LIMIT, lease).await.unwrap();
        assert_eq!(
            jobs.len(),
            10,
            "a claim with 10+ due jobs returns exactly 10"
        );
        claimed.extend(jobs.iter().map(|j| (alone, j.job_id)));
    }

    // Act 2: 3 instances × 8 workers race for the rest; each worker claims until nothing is left.
    let mut claimers = JoinSet::new();
    for _ in 0..INSTANCES {
        let owner = Uuid::new_v4();
        for _ in 0..WORKERS_PER_INSTANCE {
            let pool = pool.clone();
            claimers.spawn(async move {
                let mut batches: Vec<Vec<Job>> = Vec::new();
                loop {
                    let jobs = queue::claim(&pool, owner, LIMIT, lease).await.unwrap();
                    let empty = jobs.is_empty();
                    batches.push(jobs);
                    if empty {
                        return (owner, batches);
                    }
                }
            });
        }
    }
    let mut full_claims = 0;
    while let Some(result) = claimers.join_next().await {
        let (owner, batches) = result.unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        // Every claim is full until the queue runs dry: at most one short claim (the queue held
        // fewer due, unlocked jobs than the limit), then an empty one that ends the loop.
        let rest = &sizes[..sizes.len() - 1];
        let short = rest.iter().filter(|&&n| n != 10).count();
        assert!(short <= 1, "more than one short claim: {sizes:?}");
        if let Some(&n) = rest.iter().find(|&&n| n != 10) {
            assert_eq!(
                rest.last(),
                Some(&n),
                "a short claim came before a full one: {sizes:?}"
            );
            assert!(n < 10, "a claim returned more than its limit: {sizes:?}");
        }
        full_claims += rest.iter().filter(|&&n| n == 10).count();
        for job in batches.iter().flatten() {
            assert_eq!(job.lease_owner, Some(owner));
            assert_eq!(job.attempt, 1);
            claimed.push((owner, job.job_id));
        }
    }

    // Assert: every job claimed exactly once, by the owner the database says holds it.
    let mut times: HashMap<i64, usize> = HashMap::new();
    for (_, job_id) in &claimed {
        *times.entry(*job_id).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs claimed more than once: {twice:?}");
    assert_eq!(claimed.len(), usize::try_from(JOBS).unwrap());
    let holders: HashMap<i64, Uuid> = sqlx::query_as::<_, (i64, Uuid)>(
        "select job_id, lease_owner from job where state = 'running' and attempt = 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(holders.len(), claimed.len());
    for (owner, job_id) in &claimed {
        assert_eq!(holders.get(job_id), Some(owner));
    }
    // Short claims only happen at the very end, at most one per racing worker.
    assert!(
        full_claims * 10 >= 950 - 9 * INSTANCES * WORKERS_PER_INSTANCE,
        "{full_claims} full claims"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_lease_expired_is_claimed_again_and_the_old_lease_can_no_longer_write() {
    // Arrange: one job, claimed by worker A with a short lease.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        queue::enqueue(&mut conn, JobKind::DeleteToken, "1")
            .await
            .unwrap()
    );
    drop(conn);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_secs(2);
    let first = queue::claim(pool, a, 10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    let old = first[0].lease();
    assert_eq!((old.owner, old.attempt), (a, 1));
    assert!(
        queue::claim(pool, b, 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "a live lease is not claimable"
    );

    // Act: B claims it once A's lease has run out (A is "paused": it does nothing meanwhile).
    let second = claim_when_expired(pool, b, Duration::from_secs(60)).await;

    // Assert: same job, attempt + 1, B holds it.
    assert_eq!(second.len(), 1);
    let new = second[0].lease();
    assert_eq!(new.job_id, old.job_id);
    assert_eq!((new.owner, new.attempt), (b, 2));
    let before = job_row(pool, old.job_id).await;
    assert_eq!(
        (before.state.as_str(), before.attempt, before.lease_owner),
        ("running", 2, Some(b))
    );

    // A wakes up: every fenced write with its old lease matches nothing.
    let late = Finish::Dead {
        error: "late worker".into(),
    };
    assert!(!queue::finish(pool, old, &late).await.unwrap());
    assert!(!queue::finish(pool, old, &Finish::Done).await.unwrap());
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        !queue::heartbeat(&mut conn, old, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(!queue::hold(&mut conn, old).await.unwrap());
    drop(conn);
    assert_eq!(
        job_row(pool, old.job_id).await,
        before,
        "the old lease wrote something"
    );

    // B's lease still works, and its finish is what sticks.
    assert!(queue::finish(pool, new, &Finish::Done).await.unwrap());
    let after = job_row(pool, old.job_id).await;
    assert_eq!(
        (after.state.as_str(), after.attempt, after.lease_owner),
        ("done", 2, None)
    );
    assert!(after.finished_at.is_some());
    assert!(!queue::finish(pool, old, &late).await.unwrap());
    assert_eq!(job_row(pool, old.job_id).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_its_own_instance_claims_again_fences_the_stale_worker_by_attempt_alone() {
    // Arrange: workers of one instance share its lease owner; one of them claims and stalls.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        queue::enqueue(&mut conn, JobKind::MintForPurchase, "p")
            .await
            .unwrap()
    );
    drop(conn);
    let instance = Uuid::new_v4();
    let stale = queue::claim(pool, instance, 1, Duration::from_secs(1))
        .await
        .unwrap()[0]
        .lease();

    // Act: another worker of the same instance claims it after the lease ran out.
    let fresh = claim_when_expired(pool, instance, Duration::from_secs(60)).await[0].lease();

    // Assert: same job and owner, only the attempt tells the claims apart, and it is enough.
    assert_eq!((fresh.job_id, fresh.owner), (stale.job_id, stale.owner));
    assert_eq!((stale.attempt, fresh.attempt), (1, 2));
    let before = job_row(pool, stale.job_id).await;
    let retry = Finish::Retry {
        after: Duration::ZERO,
        error: "stale".into(),
    };
    assert!(!queue::finish(pool, stale, &retry).await.unwrap());
    let mut conn = pool.acquire().await.unwrap();
    assert!(!queue::hold(&mut conn, stale).await.unwrap());
    assert!(
        !queue::heartbeat(&mut conn, stale, Duration::from_secs(60))
            .await
            .unwrap()
    );
    drop(conn);
    assert_eq!(job_row(pool, stale.job_id).await, before);
    assert!(queue::finish(pool, fresh, &Finish::Done).await.unwrap());
    assert_eq!(job_row(pool, stale.job_id).await.state, "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_job_is_queued_due_now_with_its_attempt_not_counted_and_claimable_by_another_instance()
 {
    // Arrange: a job claimed by an instance whose credential Xano refuses.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        queue::enqueue(&mut conn, JobKind::DeleteToken, "1")
            .await
            .unwrap()
    );
    drop(conn);
    let (stale, good) = (Uuid::new_v4(), Uuid::new_v4());
    let claimed = queue::claim(pool, stale, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let release = Finish::Release {
        error: "Xano rejected the access token (401 Unauthorized)".into(),
    };

    // Act
    let written = queue::finish(pool, claimed[0].lease(), &release)
        .await
        .unwrap();
    let after = job_row(pool, claimed[0].job_id).await;
    let again = queue::claim(pool, good, 1, Duration::from_secs(60))
        .await
        .unwrap();

    // Assert
    assert!(written);
    assert_eq!((after.state.as_str(), after.attempt), ("queued", 0));
    assert_eq!(after.lease_owner, None);
    assert_eq!(
        after.last_error.as_deref(),
        Some("Xano rejected the access token (401 Unauthorized)")
    );
    assert_eq!(again.len(), 1, "due at once");
    assert_eq!((again[0].job_id, again[0].attempt), (claimed[0].job_id, 1));
    assert_eq!(again[0].lease_owner, Some(good));
}

/// Queues a job of `kind` for `subject`, due `ago_secs` seconds ago.
async fn queue_due(pool: &PgPool, kind: &str, subject: &str, ago_secs: f64) -> i64 {
    sqlx::query_scalar(
        "insert into job (kind, subject, due_at)
         values ($1, $2, now() - make_interval(secs => $3)) returning job_id",
    )
    .bind(kind)
    .bind(subject)
    .bind(ago_secs)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_mail_is_claimed_before_older_xano_work_and_a_claim_in_one_lane_takes_nothing_of_the_other()
 {
    // Arrange: a backlog of Xano work due for a minute, and two messages due just now.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let mut backlog = Vec::new();
    for n in 0..5_u32 {
        backlog.push(
            queue_due(
                pool,
                "mint_for_purchase",
                &format!("p{n}"),
                60.0 - f64::from(n),
            )
            .await,
        );
    }
    let mail = [
        queue_due(pool, "send_mail", "m0", 0.2).await,
        queue_due(pool, "send_mail", "m1", 0.1).await,
    ];
    let lease = Duration::from_secs(600);
    let ids = |jobs: &[Job]| jobs.iter().map(|j| j.job_id).collect::<Vec<_>>();
    let sorted = |jobs: Vec<Job>| {
        let mut ids = ids(&jobs);
        ids.sort_unstable();
        ids
    };

    // Act and assert 1: a claim of three takes both messages, then the oldest Xano job.
    let first = queue::claim(pool, Uuid::new_v4(), 3, lease).await.unwrap();
    assert_eq!(sorted(first), vec![backlog[0], mail[0], mail[1]]);

    // 2: with a new message due, a claim in Xano's lane alone leaves it.
    let late = queue_due(pool, "send_mail", "m2", 0.0).await;
    let no_mail = Lanes {
        mail: false,
        xano: true,
    };
    let xano = queue::claim_in(pool, Uuid::new_v4(), 10, lease, no_mail, &[])
        .await
        .unwrap();
    assert_eq!(sorted(xano), backlog[1..].to_vec());

    // 3: a claim in mail's lane alone takes the message and nothing else.
    queue_due(pool, "delete_token", "t0", 30.0).await;
    let only_mail = Lanes {
        mail: true,
        xano: false,
    };
    let mail_only = queue::claim_in(pool, Uuid::new_v4(), 10, lease, only_mail, &[])
        .await
        .unwrap();
    assert_eq!(ids(&mail_only), vec![late]);
}
