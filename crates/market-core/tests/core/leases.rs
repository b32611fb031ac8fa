//! Leases under slow Xano calls and shutdowns: execution is at least once, effects stay exactly once.
//!
//! - A mint job whose lease runs out while its worker waits for Xano is claimed by a second worker,
//!   which completes it; when the first worker's call finally returns, its fenced finish changes
//!   nothing, and the token it minted is tracked (it joins the pool) rather than lost or sold twice.
//! - The same with the first worker stalled *after* Xano created its token: the second worker
//!   reconciles before minting again, adopts that token and sells it, and mints nothing more.
//! - A runner shut down with jobs in flight hands their leases back, and another runner completes
//!   them at once, without waiting for the leases to run out.
//!
//! Both workers of a takeover are driven with `Runner::drain`, and every "meanwhile" is a state the
//! test waits for (a lease that ran out, a token at the simulator), not a guess at timing.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::common::{CANONICAL, World, audit_count, job_row, test_jobs_config};
use market_core::jobs::runner::Runner;
use market_core::payments::Effect;
use market_core::{JobsConfig, Market, PurchaseId};
use sandbox::xano::{Endpoint, Fault, XanoSim};
use secrecy::SecretString;
use uuid::Uuid;

/// A world with an empty pool that is never refilled, so a paid purchase needs a mint job.
async fn empty_pool_world(lease: Duration) -> World {
    let world = World::with_config(
        0,
        0,
        JobsConfig {
            lease,
            ..test_jobs_config()
        },
    )
    .await;
    world.drain().await; // the tier's no-op replenisher and the listing's first reconciliation
    world
}

/// The world's market with a Xano client patient enough to outwait the simulator's delays.
fn patient_market(world: &World) -> Market {
    Market::new(
        world.pool().clone(),
        patient_client(&world.sim),
        world.market.envelope.clone(),
        world.market.jobs.clone(),
    )
}

fn patient_client(sim: &XanoSim) -> master_api::Client {
    master_api::Client::builder(SecretString::from(sim.access_token()))
        .base_url(sim.base_url())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn paid_purchase_awaiting_a_token(world: &World) -> (PurchaseId, i64) {
    let (purchase, session) = world.checkout().await;
    let outcome = world.deliver_paid("evt_paid", purchase, &session).await;
    assert_eq!(outcome.effect, Effect::AwaitingToken);
    (purchase, mint_job_of(world, purchase).await)
}

async fn mint_job_of(world: &World, purchase: PurchaseId) -> i64 {
    sqlx::query_scalar("select job_id from job where kind = 'mint_for_purchase' and subject = $1")
        .bind(purchase.to_string())
        .fetch_one(world.pool())
        .await
        .unwrap()
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

/// Worker 1 (`owner`) holds the job and its lease has run out.
async fn wait_for_expired_lease_of(world: &World, job_id: i64, owner: Uuid) {
    wait_for("the lease to run out", Duration::from_secs(30), || async move {
        sqlx::query_scalar::<_, bool>(
            "select lease_owner = $2 and attempt = 1 and due_at <= now() from job where job_id = $1",
        )
        .bind(job_id)
        .bind(owner)
        .fetch_one(world.pool())
        .await
        .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_lease_expires_while_its_worker_calls_xano_is_taken_over_and_the_late_finish_changes_nothing()
 {
    // Arrange: a paid purchase the empty pool cannot serve; leases of 1 s; creates take 4 s.
    let world = empty_pool_world(Duration::from_secs(1)).await;
    let market = patient_market(&world);
    let (purchase, job_id) = paid_purchase_awaiting_a_token(&world).await;
    world.sim.inject(Fault::Latency {
        min: Duration::from_secs(4),
        max: Duration::from_secs(4),
        only: Some(Endpoint::CreateToken),
    });
    let (worker1, worker2) = (Runner::new(market.clone()), Runner::new(market.clone()));
    let owner1 = worker1.owner();

    // Act 1: worker 1 claims the job, finds the pool empty (it records that, then calls Xano) and
    // is still waiting for Xano when its lease runs out.
    let first = tokio::spawn(async move { worker1.drain().await });
    let w = &world;
    wait_for(
        "worker 1 to reach Xano",
        Duration::from_secs(30),
        || async move { audit_count(w.pool(), "purchase.awaiting_token", purchase).await == 2 },
    )
    .await;
    wait_for_expired_lease_of(&world, job_id, owner1).await;

    // Act 2: Xano is fast again for newcomers; worker 2 takes the job over and completes it.
    let cleared = Instant::now();
    world.sim.clear_faults();
    assert_eq!(worker2.drain().await.unwrap(), 1);
    let taken_over = Instant::now();
    let done = job_row(world.pool(), job_id).await;
    assert_eq!(
        (done.state.as_str(), done.attempt, done.lease_owner),
        ("done", 2, None)
    );
    let tokens = world.live_tokens_of(purchase).await;
    assert_eq!(tokens.len(), 1);
    let second_workers_token = tokens[0].clone();

    // Act 3: worker 1's call returns; it tries to finish.
    let ran = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("worker 1 came back")
        .unwrap()
        .unwrap();
    assert_eq!(ran, 1);

    // Assert: the scenario happened as staged: worker 1's create was sent before the fault was
    // cleared and answered only after worker 2 had finished.
    let creates: Vec<_> = world
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Some(Endpoint::CreateToken))
        .collect();
    assert_eq!(creates.len(), 2, "{creates:?}");
    let late = creates.iter().find(|c| c.started_at < cleared).unwrap();
    assert!(late.at > taken_over && late.status == 200, "{late:?}");

    // The late worker changed nothing about the job or the purchase.
    assert_eq!(
        job_row(world.pool(), job_id).await,
        done,
        "the fenced finish wrote"
    );
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(
        world.live_tokens_of(purchase).await,
        std::slice::from_ref(&second_workers_token)
    );
    assert_eq!(
        audit_count(world.pool(), "token.assigned", purchase).await,
        1
    );
    assert_eq!(
        audit_count(world.pool(), "purchase.fulfilled", purchase).await,
        1
    );
    // Its token is not lost: it waits in the pool for the next buyer.
    let pooled: Vec<String> = world
        .tokens_where("state = 'available' and origin = 'minted'")
        .await;
    assert_eq!(pooled.len(), 1);
    assert_ne!(pooled[0], second_workers_token);
    assert_eq!(world.sim_tokens().len(), 2);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stalled_after_xano_created_its_token_loses_the_job_and_the_taker_adopts_that_token()
 {
    // Arrange: Xano creates worker 1's token at once but holds back the answer for 4 s.
    let world = empty_pool_world(Duration::from_secs(1)).await;
    let market = patient_market(&world);
    let (purchase, job_id) = paid_purchase_awaiting_a_token(&world).await;
    world.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_secs(4)),
    });
    let (worker1, worker2) = (Runner::new(market.clone()), Runner::new(market.clone()));
    let owner1 = worker1.owner();

    // Act: worker 1 is inside Xano (its token exists there) when its lease runs out; worker 2
    // takes over; then worker 1's answer arrives.
    let first = tokio::spawn(async move { worker1.drain().await });
    let w = &world;
    wait_for(
        "worker 1's token at Xano",
        Duration::from_secs(30),
        || async move { w.sim.tokens(CANONICAL).len() == 1 },
    )
    .await;
    wait_for_expired_lease_of(&world, job_id, owner1).await;
    let orphan = world.sim_tokens().remove(0);
    assert_eq!(worker2.drain().await.unwrap(), 1);
    let done = job_row(world.pool(), job_id).await;
    assert_eq!(
        world.live_tokens_of(purchase).await,
        std::slice::from_ref(&orphan)
    );
    let ran = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("worker 1 came back")
        .unwrap()
        .unwrap();
    assert_eq!(ran, 1);

    // Assert: worker 2 reconciled before minting, so the one token Xano made is the one sold.
    let creates = world.calls_to(Endpoint::CreateToken);
    assert_eq!(creates, 1, "the taker minted again instead of adopting");
    assert_eq!(
        (done.state.as_str(), done.attempt, done.lease_owner),
        ("done", 2, None)
    );
    assert_eq!(
        job_row(world.pool(), job_id).await,
        done,
        "the fenced finish wrote"
    );
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(
        world.live_tokens_of(purchase).await,
        std::slice::from_ref(&orphan)
    );
    assert_eq!(
        audit_count(world.pool(), "token.assigned", purchase).await,
        1
    );
    assert_eq!(world.sim_tokens(), [orphan]);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_shut_down_with_jobs_in_flight_hands_their_leases_back_for_another_to_finish() {
    // Arrange: three paid purchases waiting for tokens, long leases, and Xano creates that take
    // 3 s and would then fail (so an abandoned call can never leave a token behind). The fault's
    // count shows when all three calls have reached Xano.
    let world = empty_pool_world(Duration::from_secs(60)).await;
    let market = patient_market(&world);
    let mut purchases = Vec::new();
    for i in 0..3 {
        let (purchase, session) = world.checkout().await;
        let outcome = world
            .deliver_paid(&format!("evt_{i}"), purchase, &session)
            .await;
        assert_eq!(outcome.effect, Effect::AwaitingToken);
        purchases.push((purchase, mint_job_of(&world, purchase).await));
    }
    world.sim.inject(Fault::Latency {
        min: Duration::from_secs(3),
        max: Duration::from_secs(3),
        only: Some(Endpoint::CreateToken),
    });
    world.sim.inject(Fault::ServerError {
        count: 3,
        status: 500,
        only: Some(Endpoint::CreateToken),
    });
    let instance1 = Runner::new(market.clone());
    let owner1 = instance1.owner();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(instance1.run(
        async {
            stopped.await.ok();
        },
        Duration::from_millis(200),
    ));

    // Act: once all three jobs are inside Xano, shut the instance down with a short grace.
    let w = &world;
    wait_for(
        "three calls in flight at Xano",
        Duration::from_secs(30),
        || async move {
            !w.sim
                .faults()
                .iter()
                .any(|f| matches!(f, Fault::ServerError { .. }))
        },
    )
    .await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the runner stopped")
        .unwrap();

    // Assert: every lease was handed back, due now, nothing recorded about the abandoned runs.
    for (purchase, job_id) in &purchases {
        let row = job_row(world.pool(), *job_id).await;
        assert_eq!(
            (
                row.state.as_str(),
                row.attempt,
                row.lease_owner,
                row.last_error.as_deref()
            ),
            ("queued", 1, None, None),
            "job of {purchase} was held by {owner1}"
        );
        assert_eq!(world.status_of(*purchase).await, "paid");
    }
    let due: bool = sqlx::query_scalar(
        "select bool_and(due_at <= now()) from job where kind = 'mint_for_purchase'",
    )
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert!(
        due,
        "released jobs are due at once, not after the 60 s lease"
    );

    // Another instance takes them over at once and completes them.
    world.sim.clear_faults();
    let instance2 = Runner::new(market.clone());
    assert!(instance2.drain().await.unwrap() >= 3);
    // The three take-overs reconcile the listing at once (the passes take turns on its row); a job
    // that fails meanwhile is retried after its backoff, as any job is.
    for _ in 0..50 {
        if instance2.drain().await.unwrap() == 0
            && sqlx::query_scalar::<_, bool>(
                "select bool_and(state = 'done') from job where kind = 'mint_for_purchase'",
            )
            .fetch_one(world.pool())
            .await
            .unwrap()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (purchase, job_id) in &purchases {
        let row = job_row(world.pool(), *job_id).await;
        assert_eq!(row.state.as_str(), "done", "{:?}", row.last_error);
        assert!(row.attempt >= 2);
        assert_eq!(world.status_of(*purchase).await, "fulfilled");
        assert_eq!(world.live_tokens_of(*purchase).await.len(), 1);
    }
    assert_eq!(world.sim_tokens().len(), 3);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}
