//! Running `pgbench` and reading its per-transaction log, for both limits: (a) its built-in
//! `tpcb-like` script on a database of its own (`tpcb.rs`), and (a2) the service's own fulfilment
//! SQL replayed (`replay.rs`) against the bench's database, on purchases and tokens made here with
//! plain SQL. The same SQL-made purchases, in a second namespace, feed the scenarios that compare
//! server set-ups (`variants.rs`).
//!
//! A SQL-made purchase `n` is known by identifiers that all contain [`key`]`(n)`, its number on 12
//! digits: the purchase id, its Checkout Session, PaymentIntent and event. The replay substitutes
//! that key, so each pgbench transaction fulfils a purchase of its own.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use sqlx::PgPool;
use uuid::Uuid;

use crate::load::histogram;

/// A set of SQL-made purchases, apart from every other.
#[derive(Debug, Clone, Copy)]
pub struct Namespace {
    /// In the Stripe-like identifiers: `cs_<tag>_<key>`.
    pub tag: &'static str,
    /// The purchase id is this followed by the key.
    pub uuid_prefix: &'static str,
}

/// pgbench's replay (and the two in-process recordings, numbers 1 and 2).
pub const PGBENCH: Namespace = Namespace {
    tag: "pgb",
    uuid_prefix: "00000000-0000-4000-8000-",
};
/// The variant scenarios' purchases (instances, TLS).
pub const VARIANTS: Namespace = Namespace {
    tag: "var",
    uuid_prefix: "00000000-0000-4000-9000-",
};

/// Purchase `n`'s number as it appears in every identifier of it.
pub fn key(n: u64) -> String {
    format!("{n:012}")
}

/// The identifiers of SQL-made purchase `n`.
#[derive(Debug, Clone)]
pub struct Keys {
    pub purchase: Uuid,
    pub session: String,
    pub payment_intent: String,
    pub event: String,
}

impl Keys {
    pub fn of(ns: Namespace, n: u64) -> Self {
        let k = key(n);
        Self {
            purchase: format!("{}{k}", ns.uuid_prefix).parse().unwrap_or_default(),
            session: format!("cs_{}_{k}", ns.tag),
            payment_intent: format!("pi_{}_{k}", ns.tag),
            event: format!("evt_{}_{k}", ns.tag),
        }
    }
}

/// Creates pending purchases `first..first + count` of `ns`, spread over `tiers` (purchase `n` in
/// tier `n % tiers`), each with its Checkout Session recorded, and enough available tokens (shaped
/// as the service stores them: sealed, fingerprinted; a fulfilment never opens one, so the bytes
/// need only be of the right size and unique).
pub async fn prepare(
    db: &PgPool,
    ns: Namespace,
    tiers: &[Uuid],
    first: u64,
    count: u64,
) -> anyhow::Result<()> {
    let k = i64::try_from(tiers.len()).context("tiers")?;
    let first = i64::try_from(first)?;
    let last = first + i64::try_from(count)? - 1;
    sqlx::query(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash, checkout_session_id)
         select ($4 || lpad(n::text, 12, '0'))::uuid, t.tier_id, t.price_amount, t.currency, t.max_installs,
                sha256(convert_to($5 || n, 'UTF8')), 'cs_' || $5 || '_' || lpad(n::text, 12, '0')
         from generate_series($1::bigint, $2::bigint) n
         join (select tier_id, price_amount, currency, max_installs, (array_position($3, tier_id) - 1) as k
               from tier where tier_id = any($3)) t on t.k = n % $6",
    )
    .bind(first)
    .bind(last)
    .bind(tiers)
    .bind(ns.uuid_prefix)
    .bind(ns.tag)
    .bind(k)
    .execute(db)
    .await?;
    // Each tier gets its share and a margin, so the pool never runs dry.
    let per_tier = (last - first + 1) / k + 100;
    sqlx::query(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, state, origin)
         select t.listing_id, t.tier_id, t.max_installs, 'pgbench',
                sha256(convert_to(concat_ws('/', 's', $3, $4, t.tier_id, i), 'UTF8'))
                    || sha256(convert_to(concat_ws('/', 't', $3, $4, t.tier_id, i), 'UTF8')),
                sha256(convert_to(concat_ws('/', 'f', $3, $4, t.tier_id, i), 'UTF8')),
                'available', 'minted'
         from tier t, generate_series(1, $2) i
         where t.tier_id = any($1)",
    )
    .bind(tiers)
    .bind(per_tier)
    .bind(ns.tag)
    .bind(first)
    .execute(db)
    .await?;
    sqlx::query("analyze purchase").execute(db).await?;
    sqlx::query("analyze install_token").execute(db).await?;
    Ok(())
}

/// What pgbench measured in the window after the warm-up.
#[derive(Debug)]
pub struct PgbenchRun {
    pub transactions: u64,
    /// Transactions committed over the whole run, warm-up included (pgbench's own count).
    pub processed: u64,
    pub failed: bool,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    pub output: String,
}

/// Where pgbench connects.
#[derive(Debug, Clone, Copy)]
pub struct Database<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub name: &'a str,
}

impl<'a> Database<'a> {
    /// The server of `url` (a `postgres://` URL), and database `name` on it.
    pub fn on(url: &'a url::Url, name: &'a str) -> Self {
        Self {
            host: url.host_str().unwrap_or("127.0.0.1"),
            port: url.port().unwrap_or(5432),
            user: match url.username() {
                "" => "postgres",
                u => u,
            },
            name,
        }
    }
}

/// The transactions pgbench runs.
#[derive(Debug, Clone, Copy)]
pub enum Script<'a> {
    /// A script file of this text, written as `<name>.sql` in the work directory.
    Custom { name: &'a str, text: &'a str },
    /// One of pgbench's own (`tpcb-like`).
    Builtin(&'a str),
}

/// Runs `script` for `warmup + duration` at `clients` (`-M prepared`, like the service) with
/// `defines` (`-D`), and reads the per-transaction log.
pub async fn run(
    dir: &Path,
    db: &Database<'_>,
    script: Script<'_>,
    defines: &[(&str, String)],
    clients: usize,
    (warmup, duration): (Duration, Duration),
) -> anyhow::Result<PgbenchRun> {
    let logs = dir.join("pgbench-log");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    // Whole seconds (pgbench's -T), rounded up so the measured window lies inside the run.
    let total = (warmup + duration).as_millis().div_ceil(1000).max(1);
    let jobs = clients.clamp(1, 2);
    let mut command = tokio::process::Command::new("pgbench");
    command
        .args(["-n", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", logs.join("tx").display()))
        .args(["-h", db.host, "-p", &db.port.to_string(), "-U", db.user])
        .args(["-c", &clients.to_string(), "-j", &jobs.to_string()])
        .args(["-T", &total.to_string()]);
    for (name, value) in defines {
        command.arg("-D").arg(format!("{name}={value}"));
    }
    match script {
        Script::Custom { name, text } => {
            let file = dir.join(format!("{name}.sql"));
            std::fs::write(&file, text)?;
            command.arg("-f").arg(file);
        }
        Script::Builtin(name) => {
            command.args(["-b", name]);
        }
    }
    let out = command
        .arg(db.name)
        .output()
        .await
        .context("running pgbench (is it installed? Debian: postgresql-client)")?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && !output.contains("tps =") {
        bail!("pgbench failed: {output}");
    }
    let failed = !out.status.success() || output.contains("aborted");
    let processed = output
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split(['/', ' ']).next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let (transactions, latency, from_us, last_us) = read_logs(&logs, warmup, duration)?;
    let window_us = if failed {
        last_us.max(from_us) - from_us
    } else {
        duration.as_micros()
    };
    Ok(PgbenchRun {
        transactions,
        processed,
        failed,
        elapsed: Duration::from_micros(u64::try_from(window_us).unwrap_or(u64::MAX)),
        latency,
        output,
    })
}

/// Transactions that ended in the measured window, their latencies, the window's start and when
/// the last one ended. The window is `warmup` after pgbench's own start (when its first
/// transaction began), not after the process was spawned: pgbench's `-T` clock starts once every
/// client has connected, and connecting (TLS, on a loaded machine) once took longer than a smoke
/// run's warm-up and window together, leaving the window empty.
fn read_logs(
    logs: &Path,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<(u64, Histogram<u64>, u128, u128)> {
    // Log lines: client_id transaction_no time(us) script_no epoch_s epoch_us (when it ended).
    let mut ended = Vec::new();
    for entry in std::fs::read_dir(logs)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(Ok(time)), Some(Ok(secs)), Some(Ok(micros))) = (
                f.get(2).map(|s| s.parse::<u64>()),
                f.get(4).map(|s| s.parse::<u128>()),
                f.get(5).map(|s| s.parse::<u128>()),
            ) else {
                continue;
            };
            ended.push((secs * 1_000_000 + micros, time));
        }
    }
    let began = ended
        .iter()
        .map(|&(at, time)| at.saturating_sub(u128::from(time)))
        .min()
        .unwrap_or(0);
    let from_us = began + warmup.as_micros();
    let to_us = from_us + duration.as_micros();
    let mut latency = histogram();
    let mut transactions = 0u64;
    let mut last_us = from_us;
    for (at, time) in ended {
        if at < from_us || at > to_us {
            continue;
        }
        transactions += 1;
        last_us = last_us.max(at);
        latency.saturating_record(time.max(1));
    }
    Ok((transactions, latency, from_us, last_us))
}
