//! `market-bench`: purchases per second and catalog reads of a real `market` process on real
//! PostgreSQL, compared in the same run with this machine's own limits.
//!
//! The tool runs the Xano and Stripe simulators in its own process, creates a fresh database
//! `market_bench_<unix>` (dropped at the end), and starts the release `market` binary next to its
//! own executable as a child configured against the simulators with secrets it knows — so it can
//! sign Stripe deliveries itself. Then, in order:
//!
//! 1. start-up: process start → `/readyz` 200, migrations already applied (several runs, median);
//! 2. limit (b): `GET /healthz` (the HTTP stack's ceiling); catalog: `GET /v1/listings`;
//! 3. fulfilment: pending purchases made through `POST /v1/checkout` and paid at the Stripe
//!    simulator (which delivers nothing), then their signed `checkout.session.completed` events
//!    posted at the set concurrency; each must answer `fulfilled`, and the database is checked;
//! 4. the same while Xano answers in 2 s and 429s a third of calls, with replenishers busy on it;
//! 5. limit (a): the SQL of one fulfilment replayed by pgbench at the same concurrency.
//!
//! `--smoke` does all of it with a tiny load in a few seconds (CI runs it so the tool cannot rot).

mod http;
mod load;
mod pgbench;
mod report;
mod server;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sandbox::stripe::{StripeSim, StripeSimConfig, signature_header};
use sandbox::xano::{Fault, XanoSim, XanoSimConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::load::Work;
use crate::report::{Ratio, Report, Row, Target};
use crate::server::{Server, ServerConfig};

/// Benchmarks `market` (fulfilment, slow Xano, catalog) against pgbench and `/healthz` on this machine.
#[derive(Debug, Parser)]
#[command(name = "market-bench")]
struct Args {
    /// A few seconds, tiny load, every scenario (for CI).
    #[arg(long)]
    smoke: bool,
    /// Measured seconds per scenario.
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds before each measured window.
    #[arg(long)]
    warmup: Option<f64>,
    /// Connections (and pgbench clients) per scenario.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Pending purchases prepared for each fulfilment scenario (the scenario ends early when they
    /// run out).
    #[arg(long)]
    purchases: Option<u64>,
    /// Transactions prepared for pgbench.
    #[arg(long)]
    pgbench_purchases: Option<u64>,
    /// Start-up runs.
    #[arg(long)]
    startup_runs: Option<usize>,
    /// PostgreSQL server (the database name is ignored; a fresh one is created).
    #[arg(
        long,
        env = "BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
    /// The `market` binary; default: `market` next to this executable.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where the JSON report goes; default `<target>/bench/report.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `RUST_LOG` of the server.
    #[arg(long, default_value = "warn")]
    server_rust_log: String,
    /// Extra server environment, `NAME=VALUE` (repeat), e.g. `MARKET_DB_MAX_CONNECTIONS=32`.
    #[arg(long = "server-env", value_parser = parse_kv)]
    server_env: Vec<(String, String)>,
    /// Keep the database afterwards (for EXPLAIN ANALYZE and the like).
    #[arg(long)]
    keep_db: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))
}

/// Settings after `--smoke` and the defaults are applied.
#[derive(Debug, Clone)]
struct Plan {
    smoke: bool,
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    purchases: u64,
    pgbench_purchases: u64,
    startup_runs: usize,
}

impl Plan {
    fn of(args: &Args) -> Self {
        let secs = |v: Option<f64>, d: f64| Duration::from_secs_f64(v.unwrap_or(d).max(0.0));
        if args.smoke {
            Self {
                smoke: true,
                duration: secs(args.duration, 1.0),
                warmup: secs(args.warmup, 0.2),
                concurrency: args.concurrency.unwrap_or(4),
                purchases: args.purchases.unwrap_or(100),
                pgbench_purchases: args.pgbench_purchases.unwrap_or(20_000),
                startup_runs: args.startup_runs.unwrap_or(2),
            }
        } else {
            Self {
                smoke: false,
                duration: secs(args.duration, 10.0),
                warmup: secs(args.warmup, 1.0),
                concurrency: args.concurrency.unwrap_or(64),
                purchases: args.purchases.unwrap_or(12_000),
                pgbench_purchases: args.pgbench_purchases.unwrap_or(80_000),
                startup_runs: args.startup_runs.unwrap_or(5),
            }
        }
    }
}

/// Pool settings of the fulfilment tiers: sales never bring a pool below its low-water mark, so no
/// replenisher runs (and calls Xano) during scenario 1.
const LOW_WATER: i32 = 50;
const POOL_CAP: i64 = 1000;

const STOREFRONT_LISTINGS: usize = 8;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread drives the load and the simulators' accept loops; the machine's other core(s) go
    // to the server and PostgreSQL. (The simulators' handlers run on actix threads of their own.)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let begun = Instant::now();
    let plan = Plan::of(&args);
    let binary = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable directory")?
            .join("market"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it first (`cargo build --release -p market -p market-bench`)",
            binary.display()
        );
    }
    let target_dir = binary
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let work_dir = target_dir.join("bench");
    std::fs::create_dir_all(&work_dir)?;
    let out = args.out.clone().unwrap_or_else(|| {
        work_dir.join(if plan.smoke {
            "smoke.json"
        } else {
            "report.json"
        })
    });
    say(
        begun,
        &format!(
            "{} mode, {} connections, {:?} per scenario (+{:?} warm-up); server {}",
            if plan.smoke { "smoke" } else { "full" },
            plan.concurrency,
            plan.duration,
            plan.warmup,
            binary.display()
        ),
    );

    // Simulators, in this process, with secrets we know.
    let xano_token = format!("xano_bench_{}", Uuid::new_v4().simple());
    let xano = XanoSim::start(XanoSimConfig {
        access_token: Some(xano_token.clone()),
        ..XanoSimConfig::default()
    })
    .await?;
    let webhook_secret = format!("whsec_bench_{}", Uuid::new_v4().simple());
    let stripe = StripeSim::start(StripeSimConfig {
        // No endpoint: events are recorded, and this tool delivers them itself.
        webhook_url: None,
        webhook_secrets: vec![webhook_secret.clone()],
        ..StripeSimConfig::default()
    })
    .await?;

    // A fresh database.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let db_name = format!("market_bench_{unix}");
    let mut server_url: url::Url = args.pg.parse().context("--pg")?;
    server_url.set_path("/postgres");
    let admin_db = PgPoolOptions::new()
        .max_connections(2)
        .connect(server_url.as_str())
        .await
        .with_context(|| format!("connecting to {server_url}"))?;
    server_url.set_path(&format!("/{db_name}"));
    let database_url = server_url.to_string();

    let log_file = work_dir.join("market.log");
    let _ = std::fs::remove_file(&log_file);
    let admin_token = format!("adm_bench_{}", Uuid::new_v4().simple());
    let config = ServerConfig {
        binary: binary.clone(),
        database_url: database_url.clone(),
        xano_base_url: xano.base_url().to_string(),
        xano_token,
        stripe_key: stripe.api_key(),
        stripe_base_url: stripe.base_url().to_string(),
        webhook_secret: webhook_secret.clone(),
        admin_token: admin_token.clone(),
        receipt_secret: format!("receipt_bench_{}", Uuid::new_v4().simple()),
        rust_log: args.server_rust_log.clone(),
        log_file: log_file.clone(),
        extra_env: args.server_env.clone(),
    };

    let result = run_all(
        &plan,
        &config,
        &xano,
        &stripe,
        &webhook_secret,
        &admin_token,
        &database_url,
        &db_name,
        &work_dir,
        begun,
    )
    .await;

    if args.keep_db {
        say(begun, &format!("database {db_name} kept"));
    } else {
        sqlx::query(&format!("drop database if exists {db_name} with (force)"))
            .execute(&admin_db)
            .await?;
    }
    stripe.stop().await;
    xano.stop().await;
    let mut report = result?;
    report.notes.push(format!(
        "whole run {:.0} s; server log {}",
        begun.elapsed().as_secs_f64(),
        log_file.display()
    ));
    report::print(&report);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON report: {}", out.display());
    Ok(())
}

fn say(begun: Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", begun.elapsed().as_secs_f64());
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn run_all(
    plan: &Plan,
    config: &ServerConfig,
    xano: &XanoSim,
    stripe: &StripeSim,
    webhook_secret: &str,
    admin_token: &str,
    database_url: &str,
    db_name: &str,
    work_dir: &Path,
    begun: Instant,
) -> anyhow::Result<Report> {
    let c = plan.concurrency;
    let mut rows = Vec::new();
    let mut verification = Vec::new();
    let mut notes = Vec::new();

    // 1. Start-up, with migrations already applied.
    config.migrate().await?;
    let mut startup = Vec::new();
    for _ in 0..plan.startup_runs {
        let mut s = config.spawn()?;
        let ready = s.wait_ready(Duration::from_secs(30)).await?;
        startup.push(ready.as_secs_f64() * 1000.0);
        s.stop(Duration::from_secs(10)).await?;
    }
    say(begun, &format!("start-up runs (ms): {startup:.0?}"));

    let db = PgPoolOptions::new()
        .max_connections(4)
        .connect(database_url)
        .await?;
    let mut server = config.spawn()?;
    server.wait_ready(Duration::from_secs(30)).await?;
    let addr = server.addr;
    let admin = Admin {
        addr,
        auth: format!("Bearer {admin_token}"),
    };

    // 2. A storefront catalog; the HTTP ceiling and catalog reads.
    let mut storefront = Vec::new();
    for l in 0..STOREFRONT_LISTINGS {
        let canonical = format!("store-{l:02}");
        xano.add_snippet(&canonical, &canonical);
        admin.listing(&canonical, &format!("Snippet {l}")).await?;
        for (slug, price, installs) in [("solo", 1900, 5), ("team", 4900, 20), ("agency", 9900, 50)]
        {
            admin
                .tier(&canonical, slug, price + l as i64 * 100, installs, 3, 8)
                .await?;
            storefront.push(canonical.clone());
        }
    }
    wait_pools_full(&db, Duration::from_secs(120), begun).await?;
    let catalog_bytes = http::once(addr, &http::request("GET", "/v1/listings", &[], b""))
        .await?
        .body
        .len();

    let row = fixed_request(&server, plan, "limit b: GET /healthz", "/healthz").await;
    rows.push(row);
    let row = fixed_request(&server, plan, "catalog: GET /v1/listings", "/v1/listings").await;
    rows.push(Row {
        note: format!(
            "{STOREFRONT_LISTINGS} listings, {} tiers, {catalog_bytes} bytes",
            storefront.len()
        ),
        ..row
    });
    say(begun, "healthz and catalog done");

    // 3./4. Fulfilment tiers: enough tiers of at most POOL_CAP tokens each.
    let per_tier_max = (POOL_CAP - i64::from(LOW_WATER) - 50) as u64;
    let tiers_needed = plan.purchases.div_ceil(per_tier_max).max(2);
    let per_tier = plan.purchases.div_ceil(tiers_needed);
    let target = i32::try_from(per_tier + u64::try_from(LOW_WATER)? as u64 + 20)?.min(1000);
    let mut tier_sets: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for (canonical, low, tgt) in [
        ("bench-fulfil", LOW_WATER, target),
        ("bench-slow", LOW_WATER, target),
        // pgbench's tiers: a small minted pool, then tokens added with SQL.
        ("bench-pgbench", LOW_WATER, LOW_WATER),
    ] {
        xano.add_snippet(canonical, canonical);
        admin.listing(canonical, canonical).await?;
        for t in 0..tiers_needed {
            admin
                .tier(
                    canonical,
                    &format!("t{t:02}"),
                    1000 + t as i64,
                    10,
                    low,
                    tgt,
                )
                .await?;
        }
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "select t.tier_id from tier t join listing l using (listing_id)
             where l.canonical = $1 and t.active order by t.slug",
        )
        .bind(canonical)
        .fetch_all(&db)
        .await?;
        tier_sets.insert(canonical, ids);
    }
    let fulfil_tiers = tier_sets.remove("bench-fulfil").unwrap_or_default();
    let slow_tiers = tier_sets.remove("bench-slow").unwrap_or_default();
    let pgbench_tiers = tier_sets.remove("bench-pgbench").unwrap_or_default();
    say(
        begun,
        &format!(
            "{tiers_needed} tiers per fulfilment scenario, pool target {target}; preparing {} purchases each while the pools fill",
            plan.purchases
        ),
    );

    let prep_started = Instant::now();
    let fulfil_work = prepare_purchases(addr, &fulfil_tiers, plan.purchases, c.max(16)).await?;
    let slow_work = prepare_purchases(addr, &slow_tiers, plan.purchases, c.max(16)).await?;
    let prep_secs = prep_started.elapsed().as_secs_f64();
    say(
        begun,
        &format!(
            "{} checkouts in {prep_secs:.1} s ({:.0}/s)",
            fulfil_work.len() + slow_work.len(),
            (fulfil_work.len() + slow_work.len()) as f64 / prep_secs
        ),
    );
    let payloads = pay_all(stripe, fulfil_work.iter().chain(&slow_work))?;
    let fill_started = Instant::now();
    wait_pools_full(&db, Duration::from_secs(600), begun).await?;
    wait_reconciled(&db, Duration::from_secs(60)).await?;
    say(
        begun,
        &format!(
            "pools full (waited {:.1} s after checkouts)",
            fill_started.elapsed().as_secs_f64()
        ),
    );

    // 3. Fulfilment.
    let (row, check) = fulfilment(
        &server,
        &db,
        plan,
        "fulfilment: webhook",
        &fulfil_work,
        &payloads,
        webhook_secret,
    )
    .await?;
    let p99_fulfil = row.p99_ms;
    rows.push(row);
    verification.push(check);
    say(begun, "fulfilment done");

    // 4. The same while Xano is slow and rate-limited, and busy: the first scenario's pools are
    // asked to refill to the brim, so replenishers call the slow Xano throughout.
    xano.inject(Fault::Latency {
        min: Duration::from_secs(2),
        max: Duration::from_secs(2),
        only: None,
    });
    xano.inject(Fault::RateLimitedRatio {
        ratio: 1.0 / 3.0,
        retry_after: None,
        only: None,
    });
    for t in 0..tiers_needed {
        admin
            .tier(
                "bench-fulfil",
                &format!("t{t:02}"),
                1000 + t as i64,
                10,
                1000,
                1000,
            )
            .await?;
    }
    let busy = wait_replenishing(&db, Duration::from_secs(15)).await?;
    let calls_before = xano.calls().len();
    let (row, check) = fulfilment(
        &server,
        &db,
        plan,
        "fulfilment: Xano 2 s + 429/3",
        &slow_work,
        &payloads,
        webhook_secret,
    )
    .await?;
    let calls = xano.calls();
    let during = &calls[calls_before.min(calls.len())..];
    let limited = during.iter().filter(|c| c.status == 429).count();
    let p99_slow = row.p99_ms;
    rows.push(Row {
        note: format!(
            "{busy} replenishers on Xano; {} Xano calls answered during the run, {limited} of them 429",
            during.len()
        ),
        ..row
    });
    verification.push(check);
    say(begun, "slow-Xano fulfilment done");
    // The faults stay: the replenishers keep waiting on Xano instead of minting during pgbench.

    // 5. pgbench: data, the in-process round-trip count, the run.
    server.reset_peak_rss();
    let total_pg = plan.pgbench_purchases;
    pgbench::prepare(&db, &pgbench_tiers, total_pg).await?;
    let trips = count_round_trips(database_url).await?;
    say(
        begun,
        &format!(
            "round trips per fulfilment: {} measured on the wire, {} in the pgbench script",
            trips.0,
            pgbench::script_round_trips()
        ),
    );
    let pg_url: url::Url = database_url.parse()?;
    let pg = pgbench::run(
        work_dir,
        pg_url.host_str().unwrap_or("127.0.0.1"),
        pg_url.port().unwrap_or(5432),
        if pg_url.username().is_empty() {
            "postgres"
        } else {
            pg_url.username()
        },
        db_name,
        c,
        plan.warmup,
        plan.duration,
    )
    .await?;
    let used: i64 = sqlx::query_scalar("select last_value from market_bench_pgbench_seq")
        .fetch_one(&db)
        .await?;
    if pg.failed {
        notes.push(format!(
            "pgbench reported a failure (ran out of prepared purchases? used {used} of {total_pg}): {}",
            pg.output.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    rows.push(Row::new(
        "limit a: pgbench, same SQL",
        c,
        pg.elapsed.as_secs_f64(),
        pg.transactions,
        u64::from(pg.failed),
        &pg.latency,
        None,
        format!(
            "{} round trips per transaction",
            pgbench::script_round_trips()
        ),
    ));
    say(begun, "pgbench done");
    let rss_idle = server.peak_rss();
    server.stop(Duration::from_secs(10)).await?;
    drop(db);

    // Ratios and targets.
    let find = |prefix: &str| {
        rows.iter()
            .find(|r| r.scenario.starts_with(prefix))
            .cloned()
    };
    let (Some(healthz), Some(catalog), Some(fulfil), Some(slow), Some(pgb)) = (
        find("limit b"),
        find("catalog"),
        find("fulfilment: webhook"),
        find("fulfilment: Xano"),
        find("limit a"),
    ) else {
        bail!("a scenario is missing");
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let ratios = vec![
        Ratio {
            name: "fulfilment / pgbench (throughput)".into(),
            value: ratio(fulfil.throughput, pgb.throughput),
        },
        Ratio {
            name: "fulfilment slow Xano / fulfilment (throughput)".into(),
            value: ratio(slow.throughput, fulfil.throughput),
        },
        Ratio {
            name: "fulfilment slow Xano / fulfilment (p99)".into(),
            value: ratio(p99_slow, p99_fulfil),
        },
        Ratio {
            name: "catalog / healthz (throughput)".into(),
            value: ratio(catalog.throughput, healthz.throughput),
        },
    ];
    let peak_rss = rows
        .iter()
        .filter_map(|r| r.server_peak_rss_mib)
        .fold(rss_idle.map_or(0.0, |b| b as f64 / 1048576.0), f64::max);
    let mut sorted = startup.clone();
    sorted.sort_by(f64::total_cmp);
    let startup_median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let target = |name: &str, wanted: &str, measured: String, met: bool| Target {
        name: name.into(),
        wanted: wanted.into(),
        measured,
        met,
    };
    let targets = vec![
        target(
            "fulfilment throughput",
            ">= 0.6 x pgbench",
            format!(
                "{:.2} x ({:.0}/s vs {:.0}/s)",
                ratio(fulfil.throughput, pgb.throughput),
                fulfil.throughput,
                pgb.throughput
            ),
            ratio(fulfil.throughput, pgb.throughput) >= 0.6,
        ),
        target(
            "fulfilment p99",
            "<= 25 ms",
            format!("{:.1} ms", fulfil.p99_ms),
            fulfil.p99_ms <= 25.0,
        ),
        target(
            "slow-Xano fulfilment p99",
            "<= 1.2 x fulfilment p99",
            format!("{:.2} x ({:.1} ms)", ratio(p99_slow, p99_fulfil), p99_slow),
            p99_slow <= 1.2 * p99_fulfil,
        ),
        target(
            "catalog throughput",
            ">= 0.5 x healthz",
            format!(
                "{:.2} x ({:.0}/s vs {:.0}/s)",
                ratio(catalog.throughput, healthz.throughput),
                catalog.throughput,
                healthz.throughput
            ),
            ratio(catalog.throughput, healthz.throughput) >= 0.5,
        ),
        target(
            "catalog p99",
            "<= 5 ms",
            format!("{:.2} ms", catalog.p99_ms),
            catalog.p99_ms <= 5.0,
        ),
        target(
            "server peak RSS",
            "<= 64 MiB",
            format!("{peak_rss:.1} MiB"),
            peak_rss <= 64.0,
        ),
        target(
            "start-up to ready",
            "<= 1 s",
            format!("{startup_median:.0} ms (median)"),
            startup_median <= 1000.0,
        ),
    ];
    if plan.smoke {
        notes.push("smoke mode: tiny load; the figures say nothing about performance".into());
    }
    Ok(Report {
        mode: if plan.smoke {
            "smoke".into()
        } else {
            "full".into()
        },
        machine: machine_facts(&admin_pg(database_url).await?).await,
        rows,
        ratios,
        targets,
        startup_ms: startup,
        startup_median_ms: startup_median,
        round_trips: serde_json::json!({
            "measured_on_the_wire": trips.0,
            "pgbench_script": pgbench::script_round_trips(),
            "statements": trips.1,
        }),
        verification,
        notes,
    })
}

async fn admin_pg(database_url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?)
}

/// Cores, PostgreSQL version and the settings that decide commit throughput.
async fn machine_facts(db: &PgPool) -> serde_json::Value {
    let mut facts = serde_json::Map::new();
    facts.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
            .into(),
    );
    if let Ok(v) = sqlx::query_scalar::<_, String>("select version()")
        .fetch_one(db)
        .await
    {
        facts.insert("postgres".into(), v.into());
    }
    for setting in [
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "max_connections",
        "wal_level",
        "commit_delay",
    ] {
        if let Ok(v) = sqlx::query_scalar::<_, String>(&format!("show {setting}"))
            .fetch_one(db)
            .await
        {
            facts.insert(setting.into(), v.into());
        }
    }
    serde_json::Value::Object(facts)
}

/// The admin API, for seeding.
struct Admin {
    addr: SocketAddr,
    auth: String,
}

impl Admin {
    async fn put(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let body = serde_json::to_vec(body)?;
        let request = http::request(
            "PUT",
            path,
            &[
                ("authorization", &self.auth),
                ("content-type", "application/json"),
            ],
            &body,
        );
        let response = http::once(self.addr, &request).await?;
        if response.status != 200 {
            bail!(
                "PUT {path}: {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        Ok(())
    }

    async fn listing(&self, canonical: &str, title: &str) -> anyhow::Result<()> {
        self.put(
            &format!("/v1/admin/listings/{canonical}"),
            &serde_json::json!({ "title": title }),
        )
        .await
    }

    async fn tier(
        &self,
        canonical: &str,
        slug: &str,
        price: i64,
        max_installs: i64,
        low_water: i32,
        target: i32,
    ) -> anyhow::Result<()> {
        self.put(
            &format!("/v1/admin/listings/{canonical}/tiers/{slug}"),
            &serde_json::json!({
                "name": slug,
                "price": { "amount": price, "currency": "usd" },
                "max_installs": max_installs,
                "pool_low_water": low_water,
                "pool_target": target,
            }),
        )
        .await
    }
}

/// Waits until every active tier's pool is at its target.
async fn wait_pools_full(db: &PgPool, timeout: Duration, begun: Instant) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (short, missing): (i64, Option<i64>) = sqlx::query_as(
            "select count(*), sum(t.pool_target - a.n)::bigint from tier t
             cross join lateral (select count(*) as n from install_token it
                                 where it.tier_id = t.tier_id and it.state = 'available') a
             where t.active and a.n < t.pool_target",
        )
        .fetch_one(db)
        .await?;
        if short == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("pools not full after {timeout:?}: {short} tiers short");
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            say(
                begun,
                &format!(
                    "waiting for pools: {short} tiers short of {} tokens",
                    missing.unwrap_or(0)
                ),
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every listing had its first reconciliation (after that, the next is hours away), so
/// tokens pgbench adds with SQL are not flagged missing by one.
async fn wait_reconciled(db: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from listing l where not exists (
                 select 1 from job j where j.kind = 'reconcile_listing' and j.subject = l.listing_id::text
                   and j.state = 'queued' and j.due_at > now() + interval '10 minutes')",
        )
        .fetch_one(db)
        .await?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("{pending} listings not reconciled after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until replenishers are running (they call Xano); returns how many.
async fn wait_replenishing(db: &PgPool, timeout: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "select count(*) from job where kind = 'replenish_pool' and state = 'running'",
        )
        .fetch_one(db)
        .await?;
        if running > 0 || started.elapsed() > timeout {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pending purchase and its Checkout Session.
#[derive(Debug, Clone)]
struct Pending {
    purchase: Uuid,
    session: String,
}

/// `count` checkouts through `POST /v1/checkout`, spread over `tiers` in turn.
async fn prepare_purchases(
    addr: SocketAddr,
    tiers: &[Uuid],
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Vec<Pending>> {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..count)
            .map(|i| {
                let tier = tiers[usize::try_from(i).unwrap_or(0) % tiers.len()];
                let body = serde_json::json!({ "tier_id": tier, "email": "buyer@example.com" });
                http::request(
                    "POST",
                    "/v1/checkout",
                    &[("content-type", "application/json")],
                    body.to_string().as_bytes(),
                )
            })
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(Mutex::new(vec![None; requests.len()]));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let requests = Arc::clone(&requests);
        let next = Arc::clone(&next);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut conn = http::Conn::new(addr);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let response = conn.send(request).await?;
                if response.status != 201 {
                    bail!(
                        "checkout: {} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
                let json = response.json()?;
                let purchase: Uuid = json["purchase_id"]
                    .as_str()
                    .context("purchase_id")?
                    .parse()?;
                let session = json["checkout_url"]
                    .as_str()
                    .and_then(|u| u.rsplit('/').next())
                    .context("checkout_url")?
                    .to_owned();
                if let Ok(mut done) = done.lock() {
                    done[i] = Some(Pending { purchase, session });
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let done = std::mem::take(&mut *done.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(done.into_iter().flatten().collect())
}

/// Pays every session at the simulator and returns the `checkout.session.completed` payloads by
/// session id.
fn pay_all<'a>(
    stripe: &StripeSim,
    pending: impl Iterator<Item = &'a Pending>,
) -> anyhow::Result<HashMap<String, String>> {
    for p in pending {
        stripe
            .pay(&p.session)
            .map_err(|e| anyhow::anyhow!("paying {}: {e}", p.session))?;
    }
    let mut payloads = HashMap::new();
    for event in stripe.events() {
        if event.type_ != "checkout.session.completed" {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&event.payload)?;
        if let Some(session) = json["data"]["object"]["id"].as_str() {
            payloads.insert(session.to_owned(), event.payload);
        }
    }
    Ok(payloads)
}

/// Posts one signed delivery per purchase, at the plan's concurrency, and checks the database.
async fn fulfilment(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    name: &str,
    work: &[Pending],
    payloads: &HashMap<String, String>,
    secret: &str,
) -> anyhow::Result<(Row, String)> {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let secrets = [secret.to_owned()];
    let mut requests: Vec<Arc<[u8]>> = Vec::with_capacity(work.len());
    for p in work {
        let payload = payloads
            .get(&p.session)
            .with_context(|| format!("no completed event for {}", p.session))?;
        let signature = signature_header(payload, now, &secrets);
        requests.push(Arc::from(http::request(
            "POST",
            "/v1/webhooks/stripe",
            &[
                ("content-type", "application/json"),
                ("stripe-signature", &signature),
            ],
            payload.as_bytes(),
        )));
    }
    let requests = Arc::new(requests);
    let list = Arc::clone(&requests);
    server.reset_peak_rss();
    let measured = load::run(
        server.addr,
        plan.concurrency,
        plan.warmup,
        plan.duration,
        Work {
            request: Box::new(move |i| list.get(usize::try_from(i).ok()?).cloned()),
            check: Box::new(|r| {
                r.status == 200
                    && r.body
                        .windows(br#""outcome":"fulfilled""#.len())
                        .any(|w| w == br#""outcome":"fulfilled""#)
            }),
        },
    )
    .await;
    let rss = server.peak_rss();

    // Every delivery sent must have left its purchase fulfilled with exactly one live token.
    let sent = usize::try_from(measured.issued)
        .unwrap_or(usize::MAX)
        .min(work.len());
    let ids: Vec<Uuid> = work[..sent].iter().map(|p| p.purchase).collect();
    let (fulfilled, tokens): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where p.status = 'fulfilled'
                                  and (select count(*) from install_token t
                                       where t.purchase_id = p.purchase_id and t.state = 'assigned') = 1),
                (select count(distinct install_token_id) from install_token
                 where purchase_id = any($1) and state = 'assigned')
         from purchase p where p.purchase_id = any($1)",
    )
    .bind(&ids)
    .fetch_one(db)
    .await?;
    let check = format!(
        "{name}: {fulfilled} of {sent} purchases delivered are fulfilled with exactly one token ({tokens} distinct tokens){}",
        if usize::try_from(fulfilled).unwrap_or(0) == sent {
            ""
        } else {
            "  <-- MISMATCH"
        }
    );
    let mut note = String::new();
    if measured.exhausted {
        note = format!(
            "all {} prepared purchases used before the deadline",
            work.len()
        );
    }
    if !measured.samples.is_empty() {
        note.push_str(&format!(" errors e.g.: {}", measured.samples.join(" | ")));
    }
    Ok((
        Row::new(
            name,
            plan.concurrency,
            measured.elapsed.as_secs_f64(),
            measured.ok,
            measured.errors,
            &measured.latency,
            rss,
            note,
        ),
        check,
    ))
}

/// A GET of one path at the plan's concurrency, expecting 200.
async fn fixed_request(server: &Server, plan: &Plan, name: &str, path: &str) -> Row {
    let request: Arc<[u8]> = Arc::from(http::request("GET", path, &[], b""));
    server.reset_peak_rss();
    let measured = load::run(
        server.addr,
        plan.concurrency,
        plan.warmup,
        plan.duration,
        Work {
            request: Box::new(move |_| Some(Arc::clone(&request))),
            check: Box::new(|r| r.status == 200),
        },
    )
    .await;
    Row::new(
        name,
        plan.concurrency,
        measured.elapsed.as_secs_f64(),
        measured.ok,
        measured.errors,
        &measured.latency,
        server.peak_rss(),
        measured.samples.join(" | "),
    )
}

/// Runs `payments::apply` in-process for pgbench purchases 1 and 2 through the counting proxy,
/// with the pool settings the server uses: the first run prepares the statements (and shows their
/// text), the second is the steady state whose round trips are counted.
async fn count_round_trips(database_url: &str) -> anyhow::Result<(u64, Vec<String>)> {
    use market_core::audit::Actor;
    use market_core::payments::{self, Delivery, Effect, Fact, SessionFacts, SessionPayment};

    let mut url: url::Url = database_url.parse()?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .context("PostgreSQL address")?;
    let wire = wire::Wire::start(upstream).await?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(wire.addr.port()))
        .map_err(|()| anyhow::anyhow!("port"))?;
    url.query_pairs_mut().append_pair("sslmode", "disable");
    let options: sqlx::postgres::PgConnectOptions = url.as_str().parse()?;
    let pool = market_core::db::connect(
        options,
        &market_core::db::DbConfig {
            max_connections: 1,
            ..market_core::db::DbConfig::default()
        },
    )
    .await?;

    let mut statements = Vec::new();
    let mut trips = 0;
    for n in 1..=2u64 {
        let purchase: Uuid = format!("00000000-0000-4000-8000-{n:012}").parse()?;
        let facts = SessionFacts {
            purchase: market_core::PurchaseId(purchase),
            session_id: format!("cs_pgb_{n}"),
            payment_intent: Some(format!("pi_pgb_{n}")),
            payment: SessionPayment::Paid,
        };
        let event_id = format!("evt_pgb_{n}");
        // Let the pool settle (its connection open and idle) before counting.
        tokio::time::sleep(Duration::from_millis(20)).await;
        wire.reset();
        let outcome = payments::apply(
            &pool,
            Some(Delivery {
                event_id: &event_id,
                event_type: "checkout.session.completed",
                livemode: false,
            }),
            &Fact::CheckoutCompleted(facts),
            &Actor::Stripe,
        )
        .await?;
        if !matches!(outcome.effect, Effect::Fulfilled { .. }) {
            bail!("in-process fulfilment of pgbench purchase {n}: {outcome:?}");
        }
        let (count, sql) = wire.take();
        if n == 1 {
            statements = sql;
        } else {
            trips = count;
        }
    }
    pool.close().await;
    Ok((trips, statements))
}
