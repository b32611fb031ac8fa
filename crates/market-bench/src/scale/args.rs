//! The command line, and the sizes it comes to.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Seeds a marketplace grown large (1 000 000 purchases, 10 000 listings × 3 tiers) and measures
/// its reads: the catalog's pages, the admin purchase lists, one purchase, the sales reports, the
/// buyer portal; checks each hot query's plan; reports the server's peak RSS.
#[derive(Debug, Parser)]
#[command(name = "market-scale")]
pub struct Args {
    /// A tiny seed (1 000 purchases, 30 listings) and short windows: seconds in all (for the tests).
    #[arg(long)]
    pub smoke: bool,
    /// Purchases to seed.
    #[arg(long)]
    pub purchases: Option<u64>,
    /// Listings to seed (three tiers each).
    #[arg(long)]
    pub listings: Option<u64>,
    /// Sellers besides the house.
    #[arg(long)]
    pub sellers: Option<u64>,
    /// Measured seconds per scenario.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Warm-up seconds before each measured window.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Keep the seeded database afterwards (its name is printed): `--reuse-db NAME` measures it
    /// again without seeding.
    #[arg(long)]
    pub keep_db: bool,
    /// Measure this database, seeded by an earlier `--keep-db` run, instead of seeding a new one
    /// (it is kept). Its new migrations, if any, are applied.
    #[arg(long, value_parser = parse_db_name)]
    pub reuse_db: Option<String>,
    /// PostgreSQL server (the database name is ignored).
    #[arg(
        long,
        env = "BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
    /// The `market` binary; default: `market` next to this executable.
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// `RUST_LOG` of the server.
    #[arg(long, default_value = "warn")]
    pub server_rust_log: String,
    /// Extra server environment, `NAME=VALUE` (repeat), e.g. `MALLOC_ARENA_MAX=2`.
    #[arg(long = "server-env", value_parser = crate::parse_kv)]
    pub server_env: Vec<(String, String)>,
    /// Run only the scenarios whose name contains this (repeat); the plans are checked always.
    #[arg(long)]
    pub only: Vec<String>,
}

/// A database name is spliced into `drop database`: letters, digits and `_` only.
fn parse_db_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}`: expected a name of lowercase letters, digits and _"
        ))
    }
}

/// How much to seed and how long to measure, after `--smoke` and the defaults.
#[derive(Debug, Clone)]
pub struct Size {
    pub purchases: u64,
    pub listings: u64,
    pub sellers: u64,
    /// Distinct buyers' e-mail addresses: a buyer buys four times on average.
    pub buyers: u64,
    pub duration: Duration,
    pub warmup: Duration,
}

impl Size {
    pub fn of(args: &Args) -> Self {
        let secs = |v: Option<f64>, d: f64| Duration::from_secs_f64(v.unwrap_or(d).max(0.0));
        let (purchases, listings, sellers, duration, warmup) = if args.smoke {
            (1_000, 30, 3, 0.1, 0.05)
        } else {
            (1_000_000, 10_000, 100, 10.0, 1.0)
        };
        let purchases = args.purchases.unwrap_or(purchases).max(1);
        Self {
            purchases,
            listings: args.listings.unwrap_or(listings).max(1),
            sellers: args.sellers.unwrap_or(sellers),
            buyers: (purchases / 4).max(1),
            duration: secs(args.duration, duration),
            warmup: secs(args.warmup, warmup),
        }
    }
}
