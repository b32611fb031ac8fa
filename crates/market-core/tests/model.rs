//! A property-based state-machine test of the whole promise: random histories of Stripe facts
//! (fresh, redelivered, racing, in any order), job runs, Xano faults (a refused credential, a
//! forbidden snippet), dying instances and reconciliations, checked against a model of the
//! purchase state machine after every step.
//!
//! After each step: every purchase's status is the model's; **I1** at most one live token
//! (assigned or revoking) per purchase; **I3** an assigned token's purchase is paid in the model and
//! fulfilled in the database, and the token is live at Xano; **I5** every token carries its tier's
//! `max_installs`, in the database and at Xano. After healing every fault, settling the jobs and
//! reconciling: **I2** every paid purchase holds exactly one live token and every other none; **I4**
//! Xano's live tokens are exactly the database's; a second reconciliation finds nothing; no job
//! gave up.
//!
//! One database and one simulator serve all cases; each case sells its own snippet (listing) and
//! tier and checks only those. 500 cases by default, `MARKET_PROPTEST_CASES=10000` for more. A
//! failure prints the minimal step sequence, one step per line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[path = "model/case.rs"]
mod case;
#[path = "model/checks.rs"]
mod checks;
mod common;
#[path = "model/spec.rs"]
mod spec;

use std::time::{Duration, Instant};

use common::World;
use market_core::jobs::runner::Runner;
use market_core::{JobsConfig, Market};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use secrecy::SecretString;

use case::{Case, fail};
use spec::{Step, TierShape, case};

/// Tiny backoffs and a short lease, so that a case takes milliseconds and a dead instance's jobs
/// come back quickly. (Xano answers in ≤ 3 ms here, far below the lease.)
fn jobs_config() -> JobsConfig {
    JobsConfig {
        workers: 2,
        poll_interval: Duration::from_millis(1),
        lease: Duration::from_millis(60),
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(8),
        reconcile_interval: Duration::from_secs(24 * 3600),
        probe_interval: Duration::from_millis(1),
        sweep_interval: Duration::from_secs(3600),
        keep_finished: Duration::from_secs(24 * 3600),
        // Fault-injecting tests retry far faster than production; the tests of dying jobs lower
        // these.
        missing_guard: 0.2,
        max_attempts: 1000,
        max_age: Duration::from_secs(3600),
        revive_after: Duration::from_secs(3600),
    }
}

/// What all cases share: the database, the simulator, this instance's runner.
struct Env {
    world: World,
    market: Market,
    runner: Runner,
}

async fn env() -> Env {
    let world = World::with_config(0, 0, jobs_config()).await;
    let xano = master_api::Client::builder(SecretString::from(world.sim.access_token()))
        .base_url(world.sim.base_url())
        .retry(master_api::RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_elapsed: Duration::from_millis(50),
        })
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let market = Market::new(
        world.pool().clone(),
        xano,
        world.market.envelope.clone(),
        jobs_config(),
    );
    let runner = Runner::new(market.clone());
    Env {
        world,
        market,
        runner,
    }
}

async fn run_case(env: &Env, shape: TierShape, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut case = Case::new(env, shape).await?;
    let mut result = Ok(());
    for (i, step) in steps.iter().enumerate() {
        let checked = async {
            case.step(step).await?;
            case.check_always().await
        };
        // Boxed: the step's future is large (every flow's state machine inlined).
        result = watchdog(env, Box::pin(checked))
            .await
            .map_err(|e| fail(format!("after step {i}, {step:?}: {e}")));
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = watchdog(env, case.check_healed())
            .await
            .map_err(|e| fail(format!("after healing: {e}")));
    }
    case.kill_instance().await?;
    result
}

/// A step takes milliseconds; one that takes 30 s is stuck. Says where.
async fn watchdog(
    env: &Env,
    step: impl Future<Output = Result<(), TestCaseError>>,
) -> Result<(), TestCaseError> {
    let Ok(result) = tokio::time::timeout(Duration::from_secs(30), step).await else {
        let sessions: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "select state, wait_event, query from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'",
        )
        .fetch_all(env.world.pool())
        .await
        .unwrap_or_default();
        let calls = env.world.sim.calls();
        let last: Vec<_> = calls
            .iter()
            .rev()
            .take(5)
            .map(|c| (&c.method, &c.path, c.status))
            .collect();
        return Err(fail(format!(
            "stuck for 30 s; database sessions: {sessions:?}; last Xano calls: {last:?}"
        )));
    };
    result
}

#[test]
fn random_histories_of_payments_faults_and_crashes_keep_every_invariant() {
    let cases = std::env::var("MARKET_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt.block_on(env());
    let regressions = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/model.proptest-regressions"
    );
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_time: 120_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    });

    let started = Instant::now();
    let result = runner.run(&case(), |(shape, steps)| {
        rt.block_on(run_case(&env, shape, &steps))
    });
    if let Err(TestError::Fail(reason, (shape, steps))) = &result {
        let steps: Vec<String> = steps.iter().map(|s| format!("    {s:?}")).collect();
        panic!(
            "{reason}\nminimal failing case: {shape:?}, steps:\n{}",
            steps.join("\n")
        );
    }
    result.unwrap();
    let actions: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as(
                "select action, count(*) from audit_event group by action order by action",
            )
            .fetch_all(env.world.pool()),
        )
        .unwrap();
    eprintln!(
        "model: {cases} cases in {:.1?}; audit log: {actions:?}",
        started.elapsed()
    );
    rt.block_on(async move { drop(env) });
}
