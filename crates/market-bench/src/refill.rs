//! Pool refill against Xano's rate limit: how close to the account's configured limit a tier's
//! empty pool is refilled, and whether Xano ever answers 429.
//!
//! Each case runs `market-core`'s own job runner in this process (the code the server runs), on a
//! database of its own (so the server's workers never claim its job) and a Xano simulator of its
//! own that enforces the same limit as the client's and answers 429 past it, with creates taking
//! 200–400 ms (150–200 ms in smoke mode, whose 1 s windows leave the limiter a 100 ms margin). The
//! set-up's calls (the snippet, the listing's first reconciliation) go through an unpaced client
//! before the limit is switched on, so the measured window starts empty.
//!
//! The rate is read from the simulator's call log: `requests` divided by the mean time from one
//! create's arrival to the arrival of the `requests`-th create after it. A sender exactly at the
//! limit takes exactly one window for each such span, and Xano's sliding window refuses any
//! shorter one, so 1.0 is the ceiling and the first window's burst, which an empty window grants
//! at once, does not flatter the figure. Wall-clock tokens per second are reported beside it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use market_core::audit::Actor;
use market_core::envelope::DataKeys;
use market_core::jobs::runner::Runner;
use market_core::listings::{self, ListingSpec};
use market_core::tiers::{self, TierSpec};
use market_core::{Canonical, Currency, JobsConfig, Market, Money, Slug, keys};
use master_api::{RateLimit, SecretString};
use sandbox::xano::{CallRecord, Endpoint, Fault, FreePlanPolicy, XanoSim, XanoSimConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::context::Ctx;
use crate::load;
use crate::report::{Check, Ratio, Row, Target};
use crate::say;

const CANONICAL: &str = "refill-bench";

/// One account's limit and the pool to refill under it.
struct Case {
    name: &'static str,
    /// The target's name (the report prints it in a narrower column).
    short: &'static str,
    requests: u32,
    per: Duration,
    tokens: i32,
    latency: (Duration, Duration),
}

/// The free plan (10 per 20 s, about a minute) and a paid limit (100 per 10 s); smoke mode scales
/// both down to 1 s windows.
fn cases(smoke: bool) -> [Case; 2] {
    let ms = Duration::from_millis;
    if smoke {
        [
            Case {
                name: "refill: free plan scaled to 5 per 1 s",
                short: "pool refill, free plan (scaled)",
                requests: 5,
                per: ms(1000),
                tokens: 15,
                latency: (ms(150), ms(200)),
            },
            Case {
                name: "refill: paid limit scaled to 20 per 1 s",
                short: "pool refill, paid limit (scaled)",
                requests: 20,
                per: ms(1000),
                tokens: 60,
                latency: (ms(150), ms(200)),
            },
        ]
    } else {
        [
            Case {
                name: "refill: free plan, 10 per 20 s",
                short: "pool refill, free plan",
                requests: 10,
                per: ms(20_000),
                tokens: 40,
                latency: (ms(200), ms(400)),
            },
            Case {
                name: "refill: paid limit, 100 per 10 s",
                short: "pool refill, paid limit",
                requests: 100,
                per: ms(10_000),
                tokens: 400,
                latency: (ms(200), ms(400)),
            },
        ]
    }
}

/// What the refill cases add to the report.
#[derive(Default)]
pub struct Refills {
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub targets: Vec<Target>,
    pub checks: Vec<Check>,
}

/// Runs every case, each on a fresh database dropped afterwards.
pub async fn run(ctx: &Ctx<'_>) -> anyhow::Result<Refills> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(ctx.database_url)
        .await?;
    let mut out = Refills::default();
    for (n, case) in cases(ctx.plan.smoke).iter().enumerate() {
        let name = format!("{}_refill{n}", ctx.db_name);
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await?;
        let mut url: url::Url = ctx.database_url.parse()?;
        url.set_path(&format!("/{name}"));
        let measured = one(ctx, case, url.as_str()).await;
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&admin)
            .await?;
        let (row, ratio, target, check) = measured.with_context(|| case.name)?;
        say(ctx.begun, &format!("{}: {}", case.name, target.measured));
        out.rows.push(row);
        out.ratios.push(ratio);
        out.targets.push(target);
        out.checks.push(check);
    }
    admin.close().await;
    Ok(out)
}

async fn one(
    ctx: &Ctx<'_>,
    case: &Case,
    database_url: &str,
) -> anyhow::Result<(Row, Ratio, Target, Check)> {
    let db = PgPoolOptions::new()
        .max_connections(8)
        .connect(database_url)
        .await?;
    market_core::MIGRATOR.run(&db).await?;
    let sim = XanoSim::start(XanoSimConfig {
        free_plan_rate_limit: false,
        free_plan_policy: FreePlanPolicy {
            requests: case.requests,
            window: case.per,
        },
        ..XanoSimConfig::default()
    })
    .await?;
    sim.add_snippet(CANONICAL, "Refill bench");
    let envelope =
        std::sync::Arc::new(keys::open(&db, DataKeys::parse(&ctx.config.data_key)?).await?);
    let jobs = JobsConfig {
        poll_interval: Duration::from_millis(50),
        ..JobsConfig::default()
    };
    let client = |limit| {
        master_api::Client::builder(SecretString::from(sim.access_token()))
            .base_url(sim.base_url())
            .rate_limit(limit)
            .build()
    };
    let setup = Market::new(
        db.clone(),
        client(RateLimit::unlimited())?,
        envelope.clone(),
        jobs.clone(),
    );
    let tier = arrange(&setup, &db, case).await?;

    // The limit on, at Xano and in a fresh client; Xano as slow as over the internet.
    sim.set_free_plan_rate_limit(true);
    sim.clear_calls();
    sim.inject(Fault::Latency {
        min: case.latency.0,
        max: case.latency.1,
        only: Some(Endpoint::CreateToken),
    });
    let market = Market::new(
        db.clone(),
        client(RateLimit::new(case.requests, case.per))?,
        envelope,
        jobs,
    );
    let started = Instant::now();
    Runner::new(market).drain().await?;
    let elapsed = started.elapsed();

    let calls = sim.calls();
    sim.stop().await;
    let outcome = assess(case, &calls, elapsed);
    let (available, done): (i64, bool) = sqlx::query_as(
        "select (select count(*) from install_token where tier_id = $1 and state = 'available'),
                coalesce((select bool_and(state = 'done') from job
                          where kind = 'replenish_pool' and subject = $1::text), false)",
    )
    .bind(tier)
    .fetch_one(&db)
    .await?;
    db.close().await;
    let check = Check {
        ok: done && available == i64::from(case.tokens) && outcome.created == case.tokens,
        text: format!(
            "{}: the pool holds {available} of {} tokens, {} created at Xano, job done: {done}",
            case.name, case.tokens, outcome.created
        ),
    };
    Ok((outcome.row, outcome.ratio, outcome.target, check))
}

/// A listing reconciled once, then a tier whose empty pool of `case.tokens` is to be refilled.
async fn arrange(market: &Market, db: &PgPool, case: &Case) -> anyhow::Result<uuid::Uuid> {
    let admin = Actor::Admin("bench".into());
    let spec = ListingSpec {
        canonical: Canonical::parse(CANONICAL)?,
        title: "Refill bench".into(),
        description: "A pool refilled under Xano's rate limit".into(),
        active: true,
    };
    listings::prepare_snippet(&market.xano, &spec).await?;
    let mut conn = db.acquire().await?;
    let (listing, _) = listings::upsert(&mut conn, &spec, &admin).await?;
    drop(conn);
    Runner::new(market.clone()).drain().await?;
    let mut conn = db.acquire().await?;
    let tier = TierSpec {
        slug: Slug::parse("solo")?,
        name: "Solo".into(),
        price: Money::new(1900, Currency::parse("usd")?)?,
        max_installs: 5,
        pool_low_water: case.tokens,
        pool_target: case.tokens,
        active: true,
    };
    let change = tiers::apply(&mut conn, listing.listing_id, &tier, &admin).await?;
    let tiers::TierChange::Created { tier_id } = change else {
        bail!("the refill tier was not created: {change:?}");
    };
    Ok(tier_id.0)
}

struct Outcome {
    created: i32,
    row: Row,
    ratio: Ratio,
    target: Target,
}

fn assess(case: &Case, calls: &[CallRecord], elapsed: Duration) -> Outcome {
    let mut creates: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::CreateToken) && c.status == 200)
        .collect();
    creates.sort_by_key(|c| c.started_at);
    let refused = calls.iter().filter(|c| c.status == 429).count();
    let failed = calls
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::CreateToken) && !matches!(c.status, 200 | 429))
        .count();
    let mut latency = load::histogram();
    for c in &creates {
        let micros = c.at.saturating_duration_since(c.started_at).as_micros();
        let _ = latency.record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
    }
    let limit = f64::from(case.requests) / case.per.as_secs_f64();
    let arrivals: Vec<Instant> = creates.iter().map(|c| c.started_at).collect();
    let rate = sustained_rate(
        &arrivals,
        usize::try_from(case.requests).unwrap_or(usize::MAX),
    );
    let ratio = rate.map_or(0.0, |r| r / limit);
    let wall = creates.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    let measured = format!(
        "{ratio:.3} x ({:.3}/s vs {limit:.3}/s), {refused} x 429",
        rate.unwrap_or(0.0)
    );
    let note = format!(
        "{} tokens in {:.1} s ({wall:.2}/s wall-clock, first window's burst included); sustained \
         {:.3}/s = {ratio:.3} x the limit of {} per {:?}; {refused} answers 429; at most {} \
         creates in flight at Xano",
        creates.len(),
        elapsed.as_secs_f64(),
        rate.unwrap_or(0.0),
        case.requests,
        case.per,
        most_in_flight(&creates)
    );
    let requests = u64::try_from(creates.len()).unwrap_or(u64::MAX);
    Outcome {
        created: i32::try_from(creates.len()).unwrap_or(i32::MAX),
        row: Row::new(
            case.name,
            most_in_flight(&creates),
            elapsed.as_secs_f64(),
            requests,
            u64::try_from(failed).unwrap_or(u64::MAX),
            &latency,
            None,
            note,
        ),
        ratio: Ratio {
            name: format!("{} / limit (sustained rate)", case.name),
            value: ratio,
        },
        target: Target {
            name: case.short.to_owned(),
            wanted: ">= 0.95 x limit, 0 x 429".into(),
            measured,
            met: ratio >= 0.95 && refused == 0,
        },
    }
}

/// `requests` over the mean time from one arrival to the `requests`-th after it; `None` with too
/// few arrivals to span one window.
fn sustained_rate(arrivals: &[Instant], requests: usize) -> Option<f64> {
    if requests == 0 || arrivals.len() <= requests {
        return None;
    }
    let spans: Vec<f64> = arrivals
        .iter()
        .zip(&arrivals[requests..])
        .map(|(a, b)| b.saturating_duration_since(*a).as_secs_f64())
        .collect();
    let mean = spans.iter().sum::<f64>() / spans.len() as f64;
    (mean > 0.0).then(|| requests as f64 / mean)
}

/// The most creates Xano was serving at one moment.
fn most_in_flight(creates: &[&CallRecord]) -> usize {
    creates
        .iter()
        .map(|c| {
            creates
                .iter()
                .filter(|d| d.started_at <= c.started_at && c.started_at < d.at)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_exactly_at_the_limit_rates_one_whatever_its_first_burst() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // 10 per 1 s: bursts of 10 at each window's start, four windows.
        let bursts: Vec<Instant> = (0..40).map(|i| at(i / 10 * 1000)).collect();

        assert_eq!(sustained_rate(&bursts, 10), Some(10.0));
        assert_eq!(sustained_rate(&bursts[..10], 10), None);
        // A window and a tenth between bursts: 1/1.1 of the limit.
        let margin: Vec<Instant> = (0..40).map(|i| at(i / 10 * 1100)).collect();
        let rate = sustained_rate(&margin, 10).unwrap();
        assert!((rate - 10.0 / 1.1).abs() < 1e-9, "{rate}");
    }
}
