//! Limit (a): the SQL of one fulfilment, replayed by `pgbench` with a custom script against the same
//! database at the same concurrency.
//!
//! The script mirrors, statement for statement, what `market_core::payments::apply` executes for a
//! fresh, paid `checkout.session.completed` whose purchase is pending and whose tier's pool has
//! tokens (see `payments/`, `pool.rs`, `audit.rs`). Keep the two in step: the tool also runs
//! `payments::apply` once in-process through a counting proxy (`wire.rs`) and prints both counts,
//! so a drift shows up in every report.
//!
//! Each transaction takes its own purchase: the inbox insert draws the next value of a sequence
//! and returns it (`\gset`), so no extra round trip is spent picking the purchase. Purchases and
//! tokens are created beforehand with plain SQL.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use sqlx::PgPool;

use crate::load::histogram;

/// The purchase id of pgbench purchase `n`, as SQL (must match [`PURCHASE_ID`] in the script).
pub const PURCHASE_ID_SQL: &str = "('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid";

/// One fulfilment, as `payments::apply` runs it (BEGIN and COMMIT included): the fast path of a
/// pending purchase paid while its pool has tokens.
pub const SCRIPT: &str = r#"BEGIN;
insert into stripe_event (stripe_event_id, type, livemode, outcome) values ('evt_pgb_' || nextval('market_bench_pgbench_seq'), 'checkout.session.completed', false, 'processing') on conflict (stripe_event_id) do nothing returning substr(stripe_event_id, 9)::bigint as n, ('00000000-0000-4000-8000-' || lpad(substr(stripe_event_id, 9), 12, '0'))::uuid as pid \gset
insert into stripe_payment (payment_intent_id) values ('pi_pgb_' || :n) on conflict (payment_intent_id) do update set payment_intent_id = excluded.payment_intent_id returning fully_refunded, disputed;
with linked as (update purchase set checkout_session_id = coalesce(checkout_session_id, 'cs_pgb_' || :n), payment_intent_id = coalesce(payment_intent_id, 'pi_pgb_' || :n) where purchase_id = :pid and (checkout_session_id = 'cs_pgb_' || :n or (checkout_session_id is null and amount = null and currency = null)) returning *), payment as (update stripe_payment set purchase_id = coalesce(stripe_payment.purchase_id, linked.purchase_id) from linked where stripe_payment.payment_intent_id = 'pi_pgb_' || :n) select * from linked \gset p_
with claimed as (update install_token set state = 'assigned', purchase_id = :pid, assigned_at = now() where install_token_id = (select install_token_id from install_token where tier_id = :p_tier_id and state = 'available' order by install_token_id limit 1 for update skip locked) returning install_token_id) select (select install_token_id from claimed) as token, coalesce((select (select count(*) from (select 1 from install_token where tier_id = t.tier_id and state = 'available' limit t.pool_low_water + 1) a) - (select count(*) from claimed) < t.pool_low_water from tier t where t.tier_id = :p_tier_id and t.active), false) as low \gset
update purchase set status = 'fulfilled', paid_at = coalesce(paid_at, now()), fulfilled_at = coalesce(fulfilled_at, now()) where purchase_id = :pid;
insert into audit_event (actor, action, listing_id, tier_id, purchase_id, install_token_id, detail) select actor, action, listing_id, tier_id, purchase_id, install_token_id, detail from unnest(array['stripe', 'stripe', 'stripe'], array['purchase.paid', 'purchase.fulfilled', 'token.assigned'], array[null, null, null]::uuid[], array[null, null, null]::uuid[], array[:pid, :pid, :pid]::uuid[], array[null, null, :token]::bigint[], array['{"from":"pending","to":"paid"}', '{"from":"paid","to":"fulfilled"}', '{}']::jsonb[]) with ordinality as e(actor, action, listing_id, tier_id, purchase_id, install_token_id, detail, k) order by k;
update stripe_event set outcome = 'fulfilled', purchase_id = :pid where stripe_event_id = 'evt_pgb_' || :n;
COMMIT;
"#;

/// SQL commands in the script: its round trips per transaction.
pub fn script_round_trips() -> usize {
    // Every command ends with `;` or a `\gset`, one per line.
    SCRIPT.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Creates `count` pending purchases (plus two for the in-process count, `n` = 1 and 2) spread
/// over `tiers`, with enough available tokens, and the sequence the script draws from.
pub async fn prepare(db: &PgPool, tiers: &[uuid::Uuid], count: u64) -> anyhow::Result<()> {
    let k = i64::try_from(tiers.len()).context("tiers")?;
    let total = i64::try_from(count).context("count")? + 2;
    sqlx::query("drop sequence if exists market_bench_pgbench_seq")
        .execute(db)
        .await?;
    // 1 and 2 are for the in-process runs of `payments::apply`.
    sqlx::query("create sequence market_bench_pgbench_seq start 3")
        .execute(db)
        .await?;
    sqlx::query(&format!(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash, checkout_session_id)
         select {PURCHASE_ID_SQL}, t.tier_id, t.price_amount, t.currency, t.max_installs,
                sha256(n::text::bytea), 'cs_pgb_' || n
         from generate_series(1, $1) n
         join (select tier_id, price_amount, currency, max_installs, (array_position($2, tier_id) - 1) as k
               from tier where tier_id = any($2)) t on t.k = n % $3"
    ))
    .bind(total)
    .bind(tiers)
    .bind(k)
    .execute(db)
    .await?;
    // Each tier gets its share and a margin, so the pool never runs dry under pgbench either.
    let per_tier = total / k + 100;
    sqlx::query(
        // Shaped as the service stores tokens (sealed, fingerprinted); pgbench's script never
        // opens one, so the bytes need only be of the right size and unique.
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, state, origin)
         select t.listing_id, t.tier_id, t.max_installs, 'pgbench',
                sha256(convert_to('s' || t.tier_id || i, 'UTF8'))
                    || sha256(convert_to('t' || t.tier_id || i, 'UTF8')),
                sha256(convert_to('f' || t.tier_id || i, 'UTF8')),
                'available', 'minted'
         from tier t, generate_series(1, $2) i
         where t.tier_id = any($1)",
    )
    .bind(tiers)
    .bind(per_tier)
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

/// Runs the script for `warmup + duration` at `clients` and reads the per-transaction log.
pub async fn run(
    dir: &Path,
    db: &Database<'_>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<PgbenchRun> {
    let script = dir.join("fulfilment.sql");
    std::fs::write(&script, SCRIPT)?;
    let logs = dir.join("pgbench-log");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    // Whole seconds (pgbench's -T), rounded up so the measured window lies inside the run.
    let total = (warmup + duration).as_millis().div_ceil(1000).max(1);
    let jobs = clients.clamp(1, 2);
    let start = std::time::SystemTime::now();
    let out = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", logs.join("tx").display()))
        .args(["-h", db.host, "-p", &db.port.to_string(), "-U", db.user])
        .args(["-c", &clients.to_string(), "-j", &jobs.to_string()])
        .args(["-T", &total.to_string()])
        .arg("-f")
        .arg(&script)
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

    // Log lines: client_id transaction_no time(us) script_no epoch_s epoch_us.
    let start_us = start
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let from_us = start_us + warmup.as_micros();
    let to_us = from_us + duration.as_micros();
    let mut latency = histogram();
    let mut transactions = 0u64;
    let mut last_us = from_us;
    for entry in std::fs::read_dir(&logs)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 {
                continue;
            }
            let (Ok(time), Ok(secs), Ok(micros)) = (
                f[2].parse::<u64>(),
                f[4].parse::<u128>(),
                f[5].parse::<u128>(),
            ) else {
                continue;
            };
            let at = secs * 1_000_000 + micros;
            if at < from_us || at > to_us {
                continue;
            }
            transactions += 1;
            last_us = last_us.max(at);
            latency.saturating_record(time.max(1));
        }
    }
    let window_us = if failed {
        last_us - from_us
    } else {
        to_us - from_us
    };
    Ok(PgbenchRun {
        transactions,
        failed,
        elapsed: Duration::from_micros(u64::try_from(window_us).unwrap_or(u64::MAX)),
        latency,
        output,
    })
}
