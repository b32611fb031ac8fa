//! The reads, loaded one at a time for a window each (closed loop, `load`): the catalog's pages
//! (the first, every later one by following cursors, a seller's, one listing), the admin purchase
//! list (newest, by status, e-mail, listing, tier; first pages and pages deep in), one purchase
//! (the admin's read and the buyer's receipt), the buyer portal, the sales reports; `/healthz`
//! and the catalog again at concurrency 64 for the catalog's target.
//!
//! Beside the latencies, each scenario reports the sequential scans PostgreSQL counted on the big
//! tables during its window (`pg_stat_user_tables`): the real statements' evidence, where `plans`
//! checks copies. The counts include the server's background work (its sweep every 5 s, the
//! catalog refresh every second reads `listing` and `tier` whole), and PostgreSQL publishes a
//! session's counts up to a second late.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;

use super::args::Size;
use super::samples::Samples;
use super::scenario::Scenario;
use super::suite;
use crate::cpu::{self, Usage};
use crate::http;
use crate::load::{self, Work};
use crate::say;
use crate::server::{Server, ServerConfig};

/// What one scenario measured.
#[derive(Debug)]
pub struct Measured {
    pub name: String,
    pub concurrency: usize,
    pub ok: u64,
    pub errors: u64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Whether the "p99 ≤ 10 ms at concurrency 16" applies (admin and portal reads).
    pub read_target: bool,
    /// Sequential scans of the big tables during the window, e.g. `purchase 0, install_token 0`.
    pub seq_scans: String,
    /// Where the machine's time went in the measured window (after the warm-up).
    pub cpu: Option<Usage>,
    pub error_samples: Vec<String>,
}

/// Runs every scenario against `server`; prints the peak RSS once the catalog is cached.
pub async fn run_all(
    server: &Server,
    config: &ServerConfig,
    samples: &Samples,
    size: &Size,
    only: &[String],
    db: &PgPool,
    begun: Instant,
) -> anyhow::Result<Vec<Measured>> {
    let admin = format!("Bearer {}", config.admin_token);
    let (pages, canonicals) = catalog_pages(server, db).await?;
    say(
        begun,
        &format!(
            "catalog walked: {} pages of 50 by cursor, every listing once",
            pages.len()
        ),
    );
    let mut results = Vec::new();
    for scenario in suite::all(samples, &pages, &canonicals, &admin)
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| s.name.contains(o.as_str())))
    {
        let measured = measure(server, db, size, scenario).await?;
        say(
            begun,
            &format!(
                "{}: p99 {:.2} ms, {:.0}/s, {} errors; peak RSS so far {:.1} MiB",
                measured.name,
                measured.p99_ms,
                measured.per_s,
                measured.errors,
                server.peak_rss().map_or(0.0, mib)
            ),
        );
        results.push(measured);
    }
    Ok(results)
}

/// Walks `GET /v1/listings` page by page, checking that the pages hold every listing on sale once
/// and in order; returns each page's path and every canonical.
async fn catalog_pages(server: &Server, db: &PgPool) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut paths = vec!["/v1/listings".to_owned()];
    let mut seen: Vec<String> = Vec::new();
    loop {
        let path = paths.last().cloned().unwrap_or_default();
        let response = http::once(server.addr, &http::request("GET", &path, &[], b"")).await?;
        let body = response.json()?;
        anyhow::ensure!(response.status == 200, "{path}: {}", response.status);
        for listing in body["listings"].as_array().into_iter().flatten() {
            let canonical = listing["canonical"].as_str().unwrap_or_default().to_owned();
            anyhow::ensure!(
                seen.last().is_none_or(|last| *last < canonical),
                "{canonical} out of order or on two pages"
            );
            seen.push(canonical);
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => paths.push(format!("/v1/listings?cursor={cursor}")),
            None => break,
        }
    }
    let on_sale: i64 = sqlx::query_scalar("select count(*) from listing where active")
        .fetch_one(db)
        .await?;
    anyhow::ensure!(
        i64::try_from(seen.len())? == on_sale,
        "the pages held {} listings, {on_sale} are on sale",
        seen.len()
    );
    Ok((paths, seen))
}

async fn measure(
    server: &Server,
    db: &PgPool,
    size: &Size,
    scenario: Scenario,
) -> anyhow::Result<Measured> {
    let before = seq_scans(db).await?;
    let requests = Arc::new(scenario.requests);
    let count = u64::try_from(requests.len())?;
    let work = Work {
        request: Box::new(move |i| {
            usize::try_from(i % count)
                .ok()
                .and_then(|at| requests.get(at).cloned())
        }),
        check: Box::new(|response| response.status == 200),
        size: None,
    };
    let (run, usage) = cpu::during(
        db,
        &[server.pid],
        size.warmup,
        load::run(
            &[server.addr],
            scenario.concurrency,
            size.warmup,
            size.duration,
            work,
        ),
    )
    .await;
    let after = seq_scans(db).await?;
    let scans = before
        .iter()
        .zip(&after)
        .map(|((table, b), (_, a))| format!("{table} {}", a - b))
        .collect::<Vec<_>>()
        .join(", ");
    let (ms, per_s) = (
        |q: f64| run.latency.value_at_quantile(q) as f64 / 1000.0,
        (run.ok + run.errors) as f64 / run.elapsed.as_secs_f64().max(1e-9),
    );
    Ok(Measured {
        name: scenario.name,
        concurrency: scenario.concurrency,
        ok: run.ok,
        errors: run.errors,
        per_s,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        read_target: scenario.read_target,
        seq_scans: scans,
        cpu: usage,
        error_samples: run.samples,
    })
}

/// Sequential scans so far of the tables no hot path may scan, and of the audit log.
async fn seq_scans(db: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    // Counts of this session's own earlier statements are published at its next transaction.
    Ok(sqlx::query_as(
        "select relname::text, seq_scan from pg_stat_user_tables
         where relname in ('purchase', 'install_token', 'listing', 'tier', 'audit_event')
         order by relname",
    )
    .fetch_all(db)
    .await?)
}

/// The table of figures.
pub fn print(results: &[Measured]) {
    println!(
        "\n{:<44} {:>3} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8}  sequential scans meanwhile",
        "scenario", "c", "requests", "errors", "per s", "p50 ms", "p90 ms", "p99 ms"
    );
    for r in results {
        println!(
            "{:<44} {:>3} {:>8} {:>6} {:>8.0} {:>8.2} {:>8.2} {:>8.2}  {}",
            r.name,
            r.concurrency,
            r.ok + r.errors,
            r.errors,
            r.per_s,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.seq_scans
        );
        if let Some(usage) = &r.cpu {
            println!("    {}", usage.per_request(r.per_s));
        }
        for sample in &r.error_samples {
            println!("    error: {sample}");
        }
    }
}

/// A scenario with an error, or with no request answered, fails the run.
pub fn failures(results: &[Measured]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.errors > 0 || r.ok == 0)
        .map(|r| format!("{}: {} errors, {} ok", r.name, r.errors, r.ok))
        .collect()
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    let bytes = bytes as f64;
    bytes / (1024.0 * 1024.0)
}
