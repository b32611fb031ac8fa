//! A tier's pool refilled as fast as its account's Xano limit allows: creates in flight together,
//! paced by the client's limiter so that Xano refuses none, never more than the pool lacks; a
//! create whose answer is lost, or a lease lost, ends the run only once the creates already in
//! flight are recorded.
//!
//! The free plan's 10 requests per 20 s is scaled down to 10 per 2 s, with creates taking 500 ms:
//! one create at a time would send one per 500 ms, under half that limit. What is asserted is the
//! simulator's call log (statuses, counts, overlap) and the database, never elapsed time.

use std::future::Future;
use std::time::{Duration, Instant};

use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::listings::{self, ListingSpec};
use market_core::tiers::{self, TierChange};
use market_core::{Canonical, JobsConfig, Market, TierId};
use master_api::RateLimit;
use sandbox::xano::{
    CallRecord, Endpoint, Fault, FreePlanPolicy, XanoSim, XanoSimConfig, token_fingerprint,
};
use secrecy::SecretString;
use testkit::TestDb;
use uuid::Uuid;

use crate::common::{CANONICAL, envelope, job_row, test_jobs_config, tier_spec, tokens_where};

const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(2);
const LATENCY: Duration = Duration::from_millis(500);
const TARGET: i32 = 30;

/// A listing reconciled once, then a tier of it whose pool of `TARGET` is empty, on a simulator
/// enforcing `LIMIT` per `WINDOW`.
struct Refill {
    db: TestDb,
    sim: XanoSim,
    market: Market,
    tier: TierId,
}

/// A client of the simulator with `access_token`, paced by `limit`.
fn client(sim: &XanoSim, access_token: &str, limit: RateLimit) -> master_api::Client {
    master_api::Client::builder(SecretString::from(access_token.to_owned()))
        .base_url(sim.base_url())
        .rate_limit(limit)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Refill {
    async fn new(jobs: JobsConfig, limit: RateLimit) -> Self {
        let db = TestDb::new(&market_core::MIGRATOR).await;
        let sim = XanoSim::start(XanoSimConfig {
            free_plan_rate_limit: true,
            free_plan_policy: FreePlanPolicy {
                requests: LIMIT,
                window: WINDOW,
            },
            ..XanoSimConfig::default()
        })
        .await
        .unwrap();
        sim.add_snippet(CANONICAL, "A snippet");
        let market = Market::new(
            db.pool().clone(),
            client(&sim, &sim.access_token(), limit),
            envelope(db.pool()).await,
            jobs,
        );
        let spec = ListingSpec {
            canonical: Canonical::parse(CANONICAL).unwrap(),
            title: "A snippet".into(),
            description: "Does things".into(),
            active: true,
        };
        listings::prepare_snippet(&market.xano, &spec)
            .await
            .unwrap();
        let admin = Actor::Admin("test".into());
        let mut conn = db.pool().acquire().await.unwrap();
        let (listing, _) = listings::upsert(&mut conn, &spec, &admin).await.unwrap();
        drop(conn);
        // The listing's first reconciliation runs before the tier exists: only creates are left.
        Runner::new(market.clone()).drain().await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let change = tiers::apply(
            &mut conn,
            listing.listing_id,
            &tier_spec("solo", 1900, 5, TARGET, TARGET),
            &admin,
        )
        .await
        .unwrap();
        let TierChange::Created { tier_id } = change else {
            panic!("{change:?}")
        };
        Self {
            db,
            sim,
            market,
            tier: tier_id,
        }
    }

    fn creates(&self) -> Vec<CallRecord> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.endpoint == Some(Endpoint::CreateToken))
            .collect()
    }

    /// The database's available tokens and the simulator's live ones, each sorted.
    async fn pool_and_xano(&self) -> (Vec<String>, Vec<String>) {
        let mut pool =
            tokens_where(self.db.pool(), &self.market.envelope, "state = 'available'").await;
        pool.sort();
        let mut xano: Vec<String> = self
            .sim
            .tokens(CANONICAL)
            .into_iter()
            .map(|t| t.token)
            .collect();
        xano.sort();
        (pool, xano)
    }

    /// The replenisher's runs by attempt: (attempt, minted, outcome).
    async fn runs(&self) -> Vec<(i64, i64, String)> {
        sqlx::query_as(
            "select (detail->>'attempt')::bigint, (detail->>'minted')::bigint, detail->>'outcome'
             from audit_event where action = 'pool.replenish_run' and tier_id = $1
             order by (detail->>'attempt')::int",
        )
        .bind(self.tier)
        .fetch_all(self.db.pool())
        .await
        .unwrap()
    }

    async fn replenish_job(&self) -> i64 {
        sqlx::query_scalar("select job_id from job where kind = 'replenish_pool' and subject = $1")
            .bind(self.tier.to_string())
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

/// The most creates the simulator was serving at one moment.
fn most_in_flight(creates: &[CallRecord]) -> usize {
    creates
        .iter()
        .map(|c| {
            creates
                .iter()
                .filter(|d| d.started_at <= c.started_at && c.started_at < d.at)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Polls `check` until it holds; fails the test after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_pool_on_a_free_plan_account_refills_with_creates_in_flight_together_and_not_one_429()
 {
    // Arrange: 30 tokens to make at 10 per 2 s; Xano takes 500 ms per create.
    let world = Refill::new(test_jobs_config(), RateLimit::new(LIMIT, WINDOW)).await;
    world.sim.inject(Fault::Latency {
        min: LATENCY,
        max: LATENCY,
        only: Some(Endpoint::CreateToken),
    });

    // Act
    let ran = Runner::new(world.market.clone()).drain().await.unwrap();

    // Assert: one run made exactly the target, and Xano refused nothing.
    assert_eq!(ran, 1);
    let refused: Vec<CallRecord> = world
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.status == 429)
        .collect();
    assert!(refused.is_empty(), "Xano answered 429: {refused:?}");
    let creates = world.creates();
    assert_eq!(creates.len(), 30, "never more creates than the pool lacked");
    assert!(creates.iter().all(|c| c.status == 200), "{creates:?}");
    let (pool, xano) = world.pool_and_xano().await;
    assert_eq!(pool.len(), 30);
    assert_eq!(pool, xano, "every token Xano made is in the pool");
    assert_eq!(world.runs().await, [(1, 30, "done".to_owned())]);
    // The creates overlapped: a window's sends went out together, not one per round trip.
    let together = most_in_flight(&creates);
    assert!(
        together > usize::try_from(LIMIT).unwrap() / 2 && together <= 10,
        "at most {together} creates in flight at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_ends_the_run_once_the_creates_in_flight_are_recorded() {
    // Arrange: the first create to reach Xano makes its token, then answers 500.
    let world = Refill::new(test_jobs_config(), RateLimit::new(LIMIT, WINDOW)).await;
    world.sim.inject(Fault::Latency {
        min: LATENCY,
        max: LATENCY,
        only: Some(Endpoint::CreateToken),
    });
    world.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: None,
    });
    let runner = Runner::new(world.market.clone());
    let job_id = world.replenish_job().await;

    // Act 1: the first run (one batch: its retry's backoff may draw zero, and a drain would run it
    // again at once).
    assert_eq!(runner.run_batch().await.unwrap(), 1);

    // Assert 1: it ended with the 5xx, short of the target, and every token that Xano answered for
    // is in the pool: only the one whose answer was lost is unknown to us.
    let row = job_row(world.db.pool(), job_id).await;
    assert_eq!((row.state.as_str(), row.attempt), ("queued", 1));
    let creates = world.creates();
    let answered = creates.iter().filter(|c| c.status == 200).count();
    assert_eq!(creates.iter().filter(|c| c.status == 500).count(), 1);
    assert_eq!(creates.len(), answered + 1, "{creates:?}");
    let (pool, xano) = world.pool_and_xano().await;
    assert_eq!(pool.len(), answered, "a token Xano answered for is missing");
    assert_eq!(xano.len(), answered + 1);
    assert!(pool.iter().all(|t| xano.contains(t)));
    assert!(xano.len() < 30, "the run went on after the 5xx");
    let runs = world.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, i64::try_from(answered).unwrap());
    assert!(runs[0].2.contains("500"), "{runs:?}");

    // Act 2: the retry (after its backoff) reconciles first, then fills the pool.
    let w = &world;
    wait_for("the retry to finish", Duration::from_secs(60), || async {
        runner.drain().await.unwrap();
        job_row(w.db.pool(), job_id).await.state == "done"
    })
    .await;

    // Assert 2: the lost one adopted, the pool exactly at its target, nothing unknown, no 429.
    let (pool, xano) = world.pool_and_xano().await;
    assert_eq!(pool.len(), 30);
    assert_eq!(pool, xano);
    assert!(world.sim.calls().iter().all(|c| c.status != 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_lease_sends_no_more_creates_and_records_the_ones_in_flight() {
    // Arrange: 1 s leases; worker 1 uses an unpaced client (8 creates in flight) with the
    // account's first token, worker 2 the second token; Xano's limit off, creates take 4 s.
    let lease = Duration::from_secs(1);
    let jobs = JobsConfig {
        lease,
        ..test_jobs_config()
    };
    let world = Refill::new(jobs.clone(), RateLimit::unlimited()).await;
    world.sim.set_free_plan_rate_limit(false);
    let second = world.sim.add_access_token();
    let instance2 = Market::new(
        world.db.pool().clone(),
        client(&world.sim, &second, RateLimit::new(LIMIT, WINDOW)),
        world.market.envelope.clone(),
        jobs,
    );
    world.sim.inject(Fault::Latency {
        min: Duration::from_secs(4),
        max: Duration::from_secs(4),
        only: Some(Endpoint::CreateToken),
    });
    let job_id = world.replenish_job().await;
    let (worker1, worker2) = (Runner::new(world.market.clone()), Runner::new(instance2));
    let owner1 = worker1.owner();

    // Act: worker 1 sends its creates and loses its lease while they are in flight; Xano is fast
    // again for newcomers; worker 2 takes the job over and fills the pool; then worker 1's
    // answers arrive.
    let first = tokio::spawn(async move { worker1.drain().await });
    let w = &world;
    wait_for(
        "worker 1's lease to run out",
        Duration::from_secs(30),
        || lease_expired(w, job_id, owner1),
    )
    .await;
    world.sim.clear_faults();
    assert_eq!(worker2.drain().await.unwrap(), 1);
    let done = job_row(world.db.pool(), job_id).await;
    assert_eq!((done.state.as_str(), done.attempt), ("done", 2));
    let ran = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("worker 1 came back")
        .unwrap()
        .unwrap();
    assert_eq!(ran, 1);

    // Assert: worker 1 sent its first round only, recorded every token of it, and ended on the
    // lost lease without touching the job; nothing at Xano is unknown to the database.
    let first_token = token_fingerprint(&world.sim.access_token());
    let by_worker1: Vec<CallRecord> = world
        .creates()
        .into_iter()
        .filter(|c| c.token_fingerprint.as_deref() == Some(first_token.as_str()))
        .collect();
    assert_eq!(by_worker1.len(), 8, "{by_worker1:?}");
    assert!(by_worker1.iter().all(|c| c.status == 200));
    let runs = world.runs().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        runs[0],
        (1, 8, "lease lost to another worker".to_owned()),
        "worker 1's run"
    );
    assert_eq!(
        (runs[1].0, runs[1].2.as_str()),
        (2, "done"),
        "worker 2's run"
    );
    assert_eq!(job_row(world.db.pool(), job_id).await, done);
    let (pool, xano) = world.pool_and_xano().await;
    assert_eq!(pool, xano, "a token made by worker 1 is missing");
    assert!(pool.len() >= 30, "{}", pool.len());
}

/// Worker `owner` holds the job at its first attempt and its lease has run out.
async fn lease_expired(world: &Refill, job_id: i64, owner: Uuid) -> bool {
    sqlx::query_scalar::<_, bool>(
        "select lease_owner = $2 and attempt = 1 and due_at <= now() from job where job_id = $1",
    )
    .bind(job_id)
    .bind(owner)
    .fetch_one(world.db.pool())
    .await
    .unwrap()
}
