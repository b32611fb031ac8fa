//! Jobs have an end, and owed work always has a job: a job that cannot succeed dies once, visibly
//! (audited, listed, requeueable), instead of looping; and the sweep gives every paid purchase
//! without a token a mint job and every token to delete a delete job, whatever happened to the
//! jobs before.

use std::time::Duration;

use market_core::audit::Actor;
use market_core::jobs::runner::sweep;
use market_core::payments::Effect;
use market_core::{Conflict, Error, JobsConfig, queue};
use sandbox::xano::Fault;

use crate::common::{CANONICAL, World, test_jobs_config};

fn config(max_attempts: i32, revive_after: Duration) -> JobsConfig {
    JobsConfig {
        max_attempts,
        revive_after,
        ..test_jobs_config()
    }
}

async fn count(world: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

/// Runs due jobs and sweeps until `done` holds (retries wait out their backoff), at most 10 s.
async fn until(world: &World, what: &str, done: impl AsyncFn(&World) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(world).await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        world.drain().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Found reading the code (self-healing issue, finding 2): a refill whose snippet was deleted at
/// Xano failed, and the sweep queued a new one every 5 s, forever (~17 000 failed rows a day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_whose_snippet_is_gone_dies_once_and_the_sweep_leaves_it_dead() {
    // Arrange: the pool below its low-water mark, and the snippet deleted at Xano.
    let world = World::with_config(2, 3, config(1000, Duration::from_secs(3600))).await;
    assert!(world.sim.remove_snippet(CANONICAL));

    // Act: the first refill runs, then ten sweeps, each followed by whatever is due.
    world.drain().await;
    for _ in 0..10 {
        sweep(&world.market).await.unwrap();
        world.drain().await;
    }

    // Assert: one refill job, dead with Xano's answer, audited once.
    let refills = count(
        &world,
        "select count(*) from job where kind = 'replenish_pool'",
    )
    .await;
    let dead: (String, Option<String>) =
        sqlx::query_as("select state::text, last_error from job where kind = 'replenish_pool'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(refills, 1);
    assert_eq!(dead.0, "dead");
    assert!(dead.1.is_some_and(|e| !e.is_empty()));
    assert_eq!(
        count(&world, "select count(*) from audit_event where action = 'job.dead' and detail->>'kind' = 'replenish_pool'").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_max_attempts_times_dies_with_its_last_error_and_the_sweep_revives_its_work_later()
 {
    // Arrange: an empty pool, a paid purchase (so a mint job), and Xano failing every call.
    let world = World::with_config(0, 0, config(3, Duration::from_millis(300))).await;
    world.drain().await;
    world.sim.inject(Fault::ServerErrorRatio {
        ratio: 1.0,
        status: 503,
        only: None,
    });
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert!(matches!(paid.effect, Effect::AwaitingToken), "{paid:?}");

    // Act: retries until the job dies; then the sweep before and after `revive_after`.
    let mint_state =
        "select state::text from job where kind = 'mint_for_purchase' order by job_id desc limit 1";
    until(&world, "the mint job dies", async |w| {
        sqlx::query_scalar::<_, String>(mint_state)
            .fetch_one(w.pool())
            .await
            .unwrap()
            == "dead"
    })
    .await;
    let (attempts, error): (i32, String) =
        sqlx::query_as("select attempt, last_error from job where kind = 'mint_for_purchase'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    sweep(&world.market).await.unwrap();
    let right_after = count(
        &world,
        "select count(*) from job where kind = 'mint_for_purchase'",
    )
    .await;
    world.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(400)).await;
    sweep(&world.market).await.unwrap();
    world.drain().await;

    // Assert: dead after 3 attempts with Xano's error, not revived at once, revived later, and the
    // revived job served the buyer.
    assert_eq!(attempts, 3);
    assert!(error.starts_with("gave up after 3 attempts: "), "{error}");
    assert_eq!(right_after, 1, "the sweep revived the work at once");
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
    assert_eq!(
        count(
            &world,
            "select count(*) from audit_event where action = 'job.dead'"
        )
        .await,
        1
    );
}

/// Found reading the code (finding 2): a failed `mint_for_purchase` left the purchase `paid` with no
/// token and no job, and nothing ever looked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_purchase_with_no_token_and_no_job_gets_a_mint_job_from_the_sweep() {
    // Arrange: an empty pool, a paid purchase, and its mint job gone.
    let world = World::with_config(0, 0, test_jobs_config()).await;
    world.drain().await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    sqlx::query("delete from job where kind = 'mint_for_purchase'")
        .execute(world.pool())
        .await
        .unwrap();

    // Act
    sweep(&world.market).await.unwrap();
    world.drain().await;

    // Assert
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
}

/// Found reading the code (finding 2): a failed `delete_token` left a refunded buyer's token live at
/// Xano for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoking_token_with_no_job_is_deleted_at_xano_after_the_sweep() {
    // Arrange: a sale, its refund, and the delete job gone before it ran.
    let world = World::new(1, 1).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let token = world.live_tokens_of(purchase).await.remove(0);
    world.deliver_refund("evt_refund", &session).await;
    sqlx::query("delete from job where kind = 'delete_token'")
        .execute(world.pool())
        .await
        .unwrap();

    // Act
    sweep(&world.market).await.unwrap();
    world.drain().await;

    // Assert: gone at Xano.
    assert!(!world.sim_tokens().contains(&token));
    assert_eq!(
        count(
            &world,
            "select count(*) from install_token where state = 'revoked'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_requeues_a_dead_job_once_and_only_a_dead_one() {
    // Arrange: a dead refill (its snippet gone), then the snippet back.
    let world = World::with_config(2, 3, test_jobs_config()).await;
    world.sim.remove_snippet(CANONICAL);
    world.drain().await;
    let job: i64 = sqlx::query_scalar("select job_id from job where kind = 'replenish_pool'")
        .fetch_one(world.pool())
        .await
        .unwrap();
    world.sim.add_snippet(CANONICAL, "A snippet");
    let admin = Actor::Admin("ops".into());

    // Act
    let first = queue::requeue(world.pool(), job, &admin).await;
    let again = queue::requeue(world.pool(), job, &admin).await;
    let unknown = queue::requeue(world.pool(), 999_999, &admin).await;
    world.drain().await;

    // Assert: requeued once; the pool refilled; the others refused with their reason.
    assert!(first.is_ok(), "{first:?}");
    assert!(
        matches!(again, Err(Error::Conflict(Conflict::JobNotDead))),
        "{again:?}"
    );
    assert!(
        matches!(unknown, Err(Error::NotFound("job"))),
        "{unknown:?}"
    );
    assert_eq!(world.sim_tokens().len(), 3);
    assert_eq!(
        count(
            &world,
            "select count(*) from audit_event where action = 'job.requeued' and actor = 'admin:ops'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_whose_work_is_queued_again_cannot_be_requeued_a_second_time() {
    // Arrange: a dead refill, and the sweep's revival of the same work.
    let world = World::with_config(2, 3, config(1000, Duration::from_millis(1))).await;
    world.sim.remove_snippet(CANONICAL);
    world.drain().await;
    let dead: i64 = sqlx::query_scalar("select job_id from job where kind = 'replenish_pool'")
        .fetch_one(world.pool())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    sweep(&world.market).await.unwrap();

    // Act
    let requeued = queue::requeue(world.pool(), dead, &Actor::Admin("ops".into())).await;

    // Assert
    assert!(
        matches!(requeued, Err(Error::Conflict(Conflict::JobAlreadyLive))),
        "{requeued:?}"
    );
}

/// Found by the chaos suite: two refills of one tier died while the snippet was away; the operator
/// requeued one (the other's requeue answered "already live"), it succeeded, and the second dead
/// row stayed dead for ever, alerting about work already done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_does_the_work_of_dead_ones_settles_them() {
    // Arrange: dead refills of the one tier (the snippet away at Xano meanwhile), two at least.
    let world = World::with_config(2, 3, config(1000, Duration::from_secs(3600))).await;
    world.sim.set_snippet_hidden(CANONICAL, true);
    world.drain().await;
    let first: i64 = sqlx::query_scalar("select job_id from job where kind = 'replenish_pool'")
        .fetch_one(world.pool())
        .await
        .unwrap();
    sqlx::query("insert into job (kind, subject, state, attempt, last_error, finished_at)
                 select kind, subject, 'dead', 1, 'Xano: not found (404)', now() from job where job_id = $1")
        .bind(first)
        .execute(world.pool())
        .await
        .unwrap();
    let dead_refills = "select count(*) from job where state = 'dead' and kind = 'replenish_pool'";
    assert_eq!(count(&world, dead_refills).await, 2);

    // Act: the snippet is back, one of them is requeued and succeeds.
    world.sim.set_snippet_hidden(CANONICAL, false);
    queue::requeue(world.pool(), first, &Actor::Admin("ops".into()))
        .await
        .unwrap();
    world.drain().await;

    // Assert: no dead job left; the pool filled; the settled one says by whom.
    assert_eq!(count(&world, dead_refills).await, 0);
    assert_eq!(
        count(
            &world,
            "select count(*) from install_token where state = 'available'"
        )
        .await,
        3
    );
    let note: String = sqlx::query_scalar(
        "select last_error from job where job_id <> $1 and kind = 'replenish_pool' limit 1",
    )
    .bind(first)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert!(note.contains(&format!("done by job {first}")), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_states_operators_count_are_exactly_the_schemas() {
    let world = World::new(0, 0).await;
    let states: Vec<String> =
        sqlx::query_scalar("select unnest(enum_range(null::job_state))::text")
            .fetch_all(world.pool())
            .await
            .unwrap();
    assert_eq!(states, market_core::jobs::overview::STATES);
}
