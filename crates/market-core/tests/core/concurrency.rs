//! Concurrency at the heart of the promise: many deliveries, many buyers, several instances, one
//! database.
//!
//! - 200 concurrent "paid" deliveries of one Checkout Session (redeliveries of one event, distinct
//!   events for the same session, success-page calls) make one purchase, one token, one fulfilment.
//! - 500 concurrent purchases of one tier (pool target 50, low water 20) served while three
//!   instances run their workers: 500 distinct tokens, each live at Xano, one per purchase, and the
//!   tier's replenisher runs never overlap in time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{World, audit_count, test_jobs_config, xano_client};
use chrono::{DateTime, Utc};
use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::payments::{self, Delivery, Effect, Fact, SessionPayment};
use market_core::{Market, PurchaseId, reconcile};
use sandbox::xano::Endpoint;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Barrier, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

const CALLS: usize = 200;
const PURCHASES: usize = 500;

async fn count(world: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_paid_deliveries_of_one_session_make_one_purchase_one_token_one_fulfilment()
 {
    // Arrange: a filled pool and one pending purchase with its Checkout Session.
    let world = Arc::new(World::new(5, 10).await);
    world.fill_pool().await;
    assert_eq!(world.sim_tokens().len(), 10);
    let (purchase, session) = world.checkout().await;
    world.sim.clear_calls();
    let fact = Arc::new(Fact::CheckoutCompleted(World::session_facts(
        purchase,
        &session,
        SessionPayment::Paid,
    )));

    // Act: 200 tasks released at once. A quarter redeliver one event, half deliver events of
    // their own (Stripe may send several for one session), a quarter are success-page calls.
    let start = Arc::new(Barrier::new(CALLS));
    let mut calls = JoinSet::new();
    for i in 0..CALLS {
        let (world, fact, start) = (world.clone(), fact.clone(), start.clone());
        calls.spawn(async move {
            let event_id = match i % 4 {
                0 => Some("evt_same".to_owned()),
                1 | 2 => Some(format!("evt_{i}")),
                _ => None,
            };
            let delivery = event_id.as_deref().map(|event_id| Delivery {
                event_id,
                event_type: "checkout.session.completed",
                livemode: false,
            });
            start.wait().await;
            let outcome = payments::apply(world.pool(), delivery, &fact, &Actor::Stripe).await;
            (i % 4, outcome)
        });
    }
    let mut effects: HashMap<(usize, &'static str), usize> = HashMap::new();
    while let Some(joined) = calls.join_next().await {
        let (kind, outcome) = joined.unwrap();
        let outcome = outcome.unwrap_or_else(|e| panic!("a delivery failed: {e}"));
        *effects
            .entry((kind.min(1), outcome.effect.as_str()))
            .or_default() += 1;
    }

    // Assert: every call succeeded; one of them fulfilled, the same event's redeliveries were
    // recognised as duplicates, all others found the purchase already served.
    let of = |kind: usize, effect: &str| effects.get(&(kind, effect)).copied().unwrap_or(0);
    let fulfilled = of(0, "fulfilled") + of(1, "fulfilled");
    assert_eq!(fulfilled, 1, "{effects:?}");
    assert_eq!(of(0, "duplicate"), CALLS / 4 - 1, "{effects:?}");
    assert_eq!(of(1, "duplicate"), 0, "{effects:?}");
    let accounted =
        fulfilled + of(0, "duplicate") + of(0, "already_fulfilled") + of(1, "already_fulfilled");
    assert_eq!(accounted, CALLS, "unexpected effects: {effects:?}");

    // One purchase, exactly one token ever assigned to it, live at Xano, one fulfilment.
    assert_eq!(count(&world, "select count(*) from purchase").await, 1);
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    let ever: i64 = sqlx::query_scalar("select count(*) from install_token where purchase_id = $1")
        .bind(purchase)
        .fetch_one(world.pool())
        .await
        .unwrap();
    assert_eq!(ever, 1);
    let tokens = world.live_tokens_of(purchase).await;
    assert_eq!(tokens.len(), 1);
    assert!(world.sim_tokens().contains(&tokens[0]));
    assert_eq!(
        audit_count(world.pool(), "purchase.paid", purchase).await,
        1
    );
    assert_eq!(
        audit_count(world.pool(), "token.assigned", purchase).await,
        1
    );
    assert_eq!(
        audit_count(world.pool(), "purchase.fulfilled", purchase).await,
        1
    );
    // The inbox holds each event id once; the purchase path never called Xano or queued a mint.
    let distinct_events = 1 + (0..CALLS).filter(|i| matches!(i % 4, 1 | 2)).count();
    assert_eq!(
        count(&world, "select count(*) from stripe_event").await,
        i64::try_from(distinct_events).unwrap()
    );
    assert_eq!(
        count(
            &world,
            "select count(*) from job where kind = 'mint_for_purchase'"
        )
        .await,
        0
    );
    assert!(world.sim.calls().is_empty(), "{:?}", world.sim.calls());
}

/// One replenisher run, from its audit row.
#[derive(Debug, serde::Deserialize)]
struct ReplenishRun {
    job_id: i64,
    attempt: i32,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    minted: u32,
    outcome: String,
}

/// `n` instances of the service, each with its own connection pool, Xano client and workers,
/// running until the returned sender says `true`.
async fn start_instances(world: &World, n: usize) -> (watch::Sender<bool>, Vec<JoinHandle<()>>) {
    let (stop, stopped) = watch::channel(false);
    let mut instances = Vec::new();
    for _ in 0..n {
        let db = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(world.db.connect_options())
            .await
            .unwrap();
        let market = Market::new(
            db,
            xano_client(&world.sim),
            world.market.envelope.clone(),
            test_jobs_config(),
        );
        let mut stopped = stopped.clone();
        instances.push(tokio::spawn(Runner::new(market).run(
            async move {
                stopped.wait_for(|s| *s).await.ok();
            },
            Duration::from_secs(10),
        )));
    }
    (stop, instances)
}

/// `n` buyers check out and pay, 64 at a time. Returns the purchases, and how many were served
/// from the pool at payment and how many waited for the empty-pool fallback.
async fn buy_concurrently(world: &Arc<World>, n: usize) -> (HashSet<PurchaseId>, usize, usize) {
    let gate = Arc::new(Semaphore::new(64));
    let mut buyers = JoinSet::new();
    for i in 0..n {
        let (world, gate) = (world.clone(), gate.clone());
        buyers.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let (purchase, session) = world.checkout().await;
            let outcome = world
                .deliver_paid(&format!("evt_{i}"), purchase, &session)
                .await;
            (purchase, outcome.effect)
        });
    }
    let mut purchases = HashSet::new();
    let (mut from_pool, mut awaiting) = (0, 0);
    while let Some(joined) = buyers.join_next().await {
        let (purchase, effect) = joined.unwrap();
        match effect {
            Effect::Fulfilled { .. } => from_pool += 1,
            Effect::AwaitingToken => awaiting += 1,
            other => panic!("a first payment had effect {other:?}"),
        }
        purchases.insert(purchase);
    }
    (purchases, from_pool, awaiting)
}

/// Every purchase holds exactly one live token, all distinct, all live at Xano, and Xano's tokens
/// are exactly the database's.
async fn assert_one_distinct_live_token_each(world: &World, purchases: &HashSet<PurchaseId>) {
    let per_purchase: Vec<(PurchaseId, i64)> = sqlx::query_as(
        "select p.purchase_id, count(it.install_token_id)
         from purchase p left join install_token it
              on it.purchase_id = p.purchase_id and it.state in ('assigned', 'revoking')
         group by p.purchase_id",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert_eq!(per_purchase.len(), purchases.len());
    for (purchase, live) in &per_purchase {
        assert!(purchases.contains(purchase));
        assert_eq!(*live, 1, "purchase {purchase} holds {live} live tokens");
    }
    let sold: Vec<String> = world.tokens_where("state = 'assigned'").await;
    let sold: HashSet<String> = sold.into_iter().collect();
    assert_eq!(sold.len(), purchases.len(), "tokens are not distinct");
    let at_xano: HashSet<String> = world.sim_tokens().into_iter().collect();
    assert!(sold.is_subset(&at_xano), "a sold token is not live at Xano");
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

/// The tier's replenisher runs (one audit row each), checked never to overlap in time.
async fn non_overlapping_replenisher_runs(world: &World) -> Vec<ReplenishRun> {
    let runs: Vec<serde_json::Value> = sqlx::query_scalar(
        "select detail from audit_event where action = 'pool.replenish_run' and tier_id = $1",
    )
    .bind(world.tier)
    .fetch_all(world.pool())
    .await
    .unwrap();
    let mut runs: Vec<ReplenishRun> = runs
        .into_iter()
        .map(|d| serde_json::from_value(d).unwrap())
        .collect();
    runs.sort_by_key(|r| r.started_at);
    assert!(runs.len() >= 2, "{runs:?}");
    for pair in runs.windows(2) {
        assert!(
            pair[0].finished_at <= pair[1].started_at,
            "replenisher runs overlapped: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_purchases_of_one_tier_get_five_hundred_distinct_tokens() {
    // Arrange: a tier with pool target 50 and low water 20, its pool filled, and three instances
    // running their workers in the background.
    let world = Arc::new(World::new(20, 50).await);
    world.fill_pool().await;
    assert_eq!(world.sim_tokens().len(), 50);
    let (stop, instances) = start_instances(&world, 3).await;

    // Act: 500 buyers pay concurrently; wait until every purchase holds its token.
    let (purchases, from_pool, awaiting) = buy_concurrently(&world, PURCHASES).await;
    assert_eq!(purchases.len(), PURCHASES);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(
        &world,
        "select count(*) from purchase where status = 'fulfilled'",
    )
    .await
        < 500
    {
        assert!(
            Instant::now() < deadline,
            "purchases still waiting for tokens after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for instance in instances {
        tokio::time::timeout(Duration::from_secs(30), instance)
            .await
            .expect("an instance stopped")
            .unwrap();
    }
    world.drain().await;
    let report = reconcile::listing(&world.market, world.listing, &Actor::System)
        .await
        .unwrap();
    world.drain().await;

    // Assert: one live token per purchase, 500 distinct, Xano == database, replenisher runs
    // never overlapped, nothing failed, every mint job of the empty-pool fallback finished.
    assert_one_distinct_live_token_each(&world, &purchases).await;
    let runs = non_overlapping_replenisher_runs(&world).await;
    assert_eq!(
        count(&world, "select count(*) from job where state = 'dead'").await,
        0
    );
    let mint_jobs = count(
        &world,
        "select count(*) from job where kind = 'mint_for_purchase'",
    )
    .await;
    let mint_done = count(
        &world,
        "select count(*) from job where kind = 'mint_for_purchase' and state = 'done'",
    )
    .await;
    assert_eq!(mint_jobs, mint_done);
    assert_eq!(from_pool + awaiting, PURCHASES);
    let creates = world.calls_to(Endpoint::CreateToken);
    eprintln!(
        "served from the pool at payment: {from_pool}; empty-pool fallback: {awaiting} purchases, \
         {mint_jobs} mint jobs; replenisher runs: {} (minted {}; outcomes {:?}); \
         creates at Xano: {creates}; final reconcile: {report:?}",
        runs.len(),
        runs.iter().map(|r| r.minted).sum::<u32>(),
        runs.iter()
            .map(|r| (r.job_id, r.attempt, r.outcome.as_str()))
            .collect::<Vec<_>>(),
    );
}
