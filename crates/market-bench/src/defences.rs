//! What the security defences cost, measured in the same run as what they guard.
//!
//! - **Rate limiting**: a second `market` process on the same database with per-client limits on
//!   for every class, set so high that the bench's one address never meets them: every request
//!   pays the limiter's check and none is refused. The catalog is read from the unlimited server,
//!   then the limited one, then the unlimited one again (the baseline is the mean of the two, so
//!   drift during the run does not pose as cost). A set of purchases of its own is fulfilled in
//!   four equal parts, through the unlimited, limited, limited and unlimited server (ABBA): the
//!   pools' indexes fill with claimed tokens as a run goes on, and a later part is slower whichever
//!   server takes it; ABBA cancels that drift. (The webhook route is not rate limited, by design:
//!   the figure shows that it stays so.)
//! - **Sealing**: install tokens are sealed once when minted (off the purchase path) and opened
//!   once per receipt read. The service's own envelope seals and opens a token-sized value in this
//!   process, and the time per operation is set against a fulfilment's and a catalog read's.

use std::time::{Duration, Instant};

use market_core::envelope::{DataKeys, Envelope};

use std::collections::HashMap;

use sqlx::PgPool;

use crate::purchases::Pending;
use crate::report::{Check, Ratio, Row, Target, pooled_throughput, ratio};
use crate::server::{Server, ServerConfig};
use crate::{Plan, scenarios};

/// Limits that exist but that one address never meets: a burst of a billion per second.
pub const NEVER_MET: &str = "checkout=1000000000/1,success_page=1000000000/1,\
                             purchase_read=1000000000/1,catalog=1000000000/1";

/// The rate-limited server, ready.
pub async fn limited_server(config: &ServerConfig) -> anyhow::Result<Server> {
    let mut limited = config.spawn_limited(NEVER_MET)?;
    limited.wait_ready(Duration::from_secs(30)).await?;
    Ok(limited)
}

/// Catalog reads through the rate-limited server, then again through the unlimited one (the
/// caller has just read it there).
pub async fn catalog(plan: &Plan, db: &PgPool, unlimited: &Server, limited: &Server) -> (Row, Row) {
    let on = scenarios::fixed_request(
        limited,
        db,
        plan,
        "defences: catalog, rate limits on",
        "/v1/listings",
    )
    .await;
    let again = scenarios::fixed_request(
        unlimited,
        db,
        plan,
        "defences: catalog again, rate limits off",
        "/v1/listings",
    )
    .await;
    (on, again)
}

/// The defences' purchases fulfilled in four parts, through `[unlimited, limited]` as A, B, B, A.
pub async fn fulfilment(
    plan: &Plan,
    webhook_secret: &str,
    db: &PgPool,
    servers: [&Server; 2],
    purchases: &[Pending],
    payloads: &HashMap<String, String>,
) -> anyhow::Result<(Vec<Row>, Vec<Check>)> {
    let part = purchases.len().div_ceil(4).max(1);
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for (i, chunk) in purchases.chunks(part).enumerate() {
        let (server, name) = match i {
            1 | 2 => (
                servers[1],
                format!("defences: fulfilment {}, limits on", i + 1),
            ),
            _ => (
                servers[0],
                format!("defences: fulfilment {}, limits off", i + 1),
            ),
        };
        let (row, check) =
            scenarios::fulfilment(&[server], db, plan, &name, chunk, payloads, webhook_secret)
                .await?;
        rows.push(row);
        checks.push(check);
    }
    Ok((rows, checks))
}

/// Microseconds to seal and to open one token-sized value with the service's envelope.
pub fn sealing_micros(data_key: &str, rounds: u32) -> anyhow::Result<(f64, f64)> {
    let envelope = Envelope::new(DataKeys::parse(data_key)?, &[7; 32]);
    let token = b"tok_0123456789abcdef0123456789abcdef";
    let started = Instant::now();
    let mut sealed = Vec::with_capacity(rounds as usize);
    for i in 0..rounds {
        sealed.push(envelope.seal(&format!("install_token/{i}"), token)?);
    }
    let seal = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    let started = Instant::now();
    for (i, s) in sealed.iter().enumerate() {
        envelope.open(&format!("install_token/{i}"), s)?;
    }
    let open = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    Ok((seal, open))
}

/// The ratios and targets: throughput with the defence over throughput without, each `>= 0.95`.
pub fn assess(
    rows: &[Row],
    (seal_us, open_us): (f64, f64),
) -> anyhow::Result<(Vec<Ratio>, Vec<Target>, Vec<String>)> {
    let find = |prefix: &str| rows.iter().find(|r| r.scenario.starts_with(prefix));
    let (Some(catalog), Some(catalog_again), Some(catalog_on), Some(fulfil)) = (
        find("catalog: "),
        find("defences: catalog again"),
        find("defences: catalog, rate limits on"),
        find("fulfilment: webhook"),
    ) else {
        anyhow::bail!("a defences scenario is missing");
    };
    let parts = |suffix: &'static str| {
        rows.iter().filter(move |r| {
            r.scenario.starts_with("defences: fulfilment") && r.scenario.ends_with(suffix)
        })
    };
    if parts("limits on").count() == 0 || parts("limits off").count() == 0 {
        anyhow::bail!("a defences fulfilment part is missing");
    }
    let catalog_base = f64::midpoint(catalog.throughput, catalog_again.throughput);
    let catalog_cost = ratio(catalog_on.throughput, catalog_base);
    let fulfil_on = pooled_throughput(parts("limits on"));
    let fulfil_off = pooled_throughput(parts("limits off"));
    let fulfil_cost = ratio(fulfil_on, fulfil_off);
    // A fulfilment's and a catalog read's service time per connection, from the same run.
    let per_request_us = |row: &Row| ratio(1e6 * row.concurrency as f64, row.throughput);
    let seal_share = ratio(seal_us, per_request_us(fulfil));
    let open_share = ratio(open_us, per_request_us(catalog));
    let ratios = vec![
        Ratio {
            name: "catalog rate-limited / unlimited (throughput)".into(),
            value: catalog_cost,
        },
        Ratio {
            name: "fulfilment rate-limited / unlimited (throughput)".into(),
            value: fulfil_cost,
        },
    ];
    let target = |name: &str, value: f64, on: f64, off: f64| Target {
        name: name.into(),
        wanted: ">= 0.95 x without".into(),
        measured: format!("{value:.3} x ({on:.0}/s vs {off:.0}/s)"),
        met: value >= 0.95,
    };
    let targets = vec![
        target(
            "catalog with rate limiting",
            catalog_cost,
            catalog_on.throughput,
            catalog_base,
        ),
        target(
            "fulfilment with rate limiting",
            fulfil_cost,
            fulfil_on,
            fulfil_off,
        ),
        Target {
            name: "sealing, per token".into(),
            wanted: "<= 5 % of a request".into(),
            measured: format!(
                "seal {seal_us:.2} µs = {:.3} % of a fulfilment; open {open_us:.2} µs = {:.3} % of a catalog read (the cheapest request)",
                seal_share * 100.0,
                open_share * 100.0
            ),
            met: seal_share <= 0.05 && open_share <= 0.05,
        },
    ];
    let notes = vec![format!(
        "sealing: {seal_us:.2} µs per token sealed (once per token minted, off the purchase path), \
         {open_us:.2} µs per token opened (once per receipt read); fulfilment and the catalog \
         open none"
    )];
    Ok((ratios, targets, notes))
}
