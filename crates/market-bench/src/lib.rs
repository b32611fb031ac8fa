//! `market-bench`: purchases per second and catalog reads of a real `market` process on real
//! PostgreSQL, compared in the same run with this machine's own limits.
//!
//! The tool runs the Xano and Stripe simulators in its own process, creates a fresh database
//! `market_bench_<unix>` (dropped at the end, with the others it makes, unless `--keep-db`), and
//! starts the release `market` binary next to its own executable as a child configured against the
//! simulators with secrets it knows — so it can sign Stripe deliveries itself. Then, in order:
//!
//! 1. start-up: process start → `/readyz` 200, migrations already applied (several runs, median);
//! 2. limit (b): `GET /healthz` (the HTTP stack's ceiling); catalog: `GET /v1/listings`; in the
//!    order `/healthz`, catalog, catalog, `/healthz`, each pair's windows pooled for the target;
//! 3. fulfilment: pending purchases made through `POST /v1/checkout` and paid at the Stripe
//!    simulator (which delivers nothing), then their signed `checkout.session.completed` events
//!    posted at the set concurrency; each must answer `fulfilled`, and the database is checked;
//! 4. the defences' cost (`defences.rs`): a second server with per-client rate limiting on, the
//!    catalog read through both (after step 2), a third set of purchases fulfilled through both in
//!    turn (ABBA), and tokens sealed and opened in-process;
//! 5. the success page (`buyer.rs`): reloaded for purchases already fulfilled, and asked about
//!    purchases paid at Stripe but never delivered (the page fulfils them);
//! 6. variants (`variants.rs`): fulfilment over 1, 2 and 3 instances on the same database, and
//!    with `sslmode=prefer` against `sslmode=disable`, with where the CPU went (`cpu.rs`);
//! 7. checkout creation (`buyer.rs`), each with a fresh idempotency key;
//! 8. fulfilment while Xano answers in 2 s and 429s a third of calls, with replenishers busy on it;
//! 9. limit (a2) (`service_sql.rs`): one fulfilment recorded on the wire in-process (its round
//!    trips, `trips.rs`), replayed by pgbench at the same concurrency (`replay.rs`);
//! 10. limit (a) (`tpcb.rs`), once the server has stopped: pgbench's built-in `tpcb-like` at the
//!     same concurrency on a database of its own — what this machine's PostgreSQL commits per
//!     second;
//! 11. pool refill (`refill.rs`): a tier's empty pool refilled by `market-core`'s job runner in this
//!     process against a simulator enforcing the account's limit (the free plan's 10 per 20 s, then
//!     100 per 10 s): tokens per second against the limit, and 429s.
//!
//! Every scenario against a server reports its peak RSS (`VmHWM`, reset per scenario) and what the
//! memory holds at its end (`memory.rs`). `--smoke` does all of it with a tiny load in a few
//! seconds; the workspace's tests run it (`tests/bench_smoke.rs` at the root), so the tool cannot
//! rot.

mod buyer;
mod context;
mod cpu;
mod decode;
mod defences;
mod http;
mod load;
mod memory;
mod pgbench;
mod prepare;
mod purchases;
mod refill;
mod replay;
mod report;
mod run;
pub mod scale;
mod scenarios;
mod seed;
mod server;
mod service_sql;
mod sql_text;
mod tpcb;
mod trips;
mod variants;
mod verdict;
mod wire;
mod wire_msg;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::context::Ctx;
use crate::server::ServerConfig;

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
    /// Connections (and pgbench clients) per scenario; `tpcb-like`'s scale factor follows it.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Pending purchases prepared for each fulfilment scenario (the scenario ends early when they
    /// run out).
    #[arg(long)]
    purchases: Option<u64>,
    /// Purchases prepared for pgbench's replay of the service's SQL (limit a2).
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
                pgbench_purchases: args.pgbench_purchases.unwrap_or(10_000),
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

/// Runs the tool with these command-line arguments (the first is the program's name), as
/// `market-bench` does; the smoke test (`tests/bench_smoke.rs` at the root) calls it with
/// `--smoke` and the `market` binary of the same `cargo test` build. Like `Args::parse`, it
/// prints the usage and exits on `--help` or bad arguments.
pub fn run<I, T>(command_line: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = Args::try_parse_from(command_line).unwrap_or_else(|e| e.exit());
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
    let binary = server_binary(args.server.as_deref())?;
    let work_dir = binary
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("bench");
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

    let (xano, xano_token, stripe, webhook_secret) = simulators().await?;
    let (db_name, database_url, server_url) = fresh_database_url(&args.pg)?;
    let admin_db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&server_url)
        .await
        .with_context(|| format!("connecting to {server_url}"))?;
    let log_file = work_dir.join(if plan.smoke {
        "market-smoke.log"
    } else {
        "market.log"
    });
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
        data_key: "bench:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=".to_owned(),
        rust_log: args.server_rust_log.clone(),
        log_file: log_file.clone(),
        extra_env: args.server_env.clone(),
    };
    let ctx = Ctx {
        plan: &plan,
        config: &config,
        xano: &xano,
        stripe: &stripe,
        webhook_secret: &webhook_secret,
        admin_token: &admin_token,
        database_url: &database_url,
        db_name: &db_name,
        work_dir: &work_dir,
        begun,
    };
    let result = Box::pin(run::run_all(&ctx, &admin_db)).await;

    drop_databases(&admin_db, &db_name, args.keep_db, begun).await?;
    stripe.stop().await;
    xano.stop().await;
    let mut report = result?;
    report.notes.push(format!(
        "whole run {:.0} s; server log {}",
        begun.elapsed().as_secs_f64(),
        log_file.display()
    ));
    report::print(&report);
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("\nJSON report: {}", out.display());
    let failures = report::failures(&report);
    if !failures.is_empty() {
        bail!("the run failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Drops the run's databases (the bench's and tpcb-like's), unless they are to be kept.
async fn drop_databases(
    admin_db: &sqlx::PgPool,
    db_name: &str,
    keep: bool,
    begun: Instant,
) -> anyhow::Result<()> {
    let tpcb_db = tpcb::database_name(db_name);
    if keep {
        say(begun, &format!("databases {db_name} and {tpcb_db} kept"));
        return Ok(());
    }
    for name in [db_name, tpcb_db.as_str()] {
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(admin_db)
            .await?;
    }
    Ok(())
}

/// The `market` binary: `--server`, or `market` next to this executable.
fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let binary = match given {
        Some(p) => p.to_path_buf(),
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
    Ok(binary)
}

/// The simulators, in this process, with secrets this tool knows: the Xano access token, and the
/// webhook signing secret (so it can sign deliveries itself).
async fn simulators() -> anyhow::Result<(XanoSim, String, StripeSim, String)> {
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

    Ok((xano, xano_token, stripe, webhook_secret))
}

/// A fresh database's name and URL on the server of `pg`, and the URL of that server's `postgres`
/// database (for creating and dropping it).
fn fresh_database_url(pg: &str) -> anyhow::Result<(String, String, String)> {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let db_name = format!("market_bench_{unix}");
    let mut url: url::Url = pg.parse().context("--pg")?;
    url.set_path("/postgres");
    let server_url = url.to_string();
    url.set_path(&format!("/{db_name}"));
    Ok((db_name, url.to_string(), server_url))
}

fn say(begun: Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", begun.elapsed().as_secs_f64());
}
