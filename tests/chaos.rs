//! Multi-instance chaos: three real `market serve` processes on one PostgreSQL database, the Xano
//! and Stripe simulators as separate processes, a workload driver that buys through the public
//! API and delivers Stripe's events itself (duplicated, concurrent, out of order, to random
//! instances), a seeded nemesis (`kill -9`, `SIGSTOP`, crash points, Xano faults, SMTP outages,
//! a webhook receiver down, failing or slow), buyers who rotate their tokens and upgrade their
//! tiers, a recorded history and a checker of I1–I5 (see `tests/chaos/checker.rs` and
//! `docs/RELIABILITY.md`), of buyers' email at a real SMTP server (`mail_check.rs`), of rotations
//! against Xano (`rotation_check.rs`), of upgrades' limits (`upgrade_check.rs`) and of outgoing
//! webhooks at a receiver verifying them with the official library (`webhook_check.rs`).
//!
//! - `MARKET_CHAOS_SEED=<u64>` replays a run's choices (the seed is printed at the start and on
//!   failure; process timing still differs between runs).
//! - `MARKET_CHAOS_SOAK_MINUTES=<n>` runs the workload and nemesis for `n` minutes instead of the
//!   CI length (about 100 s).
//! - `MARKET_CHAOS_KEEP_LOGS=1` keeps the processes' logs even when the run passes.
//!
//! A second test, `seller_isolation.rs`, runs the marketplace's sellers under chaos on the same
//! kind of cluster: the house and three sellers with Xano accounts of their own, one seller's token
//! revoked and another's Xano storming and slow while the first's buyers must be served from its
//! pool as fast as without faults (`sellers.rs`, `seller_buyers.rs`, `seller_faults.rs`; checks in
//! `seller_check.rs`, `seller_calls.rs`, `seller_invariants.rs`, `seller_jobs.rs`). The two tests take turns
//! (`serial.rs`): each loads the machine enough on its own.
// Crash points exist only in a build with the `failpoints` feature (`cargo test --all-features`,
// as CI runs); without them the run could never show every nemesis kind.
#![cfg(feature = "failpoints")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![allow(
    clippy::format_push_string,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    clippy::too_many_arguments,
    reason = "a test harness: figures for people, long linear set-up"
)]

mod support;

#[path = "chaos/checker.rs"]
mod checker;
#[path = "chaos/cluster.rs"]
mod cluster;
#[path = "chaos/damage.rs"]
mod damage;
#[path = "chaos/deliveries.rs"]
mod deliveries;
#[path = "chaos/driver.rs"]
mod driver;
#[path = "chaos/events.rs"]
mod events;
#[path = "chaos/evidence.rs"]
mod evidence;
#[path = "chaos/fleet_faults.rs"]
mod fleet_faults;
#[path = "chaos/history.rs"]
mod history;
#[path = "chaos/mail_check.rs"]
mod mail_check;
#[path = "chaos/mail_faults.rs"]
mod mail_faults;
#[path = "chaos/monitor.rs"]
mod monitor;
#[path = "chaos/nemesis.rs"]
mod nemesis;
#[path = "chaos/process.rs"]
mod process;
#[path = "chaos/requests.rs"]
mod requests;
#[path = "chaos/rotation_check.rs"]
mod rotation_check;
#[path = "chaos/rotations.rs"]
mod rotations;
#[path = "chaos/scenarios.rs"]
mod scenarios;
#[path = "chaos/seller_buyers.rs"]
mod seller_buyers;
#[path = "chaos/seller_calls.rs"]
mod seller_calls;
#[path = "chaos/seller_check.rs"]
mod seller_check;
#[path = "chaos/seller_faults.rs"]
mod seller_faults;
#[path = "chaos/seller_invariants.rs"]
mod seller_invariants;
#[path = "chaos/seller_isolation.rs"]
mod seller_isolation;
#[path = "chaos/seller_jobs.rs"]
mod seller_jobs;
#[path = "chaos/sellers.rs"]
mod sellers;
#[path = "chaos/serial.rs"]
mod serial;
#[path = "chaos/settle.rs"]
mod settle;
#[path = "chaos/story.rs"]
mod story;
#[path = "chaos/stripe_faults.rs"]
mod stripe_faults;
#[path = "chaos/tokens.rs"]
mod tokens;
#[path = "chaos/truth.rs"]
mod truth;
#[path = "chaos/upgrade_calls.rs"]
mod upgrade_calls;
#[path = "chaos/upgrade_check.rs"]
mod upgrade_check;
#[path = "chaos/upgrades.rs"]
mod upgrades;
#[path = "chaos/webhook_check.rs"]
mod webhook_check;
#[path = "chaos/webhook_faults.rs"]
mod webhook_faults;
#[path = "chaos/xano_faults.rs"]
mod xano_faults;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use uuid::Uuid;

use cluster::{Cluster, InstanceSettings, Secrets};
use driver::Driver;
use events::EventPump;
use history::History;
use monitor::JobMonitor;
use nemesis::Nemesis;
use settle::{reconcile, settle, xano_tokens};
use webhook_faults::Hooks;

const CANONICALS: [&str; 2] = ["chaos-auth_01", "chaos-billing_02"];

/// Small pools, so that they run dry under load and faults and the empty-pool path (mint jobs)
/// is exercised too.
const TIERS: &str = r#"
[[listing]]
canonical = "chaos-auth_01"
title = "Chaos auth"

[[listing.tier]]
slug = "solo"
name = "Solo"
price = 1900
currency = "usd"
max_installs = 5
pool_low_water = 2
pool_target = 4

[[listing.tier]]
slug = "agency"
name = "Agency"
price = 9900
currency = "usd"
max_installs = 50
pool_low_water = 1
pool_target = 2

[[listing]]
canonical = "chaos-billing_02"
title = "Chaos billing"

[[listing.tier]]
slug = "solo"
name = "Solo"
price = 2900
currency = "usd"
max_installs = 3
pool_low_water = 2
pool_target = 3
"#;

const LEASE_SECS: u64 = 5;
const XANO_TIMEOUT_SECS: u64 = 5;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database_keep_every_invariant_under_a_seeded_nemesis() {
    let _one_at_a_time = serial::one_cluster_at_a_time().await;
    let seed = env_u64("MARKET_CHAOS_SEED").unwrap_or_else(|| rand::rng().random());
    let soak_minutes = env_u64("MARKET_CHAOS_SOAK_MINUTES");
    let workload_for =
        soak_minutes.map_or(Duration::from_secs(100), |m| Duration::from_secs(m * 60));
    let started = Instant::now();
    println!(
        "chaos: seed {seed} (MARKET_CHAOS_SEED={seed} reproduces the choices); workload {workload_for:?}"
    );
    eprintln!("chaos: seed {seed}");

    let db = testkit::TestDb::empty().await;
    let history = Arc::new(History::new());
    let dir = std::env::temp_dir().join(format!("market-chaos-{seed}-{}", std::process::id()));
    let cluster = Arc::new(
        Cluster::start(
            dir.clone(),
            &db.url(),
            Secrets::generate(seed),
            TIERS,
            CANONICALS.map(str::to_owned).to_vec(),
            3,
            &InstanceSettings {
                lease_secs: LEASE_SECS,
                xano_timeout_secs: XANO_TIMEOUT_SECS,
                retry_cap_secs: 8,
            },
        )
        .await,
    );
    let pool = db.pool().clone();
    let tiers: Vec<Uuid> = sqlx::query_scalar("select tier_id from tier order by tier_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(tiers.len(), 3, "the catalog was seeded");
    let upgrade_paths = upgrades::paths(&pool).await;
    // The platform's webhook endpoint, at a receiver that verifies every delivery.
    let hooks = Arc::new(Hooks::start(&cluster).await);

    // The event pump.
    let pump = Arc::new(EventPump::new());
    let driver = Arc::new(Driver::new(
        Arc::clone(&cluster),
        Arc::clone(&history),
        Arc::clone(&pump),
        tiers,
        upgrade_paths,
        seed,
    ));
    let pump_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pump_task = {
        let (pump, cluster, stop) = (
            Arc::clone(&pump),
            Arc::clone(&cluster),
            Arc::clone(&pump_stop),
        );
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = pump.poll(&http, &cluster).await {
                    eprintln!("chaos: event pump: {e}");
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };

    // Claimable jobs must be claimed within a lease and a sweep (5 s), plus one Xano call's
    // timeout for the case that every worker is busy with a call that runs into it.
    let monitor = Arc::new(JobMonitor::new(
        pool.clone(),
        Arc::clone(&history),
        cluster.instances.len(),
        Duration::from_secs(LEASE_SECS + 5 + XANO_TIMEOUT_SECS),
    ));
    let monitor_task = tokio::spawn(Arc::clone(&monitor).run(Arc::clone(&pump_stop)));

    // The nemesis.
    let nemesis = Arc::new(Nemesis::new(
        Arc::clone(&cluster),
        Arc::clone(&history),
        seed,
        LEASE_SECS,
        XANO_TIMEOUT_SECS,
    ));
    let mut background = JoinSet::new();
    for index in 0..cluster.instances.len() {
        background.spawn(Arc::clone(&nemesis).supervise(index));
    }
    let process_nemesis = tokio::spawn(Arc::clone(&nemesis).run_processes());
    let xano_nemesis = tokio::spawn(Arc::clone(&nemesis).run_xano());
    let stripe_nemesis = tokio::spawn(Arc::clone(&nemesis).run_stripe());
    let fleet_nemesis = tokio::spawn(Arc::clone(&nemesis).run_fleet());
    let mail_nemesis = tokio::spawn(Arc::clone(&nemesis).run_mail());
    let webhook_nemesis = tokio::spawn(Arc::clone(&nemesis).run_webhooks(Arc::clone(&hooks)));

    // The workload: a new buyer every 100–450 ms until the time is up and every nemesis kind and
    // crash point has happened (at most 90 s longer: the snippet-away fault waits up to 130 s for a
    // job to die, see `fleet_faults.rs`).
    let mut purchases = JoinSet::new();
    let workload_started = Instant::now();
    let mut spawn_rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    let mut extended = false;
    while workload_started.elapsed() < workload_for
        || (!nemesis.missing().is_empty()
            && workload_started.elapsed() < workload_for + Duration::from_secs(90))
    {
        if !extended && workload_started.elapsed() >= workload_for {
            extended = true;
            println!(
                "chaos: running on until these have happened: {:?}",
                nemesis.missing()
            );
        }
        purchases.spawn(Arc::clone(&driver).run_purchase(n));
        n += 1;
        tokio::time::sleep(Duration::from_millis(spawn_rng.random_range(100..450))).await;
        while purchases.try_join_next().is_some() {}
    }
    let workload_ms = workload_started.elapsed();
    println!(
        "chaos: {n} purchases started in {workload_ms:?}; stopping the nemesis; still missing: {:?}",
        nemesis.missing()
    );

    // Heal: stop the nemesis (each action undoes itself), clear Xano's faults.
    nemesis.stop();
    process_nemesis.await.unwrap();
    xano_nemesis.await.unwrap();
    stripe_nemesis.await.unwrap();
    fleet_nemesis.await.unwrap();
    mail_nemesis.await.unwrap();
    webhook_nemesis.await.unwrap();
    nemesis.heal_xano().await;
    nemesis.heal_stripe().await;
    nemesis.heal_mail().await;
    nemesis.heal_webhooks(&hooks).await;
    history.record(None, None, "NEMESIS stopped; faults healed");
    let healed_at = Instant::now();

    // Every buyer's story finishes: all their events accepted at least once.
    while let Some(result) = purchases.join_next().await {
        result.unwrap();
    }
    println!(
        "chaos: every event accepted {:?} after healing",
        healed_at.elapsed()
    );

    // Settle, reconcile, settle again. The bound: after the faults heal, every paid purchase holds
    // its token (and every refunded one's is gone) within `settle_limit`, even those whose
    // webhooks Stripe never delivered (found by the backfill every 5 s).
    let settle_limit = Duration::from_secs(if soak_minutes.is_some() { 300 } else { 90 });
    let backfilled = settle::backfilled(&pool, &driver, settle_limit).await;
    let settled = settle(&pool, &cluster.mail, settle_limit).await;
    println!(
        "chaos: backfilled ({backfilled}) {:?} after healing",
        healed_at.elapsed()
    );
    let settled_in_bound = !settled.starts_with("NOT") && !backfilled.starts_with("NOT");
    println!(
        "chaos: settled ({settled}) {:?} after healing",
        healed_at.elapsed()
    );
    let reconciled = reconcile(&driver).await;
    history.record(None, None, format!("reconcile: {reconciled}"));
    let settled_again = settle(&pool, &cluster.mail, settle_limit).await;
    println!(
        "chaos: reconciled and settled ({settled_again}) {:?} after healing",
        healed_at.elapsed()
    );

    // Check.
    pump.poll(&reqwest::Client::new(), &cluster).await.unwrap();
    let xano_tokens = xano_tokens(&cluster).await;
    let tokens = tokens::read(&pool, &cluster.secrets.data_key).await;
    let exits = nemesis.unexpected_exits.lock().unwrap().clone();
    let mut report = checker::check(
        &pool,
        &tokens,
        &driver,
        &history,
        &xano_tokens,
        LEASE_SECS,
        &exits,
    )
    .await;
    nemesis.count_calls_met(None).await;
    let mut more = checker::Checker::default();
    let messages = cluster.mail.messages().await;
    let mail = mail_check::check(&mut more, &pool, &messages, &tokens).await;
    let late = nemesis.late_updates.lock().unwrap().clone();
    let rotated =
        rotation_check::check(&mut more, &pool, &driver, &xano_tokens, &tokens, &late).await;
    let upgraded =
        upgrade_check::check(&mut more, &pool, &driver, &xano_tokens, &tokens, &late).await;
    let hooked = webhook_check::check(&mut more, &pool, &hooks).await;
    report.violations.extend(more.violations);
    report.checks += more.checks + 1;
    if !settled_in_bound {
        report.violations.push(checker::Violation {
            purchase: None,
            what: format!(
                "not settled within {settle_limit:?} of healing: {backfilled}; {settled}"
            ),
        });
    }
    for what in monitor.stuck.lock().unwrap().iter() {
        report.checks += 1;
        report.violations.push(checker::Violation {
            purchase: None,
            what: what.clone(),
        });
    }
    report.checks += monitor.samples.load(std::sync::atomic::Ordering::Relaxed);

    let counters = history.counters();
    println!("chaos: ---- summary (seed {seed}) ----");
    println!(
        "chaos: duration {:?} (workload {workload_ms:?}), purchases {} and their {} upgrades (in db {}), paid and owed a token {}",
        started.elapsed(),
        n,
        upgraded.statuses.values().sum::<u64>(),
        report.purchases_in_db,
        report.owed
    );
    println!("chaos: purchase statuses {:?}", report.statuses);
    println!(
        "chaos: reconciliation's audit {:?}; lost create answers {}; never delivered: {} purchases, {} events dropped; drifted events applied {}",
        report.reconciled,
        counters
            .get("xano_lost_create_answers")
            .copied()
            .unwrap_or(0),
        counters
            .get("delivery:never_delivered")
            .copied()
            .unwrap_or(0),
        counters.get("deliveries_dropped").copied().unwrap_or(0),
        counters.get("drift:applied").copied().unwrap_or(0),
    );
    println!(
        "chaos: deliveries {}, success pages {}, stripe events {}, tokens live at Xano {}",
        counters.get("deliveries").copied().unwrap_or(0),
        counters.get("success_pages").copied().unwrap_or(0),
        pump.total.load(std::sync::atomic::Ordering::Relaxed),
        report.tokens_at_xano
    );
    println!("chaos: nemesis {:?}", nemesis.summary());
    mail.print();
    rotated.print(&counters);
    upgraded.print(&counters);
    hooked.print();
    println!(
        "chaos: deliveries {:?}, redeliveries {}",
        counters
            .iter()
            .filter(|(k, _)| k.starts_with("delivery:"))
            .collect::<Vec<_>>(),
        counters.get("redeliveries").copied().unwrap_or(0)
    );
    println!(
        "chaos: jobs: {} samples, longest wait of a claimable job {} ms (limit {:?}: {}); every worker up busy {} ms in all; the database stalled for everyone {} ms in all",
        monitor.samples.load(std::sync::atomic::Ordering::Relaxed),
        monitor
            .longest_wait_ms
            .load(std::sync::atomic::Ordering::Relaxed),
        monitor.limit,
        monitor.longest.lock().unwrap(),
        monitor
            .saturated_ms
            .load(std::sync::atomic::Ordering::Relaxed),
        monitor.stalls_ms.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "chaos: scenarios {:?}",
        counters
            .iter()
            .filter(|(k, _)| k.starts_with("scenario:"))
            .collect::<Vec<_>>()
    );
    println!("chaos: answers {:?}", story::answer_table(&history));
    println!(
        "chaos: transport errors (instance down, paused or crashed) {}; error answers to requests in flight when their instance was frozen {}; 503s while the database stalled {} (stalls, ms from the start: {:?}); invariant checks {}; violations {}",
        report.excused.transport_errors,
        report.excused.answered_after_freeze,
        report.excused.answered_in_stall,
        history.stalls(),
        report.checks,
        report.violations.len()
    );
    let missing = nemesis.missing();

    if !report.violations.is_empty() || !missing.is_empty() {
        let mut message = format!(
            "chaos run FAILED, seed {seed} (MARKET_CHAOS_SEED={seed}); logs in {}\n",
            dir.display()
        );
        if !missing.is_empty() {
            message.push_str(&format!("nemesis kinds that never happened: {missing:?}\n"));
        }
        for v in report.violations.iter().take(60) {
            message.push_str(&format!("VIOLATION {:?}: {}\n", v.purchase, v.what));
        }
        message.push_str(&format!(
            "the database's stalls (ms from the start): {:?}\nthe instances' failed requests, by cause:\n{}",
            history.stalls(),
            evidence::server_errors(&dir, 12)
        ));
        message
            .push_str("timeline of the nemesis and crashes (without the purchases' requests):\n");
        for e in history.timeline() {
            message.push_str(&history::format_entry(&e));
            message.push('\n');
        }
        for purchase in story::involved(&report.violations, &driver)
            .into_iter()
            .take(12)
        {
            message.push_str(&story::story(&pool, &driver, &history, purchase).await);
        }
        pump_stop.store(true, std::sync::atomic::Ordering::SeqCst);
        cluster.shutdown();
        panic!("{message}");
    }

    pump_stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = pump_task.await;
    let _ = monitor_task.await;
    cluster.shutdown();
    background.abort_all();
    if std::env::var_os("MARKET_CHAOS_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
