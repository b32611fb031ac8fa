//! Limit (a): what this machine's PostgreSQL commits per second on its own — pgbench's built-in
//! `tpcb-like` (five statements, one commit per transaction: the classic write benchmark), at the
//! fulfilment scenario's concurrency, over TCP to the same server as the service (libpq's default
//! `sslmode=prefer`, as the service's default URL: TLS on loopback), on a database of its own,
//! initialised afresh each run (`pgbench -i`, rows generated server-side, then a checkpoint so the
//! initialisation's writes are not measured). It runs once the `market` servers have stopped:
//! their pools' connections would leave no room for 64 more under `max_connections = 100`.
//!
//! The scale factor is the number of `pgbench_branches` rows, and every transaction updates one
//! of them: with fewer branches than clients, transactions queue on those row locks and pgbench
//! measures its own contention instead of the machine. So the scale is at least the concurrency
//! (64 in a full run: 6.4 million accounts, about 1 GB); smoke mode uses 1.

use std::fmt::Write as _;
use std::time::Instant;

use sqlx::PgPool;

use crate::context::Ctx;
use crate::pgbench::{self, Database, Script};
use crate::report::Row;
use crate::{cpu, say};

/// The name of the tpcb-like database beside the bench's own.
pub fn database_name(bench_db: &str) -> String {
    format!("{bench_db}_tpcb")
}

/// The scale factor for `clients`: one branch per client at least.
pub fn scale(smoke: bool, clients: usize) -> usize {
    if smoke { 1 } else { clients.max(1) }
}

/// Creates and initialises the database, then runs `tpcb-like` at the plan's concurrency.
pub async fn run(ctx: &Ctx<'_>, admin: &PgPool, db: &PgPool) -> anyhow::Result<Row> {
    let name = database_name(ctx.db_name);
    let scale = scale(ctx.plan.smoke, ctx.plan.concurrency);
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(admin)
        .await?;
    sqlx::query(&format!("create database {name}"))
        .execute(admin)
        .await?;
    let url: url::Url = ctx.database_url.parse()?;
    let target = Database::on(&url, &name);
    let started = Instant::now();
    let init = tokio::process::Command::new("pgbench")
        .args(["-i", "-q", "-I", "dtGvp", "-s", &scale.to_string()])
        .args([
            "-h",
            target.host,
            "-p",
            &target.port.to_string(),
            "-U",
            target.user,
        ])
        .arg(&name)
        .output()
        .await?;
    if !init.status.success() {
        anyhow::bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    // The initialisation's dirty pages are written now, not during the measurement.
    sqlx::query("checkpoint").execute(admin).await?;
    let init_secs = started.elapsed().as_secs_f64();
    say(
        ctx.begun,
        &format!("tpcb-like: scale {scale} initialised in {init_secs:.1} s"),
    );
    // Both snapshots while pgbench runs: its backends exit with it, and their time with them.
    let probe = tokio::spawn({
        let (db, warmup, duration) = (db.clone(), ctx.plan.warmup, ctx.plan.duration);
        async move {
            tokio::time::sleep(warmup).await;
            let opened = cpu::snapshot(&db, &[]).await;
            tokio::time::sleep(duration.mul_f64(0.95)).await;
            cpu::usage(&opened, &cpu::snapshot(&db, &[]).await)
        }
    });
    let pg = pgbench::run(
        ctx.work_dir,
        &target,
        Script::Builtin("tpcb-like"),
        &[],
        ctx.plan.concurrency,
        (ctx.plan.warmup, ctx.plan.duration),
    )
    .await?;
    let mut row = Row::new(
        "limit a: pgbench tpcb-like",
        ctx.plan.concurrency,
        pg.elapsed.as_secs_f64(),
        pg.transactions,
        u64::from(pg.failed),
        &pg.latency,
        None,
        format!(
            "built-in script, -M prepared, scale {scale} ({scale} branches for {} clients), its own database initialised in {init_secs:.1} s (pgbench -i -I dtGvp, then a checkpoint), TCP to 127.0.0.1 with libpq's default sslmode=prefer",
            ctx.plan.concurrency
        ),
    );
    if pg.failed {
        let _ = write!(
            row.note,
            "; pgbench reported a failure: {}",
            pg.output
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    row.cpu = probe.await.ok();
    Ok(row)
}
