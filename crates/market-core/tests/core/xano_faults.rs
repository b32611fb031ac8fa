//! Xano misbehaving while purchases are paid: 429 storms, 5xx, creations that committed but whose
//! answer was lost, and a refused credential.
//!
//! Proves: after the faults heal, the jobs drain and a reconciliation runs, the simulator's live
//! tokens are exactly the database's live tokens, no token exists at Xano that the database does
//! not know, and every paid purchase holds exactly one live token. When Xano refuses the only
//! credential, the jobs wait in the queue (handed back, not parked, their attempts not counted; no
//! hot loop: only the periodic probe reaches Xano) and work resumes once it is restored.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{CANONICAL, World};
use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::payments::Effect;
use market_core::{PurchaseId, health, reconcile};
use sandbox::xano::{Endpoint, Fault, TokenState};

const PURCHASES: usize = 6;

/// Runs every job, waiting for those that back off into the near future, until no work is due
/// within five minutes (the standing reconciliation comes back only after an hour).
async fn drain_until_quiet(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let ran = world.drain().await;
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from job
             where state in ('queued', 'running') and due_at < now() + interval '5 minutes'",
        )
        .fetch_one(world.pool())
        .await
        .unwrap();
        if ran == 0 && pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "jobs never went quiet");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Empty pool (2..4), then `PURCHASES` paid purchases: the replenisher and one mint job per
/// purchase all need Xano. Returns the purchases with their Checkout Session ids.
async fn paid_purchases(world: &World) -> Vec<(PurchaseId, String)> {
    let mut purchases = Vec::new();
    for n in 0..PURCHASES {
        let (purchase, session) = world.checkout().await;
        let paid = world
            .deliver_paid(&format!("evt_{n}"), purchase, &session)
            .await;
        assert_eq!(paid.effect, Effect::AwaitingToken, "the pool starts empty");
        purchases.push((purchase, session));
    }
    purchases
}

/// Several instances of the service running their job loops until stopped.
struct Instances {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Instances {
    fn start(world: &World, count: usize) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = (0..count)
            .map(|_| {
                let runner = Runner::new(world.market.clone());
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let shutdown = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    runner.run(shutdown, Duration::from_secs(5)).await;
                })
            })
            .collect();
        Self { stop, tasks }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// Two instances work through the jobs while the faults last: until every counted fault rule is
/// used up (ratio rules stay until cleared) and at least `min` has passed. Half-way through the
/// minimum, the purchases in `refund` are refunded, so deletions meet the faults too.
async fn storm(world: &World, min: Duration, refund: &[String]) {
    let started = Instant::now();
    let counted_faults = || {
        let faults = world.sim.faults();
        faults
            .iter()
            .filter(|f| {
                !matches!(
                    f,
                    Fault::RateLimitedRatio { .. } | Fault::ServerErrorRatio { .. }
                )
            })
            .count()
    };
    let instances = Instances::start(world, 2);
    tokio::time::sleep(min / 2).await;
    for (n, session) in refund.iter().enumerate() {
        world
            .deliver_refund(&format!("evt_refund_{n}"), session)
            .await;
    }
    while counted_faults() > 0 || started.elapsed() < min {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "faults never used up: {:?}",
            world.sim.faults()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    instances.stop().await;
}

fn sessions(purchases: &[(PurchaseId, String)]) -> Vec<String> {
    purchases.iter().map(|(_, s)| s.clone()).collect()
}

/// Heals Xano, lets the work finish, reconciles, and checks the promise.
/// The first `refunded` of `purchases` were refunded; the rest must each hold one live token.
async fn heal_and_check(world: &World, purchases: &[(PurchaseId, String)], refunded: usize) {
    world.sim.clear_faults();
    drain_until_quiet(world).await;
    reconcile::all(&world.market, &Actor::Admin("test".into()))
        .await
        .unwrap();
    drain_until_quiet(world).await;

    let stuck: Vec<(String, String)> = sqlx::query_as(
        "select kind, state::text from job where state not in ('done', 'queued') or
                (state = 'queued' and kind <> 'reconcile_listing')",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert!(stuck.is_empty(), "jobs not done: {stuck:?}");

    let sim = world.sim_tokens();
    assert_eq!(
        world.db_live_tokens().await,
        sim,
        "Xano's live tokens = ours"
    );
    let known: BTreeSet<String> = world.tokens_where("true").await.into_iter().collect();
    let unknown: Vec<&String> = sim.iter().filter(|t| !known.contains(*t)).collect();
    assert!(unknown.is_empty(), "{} tokens unknown to us", unknown.len());
    assert!(
        world
            .sim
            .tokens(CANONICAL)
            .iter()
            .all(|t| t.max_installs == 5),
        "every token carries its tier's max_installs"
    );

    for (purchase, _) in &purchases[..refunded] {
        assert_eq!(world.status_of(*purchase).await, "refunded");
        assert!(world.live_tokens_of(*purchase).await.is_empty());
        let held: Vec<String> =
            sqlx::query_scalar("select state::text from install_token where purchase_id = $1")
                .bind(purchase)
                .fetch_all(world.pool())
                .await
                .unwrap();
        assert!(held.iter().all(|s| s == "revoked"), "{held:?}");
    }
    let mut held = BTreeSet::new();
    for &(purchase, _) in &purchases[refunded..] {
        assert_eq!(world.status_of(purchase).await, "fulfilled");
        let tokens = world.live_tokens_of(purchase).await;
        assert_eq!(tokens.len(), 1, "exactly one live token per paid purchase");
        assert!(sim.contains(&tokens[0]), "and it is live at Xano");
        assert!(held.insert(tokens[0].clone()), "held by one purchase only");
    }
    let owed: i64 =
        sqlx::query_scalar("select count(*) from purchase where status in ('paid', 'fulfilled')")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(owed, i64::try_from(purchases.len() - refunded).unwrap());

    let again = reconcile::all(&world.market, &Actor::System).await.unwrap();
    assert!(again.iter().all(|r| !r.changed()), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_ends_with_one_token_per_paid_purchase_and_xano_equal_to_the_database() {
    // Arrange
    let world = World::new(2, 4).await;
    let purchases = paid_purchases(&world).await;
    world.sim.inject(Fault::RateLimited {
        count: 10,
        retry_after: None,
        only: None,
    });
    world.sim.inject(Fault::RateLimited {
        count: 2,
        retry_after: Some(1),
        only: Some(Endpoint::CreateToken),
    });
    world.sim.inject(Fault::RateLimitedRatio {
        ratio: 0.5,
        retry_after: None,
        only: None,
    });

    // Act
    storm(
        &world,
        Duration::from_millis(1500),
        &sessions(&purchases[..2]),
    )
    .await;
    let limited = world.sim.calls().iter().filter(|c| c.status == 429).count();

    // Assert
    assert!(limited >= 12, "the storm hit ({limited} answers were 429)");
    heal_and_check(&world, &purchases, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_end_with_one_token_per_paid_purchase_and_xano_equal_to_the_database() {
    // Arrange
    let world = World::new(2, 4).await;
    let purchases = paid_purchases(&world).await;
    world.sim.inject(Fault::ServerError {
        count: 8,
        status: 500,
        only: None,
    });
    world.sim.inject(Fault::ServerErrorRatio {
        ratio: 0.4,
        status: 503,
        only: Some(Endpoint::CreateToken),
    });

    // Act
    storm(
        &world,
        Duration::from_millis(1500),
        &sessions(&purchases[..2]),
    )
    .await;
    let failed = world.sim.calls().iter().filter(|c| c.status >= 500).count();

    // Assert
    assert!(failed >= 8, "the errors hit ({failed} answers were 5xx)");
    heal_and_check(&world, &purchases, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_whose_answer_is_lost_are_adopted_and_never_doubled() {
    // Arrange: six creations commit at Xano but the answer is a 500, stalls past the client's
    // timeout (2 s), or is cut off.
    let world = World::new(2, 4).await;
    let purchases = paid_purchases(&world).await;
    world.sim.inject(Fault::CommitThenFail {
        count: 3,
        stall: None,
    });
    world.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_millis(2500)),
    });
    world.sim.inject(Fault::CommitThenDrop { count: 2 });

    // Act
    storm(&world, Duration::ZERO, &sessions(&purchases[..1])).await;

    // Assert: every fault fired (a commit-then-* rule is used up only by a creation that really
    // happened at Xano), and nothing leaked.
    assert!(world.sim.faults().is_empty(), "{:?}", world.sim.faults());
    let lost = world
        .sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::CreateToken) && c.status != 200)
        .count();
    assert!(
        lost >= 5,
        "{lost} creations answered with an error or not at all"
    );
    heal_and_check(&world, &purchases, 1).await;
    let adopted: i64 =
        sqlx::query_scalar("select count(*) from install_token where origin = 'adopted'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert!(
        adopted >= 1,
        "lost answers were adopted, not re-minted blindly"
    );
}

/// The credential scenario: refused → handed back and quiet; restored → claimed and fulfilled.
async fn refused_credential_leaves_jobs_queued_until_restored(
    refusal: TokenState,
    health_state: &str,
    heal_with_runners: bool,
) {
    // Arrange
    let world = World::new(1, 2).await;
    world.sim.set_access_token_state(refusal);
    let (purchase, session) = world.checkout().await;
    let paid = world.deliver_paid("evt_paid", purchase, &session).await;
    assert_eq!(paid.effect, Effect::AwaitingToken);

    // Act: the jobs meet the refusal.
    world.drain().await;

    // Assert: queued for whichever instance's credential works, not failed nor parked, and the
    // credential's refusal visible to operators.
    let jobs = "select kind, state::text, attempt from job
                where kind <> 'reconcile_listing' order by job_id";
    let states: Vec<(String, String, i32)> =
        sqlx::query_as(jobs).fetch_all(world.pool()).await.unwrap();
    assert_eq!(states.len(), 2, "a replenisher and a mint: {states:?}");
    assert!(
        states.iter().all(|(_, s, a)| s == "queued" && *a == 0),
        "{states:?}"
    );
    assert_eq!(
        health::own(&world.market).await.unwrap().state,
        health_state
    );

    // Act: two instances run for a second while the credential is still refused.
    world.sim.clear_calls();
    let instances = Instances::start(&world, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Assert: only the credential probe (every 100 ms, per instance at most) reached Xano, and no
    // job was claimed again.
    let calls = world.sim.calls();
    assert!(
        calls.iter().all(|c| c.endpoint == Some(Endpoint::Me)),
        "only probes"
    );
    assert!(calls.len() <= 30, "{} calls in one second", calls.len());
    let still: Vec<(String, String, i32)> =
        sqlx::query_as(jobs).fetch_all(world.pool()).await.unwrap();
    assert_eq!(still, states, "queued jobs stay queued and unclaimed");

    // Act: the credential works again; the instances' probe notices, or an explicit one does.
    if heal_with_runners {
        world.sim.set_access_token_state(TokenState::Valid);
        let deadline = Instant::now() + Duration::from_secs(20);
        while world.status_of(purchase).await != "fulfilled" {
            assert!(Instant::now() < deadline, "the runners never resumed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        instances.stop().await;
    } else {
        instances.stop().await;
        world.sim.set_access_token_state(TokenState::Valid);
        tokio::time::sleep(Duration::from_millis(150)).await;
        health::probe_if_due(&world.market).await.unwrap();
        assert!(
            !health::refused(&world.market).await.unwrap(),
            "the successful probe healed the credential"
        );
    }
    drain_until_quiet(&world).await;

    // Assert
    assert!(health::own(&world.market).await.unwrap().is_healthy());
    let left: Vec<(String, String)> = sqlx::query_as(
        "select kind, state::text from job where state not in ('done', 'queued') or
                (state = 'queued' and kind <> 'reconcile_listing')",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(world.status_of(purchase).await, "fulfilled");
    assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
    assert_eq!(world.db_live_tokens().await, world.sim_tokens());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_leaves_jobs_queued_and_the_runners_serve_them_once_restored() {
    refused_credential_leaves_jobs_queued_until_restored(TokenState::Expired, "unauthorized", true)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_access_token_leaves_jobs_queued_and_a_probe_heals_it_once_restored() {
    refused_credential_leaves_jobs_queued_until_restored(TokenState::Forbidden, "forbidden", false)
        .await;
}
