//! The run, phase by phase: start-up, the HTTP ceiling and the catalog, the fulfilment scenarios
//! (normal, then with Xano slow and rate-limited), pgbench's replay of the fulfilment SQL, and pool
//! refills under Xano's rate limit (once the server has stopped, on a quiet machine).

use std::time::Duration;

use sandbox::xano::Fault;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::context::Ctx;
use crate::prepare::{POOL_CAP, Prepared, Tiers, prepare, price, tiers};
use crate::report::{Check, Report, Row};
use crate::seed::{self, Admin};
use crate::server::Server;
use crate::{defences, http, pgbench, refill, say, scenarios, trips, verdict};

const STOREFRONT_LISTINGS: usize = 8;

pub async fn run_all(ctx: &Ctx<'_>) -> anyhow::Result<Report> {
    let startup = startup(ctx).await?;

    let db = PgPoolOptions::new()
        .max_connections(4)
        .connect(ctx.database_url)
        .await?;
    let mut server = ctx.config.spawn()?;
    server.wait_ready(Duration::from_secs(30)).await?;
    let admin = Admin {
        addr: server.addr,
        auth: format!("Bearer {}", ctx.admin_token),
    };

    let mut rows = storefront(ctx, &server, &admin, &db).await?;
    let limited = defences::limited_server(ctx.config).await?;
    let (on, again) = defences::catalog(ctx.plan, &server, &limited).await;
    rows.extend([on, again]);
    let tiers = tiers(ctx, &admin, &db).await?;
    let prepared = prepare(ctx, &server, &db, &tiers).await?;

    let (row, fulfil_check) = scenarios::fulfilment(
        &server,
        &db,
        ctx.plan,
        "fulfilment: webhook",
        &prepared.fulfil,
        &prepared.payloads,
        ctx.webhook_secret,
    )
    .await?;
    rows.push(row);
    say(ctx.begun, "fulfilment done");
    let (defence_rows, mut fulfil_checks) = defences::fulfilment(
        ctx.plan,
        ctx.webhook_secret,
        &db,
        [&server, &limited],
        &prepared.defences,
        &prepared.payloads,
    )
    .await?;
    rows.extend(defence_rows);
    fulfil_checks.insert(0, fulfil_check);
    limited.stop(Duration::from_secs(10)).await?;
    say(ctx.begun, "the defences' fulfilment done");
    let (row, slow_check) = slow_xano(ctx, &server, &admin, &db, &tiers, &prepared).await?;
    rows.push(row);
    say(ctx.begun, "slow-Xano fulfilment done");

    server.reset_peak_rss();
    let (row, round_trips, mut notes) = limit_pgbench(ctx, &db, &tiers.pgbench).await?;
    rows.push(row);
    say(ctx.begun, "pgbench done");
    let rss_pgbench = server.peak_rss().map(|b| b as f64 / (1024.0 * 1024.0));
    server.stop(Duration::from_secs(10)).await?;
    let refills = refill::run(ctx).await?;
    say(ctx.begun, "pool refills done");

    let startup_median_ms = verdict::median(&startup);
    let (mut ratios, mut targets) = verdict::assess(&rows, startup_median_ms, rss_pgbench)?;
    let sealing = defences::sealing_micros(&ctx.config.data_key, 20_000)?;
    let (more_ratios, more_targets, more_notes) = defences::assess(&rows, sealing)?;
    ratios.extend(more_ratios);
    targets.extend(more_targets);
    notes.extend(more_notes);
    rows.extend(refills.rows);
    ratios.extend(refills.ratios);
    targets.extend(refills.targets);
    notes.push(prepared.refill.clone());
    if ctx.plan.smoke {
        notes.push("smoke mode: tiny load; the figures say nothing about performance".into());
    }
    let machine = verdict::machine_facts(&db).await;
    db.close().await;
    Ok(Report {
        mode: if ctx.plan.smoke { "smoke" } else { "full" }.into(),
        machine,
        rows,
        ratios,
        targets,
        startup_ms: startup,
        startup_median_ms,
        round_trips,
        verification: fulfil_checks
            .into_iter()
            .chain([slow_check])
            .chain(refills.checks)
            .collect(),
        notes,
    })
}

/// Start-up: process start to `/readyz` 200, with migrations already applied, in ms.
async fn startup(ctx: &Ctx<'_>) -> anyhow::Result<Vec<f64>> {
    ctx.config.migrate().await?;
    let mut startup = Vec::new();
    for _ in 0..ctx.plan.startup_runs {
        let mut s = ctx.config.spawn()?;
        let ready = s.wait_ready(Duration::from_secs(30)).await?;
        startup.push(ready.as_secs_f64() * 1000.0);
        s.stop(Duration::from_secs(10)).await?;
    }
    say(ctx.begun, &format!("start-up runs (ms): {startup:.0?}"));
    Ok(startup)
}

/// A storefront catalog, then the HTTP ceiling (`/healthz`) and catalog reads.
async fn storefront(
    ctx: &Ctx<'_>,
    server: &Server,
    admin: &Admin,
    db: &PgPool,
) -> anyhow::Result<Vec<Row>> {
    let mut tiers = 0;
    for l in 0..STOREFRONT_LISTINGS {
        let canonical = format!("store-{l:02}");
        ctx.xano.add_snippet(&canonical, &canonical);
        admin.listing(&canonical, &format!("Snippet {l}")).await?;
        let extra = 100 * i64::try_from(l)?;
        for (slug, price, installs) in [("solo", 1900, 5), ("team", 4900, 20), ("agency", 9900, 50)]
        {
            admin
                .tier(&canonical, slug, price + extra, installs, 3, 8)
                .await?;
            tiers += 1;
        }
    }
    seed::wait_pools_full(db, Duration::from_secs(120), ctx.begun).await?;
    let catalog_bytes = http::once(server.addr, &http::request("GET", "/v1/listings", &[], b""))
        .await?
        .body
        .len();

    let healthz =
        scenarios::fixed_request(server, ctx.plan, "limit b: GET /healthz", "/healthz").await;
    let catalog = scenarios::fixed_request(
        server,
        ctx.plan,
        "catalog: GET /v1/listings",
        "/v1/listings",
    )
    .await;
    let catalog = Row {
        note: format!(
            "{STOREFRONT_LISTINGS} listings, {tiers} tiers, {catalog_bytes} bytes {}",
            catalog.note
        ),
        ..catalog
    };
    say(ctx.begun, "healthz and catalog done");
    Ok(vec![healthz, catalog])
}

/// Scenario 2: fulfilment while Xano answers in 2 s and 429s a third of calls — and is busy: the
/// first scenario's pools are asked to refill to the brim, so replenishers call it throughout.
async fn slow_xano(
    ctx: &Ctx<'_>,
    server: &Server,
    admin: &Admin,
    db: &PgPool,
    tiers: &Tiers,
    prepared: &Prepared,
) -> anyhow::Result<(Row, Check)> {
    ctx.xano.inject(Fault::Latency {
        min: Duration::from_secs(2),
        max: Duration::from_secs(2),
        only: None,
    });
    ctx.xano.inject(Fault::RateLimitedRatio {
        ratio: 1.0 / 3.0,
        retry_after: None,
        only: None,
    });
    let cap = i32::try_from(POOL_CAP)?;
    for t in 0..tiers.count {
        admin
            .tier("bench-fulfil", &format!("t{t:02}"), price(t)?, 10, cap, cap)
            .await?;
    }
    let busy = seed::wait_replenishing(db, Duration::from_secs(15)).await?;
    let calls_before = ctx.xano.calls().len();
    let (row, check) = scenarios::fulfilment(
        server,
        db,
        ctx.plan,
        "fulfilment: Xano 2 s + 429/3",
        &prepared.slow,
        &prepared.payloads,
        ctx.webhook_secret,
    )
    .await?;
    let calls = ctx.xano.calls();
    let during = &calls[calls_before.min(calls.len())..];
    let limited = during.iter().filter(|c| c.status == 429).count();
    // The faults stay: the replenishers keep waiting on Xano instead of minting during pgbench.
    Ok((
        Row {
            note: format!(
                "{busy} replenishers on Xano; {} Xano calls answered during the run, {limited} of them 429 {}",
                during.len(),
                row.note
            ),
            ..row
        },
        check,
    ))
}

/// Limit (a): pgbench's data, the in-process round-trip count, the pgbench run.
async fn limit_pgbench(
    ctx: &Ctx<'_>,
    db: &PgPool,
    tiers: &[Uuid],
) -> anyhow::Result<(Row, serde_json::Value, Vec<String>)> {
    let mut notes = Vec::new();
    let total = ctx.plan.pgbench_purchases;
    pgbench::prepare(db, tiers, total).await?;
    let trips = trips::count_round_trips(ctx.database_url).await?;
    let scripted = pgbench::script_round_trips();
    let sql_trips = trips.total - trips.pings;
    say(
        ctx.begun,
        &format!(
            "round trips per fulfilment: {} measured on the wire ({} of them the pool's ping on acquire), {scripted} in the pgbench script",
            trips.total, trips.pings
        ),
    );
    if usize::try_from(sql_trips).ok() != Some(scripted) {
        notes.push(format!(
            "the pgbench script ({scripted} round trips) is out of step with payments::apply ({sql_trips} with SQL)"
        ));
    }
    let pg_url: url::Url = ctx.database_url.parse()?;
    let user = match pg_url.username() {
        "" => "postgres",
        u => u,
    };
    let pg = pgbench::run(
        ctx.work_dir,
        &pgbench::Database {
            host: pg_url.host_str().unwrap_or("127.0.0.1"),
            port: pg_url.port().unwrap_or(5432),
            user,
            name: ctx.db_name,
        },
        ctx.plan.concurrency,
        ctx.plan.warmup,
        ctx.plan.duration,
    )
    .await?;
    let drawn: i64 = sqlx::query_scalar("select last_value from market_bench_pgbench_seq")
        .fetch_one(db)
        .await?;
    if pg.failed {
        notes.push(format!(
            "pgbench reported a failure (ran out of prepared purchases? used {drawn} of {total}): {}",
            pg.output.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let row = Row::new(
        "limit a: pgbench, same SQL",
        ctx.plan.concurrency,
        pg.elapsed.as_secs_f64(),
        pg.transactions,
        u64::from(pg.failed),
        &pg.latency,
        None,
        format!("{scripted} round trips per transaction"),
    );
    let round_trips = serde_json::json!({
        "measured_on_the_wire": trips.total,
        "pool_pings": trips.pings,
        "pgbench_script": scripted,
        "statements": trips.sql,
    });
    Ok((row, round_trips, notes))
}
