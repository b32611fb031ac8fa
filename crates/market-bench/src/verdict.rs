//! From the measured rows to the ratios scenario/limit and the targets (reported, never
//! asserted), and the machine facts that explain them.

use anyhow::bail;
use sqlx::PgPool;

use crate::report::{Ratio, Row, Target};

/// Ratios and targets of a complete run. `extra_rss` is the server's peak outside the rows (during
/// pgbench's set-up and run).
pub fn assess(
    rows: &[Row],
    startup_median_ms: f64,
    extra_rss_mib: Option<f64>,
) -> anyhow::Result<(Vec<Ratio>, Vec<Target>)> {
    let find = |prefix: &str| rows.iter().find(|r| r.scenario.starts_with(prefix));
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
    let fulfil_vs_pg = ratio(fulfil.throughput, pgb.throughput);
    let slow_p99 = ratio(slow.p99_ms, fulfil.p99_ms);
    let catalog_vs_healthz = ratio(catalog.throughput, healthz.throughput);
    let ratios = vec![
        Ratio {
            name: "fulfilment / pgbench (throughput)".into(),
            value: fulfil_vs_pg,
        },
        Ratio {
            name: "fulfilment slow Xano / fulfilment (throughput)".into(),
            value: ratio(slow.throughput, fulfil.throughput),
        },
        Ratio {
            name: "fulfilment slow Xano / fulfilment (p99)".into(),
            value: slow_p99,
        },
        Ratio {
            name: "catalog / healthz (throughput)".into(),
            value: catalog_vs_healthz,
        },
    ];
    let peak_rss = rows
        .iter()
        .filter_map(|r| r.server_peak_rss_mib)
        .chain(extra_rss_mib)
        .fold(0.0, f64::max);
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
                "{fulfil_vs_pg:.2} x ({:.0}/s vs {:.0}/s)",
                fulfil.throughput, pgb.throughput
            ),
            fulfil_vs_pg >= 0.6,
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
            format!("{slow_p99:.2} x ({:.1} ms)", slow.p99_ms),
            slow_p99 <= 1.2,
        ),
        target(
            "catalog throughput",
            ">= 0.5 x healthz",
            format!(
                "{catalog_vs_healthz:.2} x ({:.0}/s vs {:.0}/s)",
                catalog.throughput, healthz.throughput
            ),
            catalog_vs_healthz >= 0.5,
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
            format!("{startup_median_ms:.0} ms (median)"),
            startup_median_ms <= 1000.0,
        ),
    ];
    Ok((ratios, targets))
}

/// The median of the start-up runs.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Cores, PostgreSQL version and the settings that decide commit throughput.
pub async fn machine_facts(db: &PgPool) -> serde_json::Value {
    let mut facts = serde_json::Map::new();
    facts.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map_or(0, std::num::NonZero::get)
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
