//! Where the machine's time went during a scenario, so a report can say why a figure stops rising:
//! the CPU of each `market` process, of PostgreSQL for this run (the backends of its databases,
//! and the server's own processes: WAL writer, checkpointer, autovacuum launcher), of backends of
//! other databases (someone else's work on the same server), of this tool (load generator and
//! simulators), of every other process, and what was left idle, all as shares of the whole machine
//! (`/proc/stat`); and PostgreSQL's commits and WAL flushes per second (`pg_stat_database`,
//! `pg_stat_wal`, the whole server's), which show when commits wait on the disk's sync, and the WAL
//! written per commit (what one transaction costs the disk: tpcb-like's against a sale's). A share
//! of "other" or "postgres, other databases" above a few percent means the machine was not quiet.
//!
//! PostgreSQL publishes its statistics lazily (each backend at most once a second), so the rates
//! are right to within about a second's worth over a ten-second window.

use std::time::Instant;

use serde::Serialize;
use sqlx::PgPool;

/// Cumulative counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    servers: Vec<u64>,
    postgres: u64,
    postgres_other: u64,
    bench: u64,
    /// Machine-wide ticks: all, and idle (idle + iowait).
    total: u64,
    idle: u64,
    commits: i64,
    wal_syncs: i64,
    wal_bytes: i64,
}

/// Shares of the machine over a window (percent of all cores), and PostgreSQL's rates.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub seconds: f64,
    /// One per `market` process, in the order given.
    pub servers_pct: Vec<f64>,
    pub postgres_pct: f64,
    /// Backends of databases other than this run's.
    pub postgres_other_pct: f64,
    pub bench_pct: f64,
    /// Every other process on the machine.
    pub other_pct: f64,
    pub idle_pct: f64,
    pub commits_per_s: f64,
    pub wal_syncs_per_s: f64,
    pub wal_mib_per_s: f64,
}

impl Usage {
    /// One line for the report.
    pub fn describe(&self) -> String {
        let servers: Vec<String> = self.servers_pct.iter().map(|p| format!("{p:.0}")).collect();
        format!(
            "CPU % of the machine: market {} (sum {:.0}), postgres {:.0}, bench {:.0}, idle {:.0}; \
             not this run's: postgres {:.0}, other processes {:.0}; PostgreSQL {:.0} commits/s, \
             {:.0} WAL syncs/s ({:.1} commits per sync), {:.1} MiB WAL/s ({:.1} KiB per commit)",
            if servers.is_empty() {
                "-".to_owned()
            } else {
                servers.join("+")
            },
            self.servers_pct.iter().fold(0.0, |a, b| a + b),
            self.postgres_pct,
            self.bench_pct,
            self.idle_pct,
            self.postgres_other_pct,
            self.other_pct,
            self.commits_per_s,
            self.wal_syncs_per_s,
            if self.wal_syncs_per_s > 0.0 {
                self.commits_per_s / self.wal_syncs_per_s
            } else {
                0.0
            },
            self.wal_mib_per_s,
            if self.commits_per_s > 0.0 {
                self.wal_mib_per_s * 1024.0 / self.commits_per_s
            } else {
                0.0
            }
        )
    }

    /// The machine's CPU time per request at `per_s` requests a second, in milliseconds, by
    /// process: what a closed loop's latency is made of once every core is busy (a request at
    /// concurrency `c` waits behind `c - 1` others for the cores).
    pub fn per_request(&self, per_s: f64) -> String {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
        let ms = |pct: f64| {
            if per_s > 0.0 {
                pct / 100.0 * cores * 1000.0 / per_s
            } else {
                0.0
            }
        };
        let market = self.servers_pct.iter().fold(0.0, |a, b| a + b);
        format!(
            "CPU ms per request ({cores:.0} cores): market {:.3}, postgres {:.3}, bench {:.3}, \
             other {:.3}; idle {:.0} % of the machine",
            ms(market),
            ms(self.postgres_pct),
            ms(self.bench_pct),
            ms(self.other_pct + self.postgres_other_pct),
            self.idle_pct
        )
    }
}

/// The counters now, for the `market` processes `servers`.
pub async fn snapshot(db: &PgPool, servers: &[u32]) -> Snapshot {
    let (commits, wal_syncs, wal_bytes): (i64, i64, i64) = sqlx::query_as(
        "select (select sum(xact_commit)::bigint from pg_stat_database),
                wal_sync::bigint, wal_bytes::bigint from pg_stat_wal",
    )
    .fetch_one(db)
    .await
    .unwrap_or_default();
    // Backends of other databases; this run's are named after the bench's database.
    let others: Vec<i32> = sqlx::query_scalar(
        "select pid from pg_stat_activity
         where datname is not null and datname not like current_database() || '%'",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default();
    let others: Vec<u32> = others
        .into_iter()
        .filter_map(|p| u32::try_from(p).ok())
        .collect();
    let (total, idle) = machine_ticks().unwrap_or_default();
    let (postgres, postgres_other) = postgres_ticks(&others);
    Snapshot {
        at: Instant::now(),
        servers: servers.iter().map(|&p| ticks(p).unwrap_or(0)).collect(),
        postgres,
        postgres_other,
        bench: ticks(std::process::id()).unwrap_or(0),
        total,
        idle,
        commits,
        wal_syncs,
        wal_bytes,
    }
}

/// Where the machine's time went while `measured` ran, from `warmup` after its start (when a load
/// run's measured window opens) to its end, for the `market` processes `servers`; with
/// `measured`'s output. `None` when the opening snapshot's task failed.
pub async fn during<T>(
    db: &PgPool,
    servers: &[u32],
    warmup: std::time::Duration,
    measured: impl std::future::Future<Output = T>,
) -> (T, Option<Usage>) {
    let (probe_db, probe_pids) = (db.clone(), servers.to_vec());
    let opened = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        snapshot(&probe_db, &probe_pids).await
    });
    let output = measured.await;
    let closed = snapshot(db, servers).await;
    let usage = opened.await.ok().map(|o| usage(&o, &closed));
    (output, usage)
}

/// What happened between two snapshots.
pub fn usage(a: &Snapshot, b: &Snapshot) -> Usage {
    let seconds = b.at.saturating_duration_since(a.at).as_secs_f64();
    let all = b.total.saturating_sub(a.total).max(1) as f64;
    let pct = |x: u64, y: u64| 100.0 * y.saturating_sub(x) as f64 / all;
    let servers_pct: Vec<f64> = a
        .servers
        .iter()
        .zip(&b.servers)
        .map(|(x, y)| pct(*x, *y))
        .collect();
    let known = servers_pct.iter().fold(0.0, |a, b| a + b)
        + pct(a.postgres, b.postgres)
        + pct(a.postgres_other, b.postgres_other)
        + pct(a.bench, b.bench)
        + pct(a.idle, b.idle);
    let rate = |x: i64, y: i64| {
        if seconds > 0.0 {
            (y - x).max(0) as f64 / seconds
        } else {
            0.0
        }
    };
    Usage {
        seconds,
        servers_pct,
        postgres_pct: pct(a.postgres, b.postgres),
        postgres_other_pct: pct(a.postgres_other, b.postgres_other),
        bench_pct: pct(a.bench, b.bench),
        other_pct: (100.0 - known).max(0.0),
        idle_pct: pct(a.idle, b.idle),
        commits_per_s: rate(a.commits, b.commits),
        wal_syncs_per_s: rate(a.wal_syncs, b.wal_syncs),
        wal_mib_per_s: rate(a.wal_bytes, b.wal_bytes) / (1024.0 * 1024.0),
    }
}

/// utime + stime of a process, in clock ticks.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line; 12 and 13 after the name and the state.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The ticks of every `postgres` process: those not in `others`, and those in it.
fn postgres_ticks(others: &[u32]) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .fold((0, 0), |(ours, theirs), pid| {
            let t = ticks(pid).unwrap_or(0);
            if others.contains(&pid) {
                (ours, theirs + t)
            } else {
                (ours + t, theirs)
            }
        })
}

/// All and idle (idle + iowait) ticks of the machine, from `/proc/stat`'s first line.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).unwrap_or(&0);
    Some((total, idle))
}
