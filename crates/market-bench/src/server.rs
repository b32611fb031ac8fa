//! The `market` child process: configured against the in-process simulators with secrets this tool
//! knows, started, probed, measured (peak RSS) and stopped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::http;

/// Everything the child's environment is built from.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub binary: PathBuf,
    pub database_url: String,
    pub xano_base_url: String,
    pub xano_token: String,
    pub stripe_key: String,
    pub stripe_base_url: String,
    pub webhook_secret: String,
    pub admin_token: String,
    pub receipt_secret: String,
    /// `MARKET_DATA_KEY`: tokens are sealed as in production.
    pub data_key: String,
    pub rust_log: String,
    pub log_file: PathBuf,
    /// Extra variables (`MARKET_DB_MAX_CONNECTIONS=…`), passed through from `--server-env`.
    pub extra_env: Vec<(String, String)>,
}

impl ServerConfig {
    fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("{}", self.log_file.display()))?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(args)
            // Nothing from the caller's environment leaks into the measured configuration.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("XANO_ACCESS_TOKEN", &self.xano_token)
            .env("XANO_BASE_URL", &self.xano_base_url)
            .env("STRIPE_SECRET_KEY", &self.stripe_key)
            .env("STRIPE_API_BASE", &self.stripe_base_url)
            .env("STRIPE_WEBHOOK_SECRETS", &self.webhook_secret)
            .env("MARKET_ADMIN_TOKENS", format!("bench:{}", self.admin_token))
            .env("MARKET_RECEIPT_SECRET", &self.receipt_secret)
            .env("MARKET_DATA_KEY", &self.data_key)
            .env("MARKET_LOG_FORMAT", "json")
            .env("RUST_LOG", &self.rust_log)
            // The bench inserts pgbench's tokens with SQL, unknown to the Xano simulator: no second
            // reconciliation may run (and flag them missing) during the run.
            .env("MARKET_RECONCILE_MINUTES", "600")
            // Every purchase the bench prepares stays pending for minutes, which in production
            // only a buyer who never paid does: no recheck of them at Stripe may run meanwhile.
            .env("MARKET_SESSION_RECHECK_MINUTES", "600")
            .env("MARKET_SHUTDOWN_GRACE_SECS", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// `market migrate`: creates the database and applies the migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let status = self.command(&["migrate"])?.status().await?;
        if !status.success() {
            bail!("`market migrate` failed; see {}", self.log_file.display());
        }
        Ok(())
    }

    /// Starts `market serve` on a free loopback port, without rate limits: the load comes from one
    /// address, and the limits would measure themselves.
    pub fn spawn(&self) -> anyhow::Result<Server> {
        self.spawn_limited("none")
    }

    /// [`spawn`](Self::spawn) with `MARKET_RATE_LIMITS` set to `limits`.
    pub fn spawn_limited(&self, limits: &str) -> anyhow::Result<Server> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let child = self
            .command(&["serve"])?
            .env("MARKET_BIND", addr.to_string())
            .env("MARKET_METRICS_BIND", "127.0.0.1:0")
            .env("MARKET_RATE_LIMITS", limits)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("child pid")?;
        Ok(Server {
            child,
            addr,
            pid,
            started,
        })
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `market serve`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    started: Instant,
}

impl Server {
    /// Polls `/readyz` until it answers 200; returns the time since the process was spawned.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let request = http::request("GET", "/readyz", &[], b"");
        loop {
            if let Ok(response) = http::once(self.addr, &request).await
                && response.status == 200
            {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("market exited with {status} before it was ready");
            }
            if self.started.elapsed() > timeout {
                bail!("market not ready after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Forgets the peak so far (`/proc/<pid>/clear_refs`), so the next reading is this phase's.
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// Peak resident set size in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> Option<u64> {
        status_kb(self.pid, "VmHWM:").map(|kb| kb * 1024)
    }

    /// SIGTERM (the graceful path), then SIGKILL if it has not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
