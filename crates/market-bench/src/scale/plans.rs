//! Each hot query's plan, run (`explain (analyze, buffers)`) with the parameters the API would
//! send, and a failure for every one that reads `purchase`, `install_token`, `listing`, `tier` or
//! the audit log with a sequential scan, or reads a whole index to keep a few rows (a node whose
//! filter drops more than [`MOST_DROPPED`] rows: the audit trail's `… or … in (…)` did that, an
//! index scan in name and a full scan in fact): on a million purchases that is the difference
//! between a millisecond and a second.
//!
//! The admin list's statement is market-core's own (`purchases::explain_list`). The others are
//! copies of their functions' statements (named beside each): a copy can drift, so the scenarios
//! also count the sequential scans PostgreSQL made while the real statements ran (`scenarios`).
//!
//! On `--smoke`'s tiny tables a sequential scan is what the planner should choose, so there the
//! plans are made with `enable_seqscan = off`: a `Seq Scan` left in them means no index could
//! serve the query at all.

use market_core::purchases::{self, PurchaseFilter};
use market_core::{ListingId, PurchaseId, PurchaseStatus, TierId};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::chrono::{DateTime, Utc};

use super::queries::{self, Arg};
use super::samples::Samples;

/// The tables no hot path may scan whole.
const BIG: [&str; 5] = [
    "purchase",
    "install_token",
    "listing",
    "tier",
    "audit_event",
];

/// Most rows one plan node of a hot path may read and drop (`Rows Removed by Filter`).
const MOST_DROPPED: u64 = 10_000;

/// One plan to print and judge.
struct Plan {
    name: String,
    lines: Vec<String>,
    /// Whether a sequential scan on a big table fails the run (the catalog's refresh reads every
    /// listing by design, once a second per instance, off the request path).
    hot: bool,
}

/// Prints every plan with its verdict; returns the failures.
pub async fn check(
    database_url: &str,
    samples: &Samples,
    smoke: bool,
) -> anyhow::Result<Vec<String>> {
    let mut options: PgConnectOptions = database_url.parse()?;
    if smoke {
        options = options.options([("enable_seqscan", "off")]);
    }
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let mut plans = list_plans(&db, samples).await?;
    plans.extend(read_plans(&db, samples).await?);
    println!(
        "\nQuery plans{}",
        if smoke {
            " (smoke: enable_seqscan = off, so a Seq Scan means no index applies)"
        } else {
            ""
        }
    );
    let mut failures = Vec::new();
    for plan in &plans {
        let mut scans: Vec<String> = BIG
            .iter()
            .filter(|table| plan.lines.iter().any(|l| seq_scan_on(l, table)))
            .map(|table| format!("Seq Scan on {table}"))
            .collect();
        let dropped = plan
            .lines
            .iter()
            .filter_map(|l| removed(l))
            .max()
            .unwrap_or(0);
        if dropped > MOST_DROPPED {
            scans.push(format!("{dropped} rows read and dropped by a filter"));
        }
        let verdict = match (scans.is_empty(), plan.hot) {
            (true, _) => "ok: no sequential scan of a big table, no row-by-row filter".to_owned(),
            (false, false) => format!("{}, as it should (not a request's path)", scans.join(", ")),
            (false, true) => {
                failures.push(format!("{}: {}", plan.name, scans.join(", ")));
                format!("FAIL: {}", scans.join(", "))
            }
        };
        println!("\n--- {} — {verdict}", plan.name);
        for line in &plan.lines {
            println!("    {line}");
        }
    }
    db.close().await;
    Ok(failures)
}

/// Whether a plan line scans `table` sequentially (`Seq Scan on purchase p`, `Parallel Seq Scan
/// on purchase`).
fn seq_scan_on(line: &str, table: &str) -> bool {
    line.split("Seq Scan on ")
        .skip(1)
        .any(|rest| rest.split_whitespace().next() == Some(table))
}

/// The rows a plan line says its filter dropped (`Rows Removed by Filter: N`).
fn removed(line: &str) -> Option<u64> {
    line.trim()
        .strip_prefix("Rows Removed by Filter: ")?
        .parse()
        .ok()
}

/// The admin list under each filter, first pages and deep ones.
async fn list_plans(db: &PgPool, samples: &Samples) -> anyhow::Result<Vec<Plan>> {
    let first = |status: Option<&str>| -> anyhow::Result<PurchaseFilter> {
        Ok(PurchaseFilter {
            status: status.map(str::parse::<PurchaseStatus>).transpose()?,
            limit: 50,
            ..PurchaseFilter::default()
        })
    };
    let deep = samples
        .status_cursors
        .iter()
        .find(|(status, _)| status == "refunded")
        .or_else(|| samples.status_cursors.first());
    let mut filters = vec![
        ("admin list: newest".to_owned(), first(None)?),
        (
            "admin list: status=fulfilled".to_owned(),
            first(Some("fulfilled"))?,
        ),
    ];
    if let Some(cursor) = samples.cursors.first() {
        filters.push((
            "admin list: newest, a page deep in".to_owned(),
            PurchaseFilter {
                before: Some(decode_cursor(cursor)?),
                ..first(None)?
            },
        ));
    }
    if let Some((status, cursor)) = deep {
        filters.push((
            format!("admin list: status={status}, a page deep in"),
            PurchaseFilter {
                before: Some(decode_cursor(cursor)?),
                ..first(Some(status))?
            },
        ));
    }
    if let Some(email) = samples.emails.first() {
        filters.push((
            "admin list: email=".to_owned() + email,
            PurchaseFilter {
                email: Some(email.clone()),
                ..first(None)?
            },
        ));
    }
    let popular = queries::most_sold_listing(db).await?;
    filters.push((
        "admin list: listing_id= (the most sold listing)".to_owned(),
        PurchaseFilter {
            listing: Some(ListingId(popular)),
            ..first(None)?
        },
    ));
    if let Some(tier) = samples.tiers.first() {
        filters.push((
            "admin list: tier_id=".to_owned(),
            PurchaseFilter {
                tier: Some(TierId(*tier)),
                ..first(None)?
            },
        ));
    }
    if let Some(seller) = samples.sellers.first() {
        filters.push((
            "seller's list (/v1/seller/purchases)".to_owned(),
            PurchaseFilter {
                seller: Some(*seller),
                ..first(None)?
            },
        ));
    }
    let mut plans = Vec::new();
    for (name, filter) in filters {
        plans.push(Plan {
            name,
            lines: purchases::explain_list(db, &filter).await?,
            hot: true,
        });
    }
    Ok(plans)
}

/// One purchase (the admin's read and the buyer's), the portal's list, the sales reports, and the
/// catalog's refresh.
async fn read_plans(db: &PgPool, samples: &Samples) -> anyhow::Result<Vec<Plan>> {
    let purchase = samples
        .receipts
        .first()
        .map(|(id, _)| *id)
        .or_else(|| samples.purchases.first().copied())
        .unwrap_or_default();
    let email = samples.emails.first().cloned().unwrap_or_default();
    let seller = samples.sellers.first().copied().unwrap_or_default();
    let mut plans = Vec::new();
    for (name, sql, arg, hot) in queries::READS {
        let statement = format!("explain (analyze, buffers) {sql}");
        let query = sqlx::query_scalar::<_, String>(&statement);
        let query = match arg {
            Arg::Purchase => query.bind(purchase),
            Arg::Seller => query.bind(seller),
            Arg::Email => query.bind(email.clone()),
            Arg::Nothing => query,
        };
        plans.push(Plan {
            name: name.to_owned(),
            lines: query.fetch_all(db).await?,
            hot,
        });
    }
    Ok(plans)
}

/// The admin list's cursor, `<microseconds>.<purchase id>`, as its filter takes it.
fn decode_cursor(cursor: &str) -> anyhow::Result<(DateTime<Utc>, PurchaseId)> {
    let (micros, id) = cursor
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("cursor {cursor}"))?;
    let at = DateTime::from_timestamp_micros(micros.parse()?)
        .ok_or_else(|| anyhow::anyhow!("cursor {cursor}"))?;
    Ok((at, PurchaseId(id.parse()?)))
}
