//! From the measured rows to the ratios scenario/limit and the targets (reported, never
//! asserted), and the machine facts that explain them.

use anyhow::bail;
use sqlx::PgPool;

use crate::report::{Ratio, Row, Target, pooled_throughput, ratio};

/// Ratios and targets of a complete run. `extra_rss` is the server's peak outside the rows (during
/// pgbench's replay); `round_trips` is one fulfilment's on the wire.
pub fn assess(
    rows: &[Row],
    startup_median_ms: f64,
    extra_rss_mib: Option<f64>,
    round_trips: u64,
) -> anyhow::Result<(Vec<Ratio>, Vec<Target>)> {
    let find = |prefix: &str| rows.iter().find(|r| r.scenario.starts_with(prefix));
    let (Some(catalog), Some(fulfil), Some(slow), Some(tpcb)) = (
        find("catalog"),
        find("fulfilment: webhook"),
        find("fulfilment: Xano"),
        find("limit a: pgbench tpcb-like"),
    ) else {
        bail!("a scenario is missing");
    };
    let fulfil_vs_tpcb = ratio(fulfil.throughput, tpcb.throughput);
    let slow_p99 = ratio(slow.p99_ms, fulfil.p99_ms);
    let named = |name: &str, value: f64| Ratio {
        name: name.into(),
        value,
    };
    let mut ratios = vec![
        named(
            "fulfilment / limit a, tpcb-like (throughput)",
            fulfil_vs_tpcb,
        ),
        named(
            "fulfilment slow Xano / fulfilment (throughput)",
            ratio(slow.throughput, fulfil.throughput),
        ),
        named("fulfilment slow Xano / fulfilment (p99)", slow_p99),
    ];
    let (catalog_ratios, catalog_targets) = catalog_vs_healthz(rows)?;
    ratios.extend(catalog_ratios);
    ratios.extend(buyer_ratios(rows, fulfil, catalog));
    let (peak_rss, rss_measured) = peak_rss(rows, extra_rss_mib);
    let target = |name: &str, wanted: &str, measured: String, met: bool| Target {
        name: name.into(),
        wanted: wanted.into(),
        measured,
        met,
    };
    let mut targets = vec![
        target(
            "fulfilment throughput",
            ">= 0.5 x tpcb-like",
            format!(
                "{fulfil_vs_tpcb:.2} x ({:.0}/s vs {:.0}/s)",
                fulfil.throughput, tpcb.throughput
            ),
            fulfil_vs_tpcb >= 0.5,
        ),
        target(
            "round trips per fulfilment",
            "<= 3",
            format!("{round_trips} on the wire"),
            round_trips <= 3,
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
    ];
    targets.extend(catalog_targets);
    targets.extend([
        target(
            "server peak RSS, every scenario",
            "<= 64 MiB",
            rss_measured,
            peak_rss <= 64.0,
        ),
        target(
            "start-up to ready",
            "<= 1 s",
            format!("{startup_median_ms:.0} ms (median)"),
            startup_median_ms <= 1000.0,
        ),
    ]);
    Ok((ratios, targets))
}

/// The catalog against `/healthz`: throughput and p99, each side's two windows pooled.
fn catalog_vs_healthz(rows: &[Row]) -> anyhow::Result<(Vec<Ratio>, Vec<Target>)> {
    let (Some(healthz), Some(catalog)) = (pooled(rows, "limit b"), pooled(rows, "catalog")) else {
        bail!("a scenario is missing");
    };
    let throughput = ratio(catalog.throughput, healthz.throughput);
    let p99 = ratio(catalog.p99_ms, healthz.p99_ms);
    let ratios = vec![
        Ratio {
            name: "catalog / healthz (throughput)".into(),
            value: throughput,
        },
        Ratio {
            name: "catalog / healthz (p99)".into(),
            value: p99,
        },
    ];
    let targets = vec![
        Target {
            name: "catalog throughput".into(),
            wanted: ">= 0.5 x healthz".into(),
            measured: format!(
                "{throughput:.2} x ({:.0}/s vs {:.0}/s, two windows each)",
                catalog.throughput, healthz.throughput
            ),
            met: throughput >= 0.5,
        },
        Target {
            name: "catalog p99".into(),
            wanted: "<= 1.2 x healthz p99".into(),
            measured: format!(
                "{p99:.2} x ({:.2} ms vs {:.2} ms, two windows each)",
                catalog.p99_ms, healthz.p99_ms
            ),
            met: p99 <= 1.2,
        },
    ];
    Ok((ratios, targets))
}

/// Several measured windows taken as one.
struct Pooled {
    throughput: f64,
    p99_ms: f64,
}

/// The rows whose scenario starts with `prefix` (`/healthz`'s two windows, or the catalog's, taken
/// in the order H C C H), pooled: their requests over their seconds, and the p99 of all their
/// latencies together.
fn pooled(rows: &[Row], prefix: &str) -> Option<Pooled> {
    let windows = || rows.iter().filter(|r| r.scenario.starts_with(prefix));
    let mut latency = windows().next()?.latency.clone();
    for row in windows().skip(1) {
        latency.add(&row.latency).ok()?;
    }
    Some(Pooled {
        throughput: pooled_throughput(windows()),
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// Fulfilment against limit (a2), and the success page's scenarios against fulfilment and catalog.
fn buyer_ratios(rows: &[Row], fulfil: &Row, catalog: &Row) -> Vec<Ratio> {
    let find = |prefix: &str| rows.iter().find(|r| r.scenario.starts_with(prefix));
    let mut out = Vec::new();
    if let Some(a2) = find("limit a2") {
        out.push(Ratio {
            name: "fulfilment / limit a2, the service's SQL (throughput)".into(),
            value: ratio(fulfil.throughput, a2.throughput),
        });
    }
    if let Some(pending) = find("success page: paid") {
        out.push(Ratio {
            name: "success page fulfilling / fulfilment (throughput)".into(),
            value: ratio(pending.throughput, fulfil.throughput),
        });
    }
    if let Some(success) = find("success page: already") {
        out.push(Ratio {
            name: "success page fulfilled / catalog (throughput)".into(),
            value: ratio(success.throughput, catalog.throughput),
        });
    }
    out
}

/// The highest peak RSS of any scenario (or of `extra`, outside them), and what to print: where,
/// and every scenario over 64 MiB.
fn peak_rss(rows: &[Row], extra_mib: Option<f64>) -> (f64, String) {
    let (peak, at) = rows
        .iter()
        .filter_map(|r| Some((r.server_peak_rss_mib?, r.scenario.as_str())))
        .chain(extra_mib.map(|m| (m, "limit a2 (server idle)")))
        .fold((0.0, ""), |best, x| if x.0 > best.0 { x } else { best });
    let over: Vec<&str> = rows
        .iter()
        .filter(|r| r.server_peak_rss_mib.is_some_and(|m| m > 64.0))
        .map(|r| r.scenario.as_str())
        .collect();
    let measured = if over.is_empty() {
        format!("{peak:.1} MiB ({at})")
    } else {
        format!("{peak:.1} MiB ({at}); over in: {}", over.join(", "))
    };
    (peak, measured)
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
        "ssl",
        "wal_sync_method",
        "max_wal_size",
        "autovacuum",
        "shared_preload_libraries",
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
