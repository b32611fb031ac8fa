//! Seeding through the admin API, and waiting for the server's background work (pool refills,
//! first reconciliations, replenishers) to reach the state a scenario needs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use sqlx::PgPool;

use crate::{http, say};

/// The admin API, for seeding.
pub struct Admin {
    pub addr: SocketAddr,
    pub auth: String,
}

impl Admin {
    async fn put(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let body = serde_json::to_vec(body)?;
        let request = http::request(
            "PUT",
            path,
            &[
                ("authorization", &self.auth),
                ("content-type", "application/json"),
            ],
            &body,
        );
        let response = http::once(self.addr, &request).await?;
        if response.status != 200 {
            bail!(
                "PUT {path}: {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        Ok(())
    }

    pub async fn listing(&self, canonical: &str, title: &str) -> anyhow::Result<()> {
        self.put(
            &format!("/v1/admin/listings/{canonical}"),
            &serde_json::json!({ "title": title }),
        )
        .await
    }

    pub async fn tier(
        &self,
        canonical: &str,
        slug: &str,
        price: i64,
        max_installs: i64,
        low_water: i32,
        target: i32,
    ) -> anyhow::Result<()> {
        self.put(
            &format!("/v1/admin/listings/{canonical}/tiers/{slug}"),
            &serde_json::json!({
                "name": slug,
                "price": { "amount": price, "currency": "usd" },
                "max_installs": max_installs,
                "pool_low_water": low_water,
                "pool_target": target,
            }),
        )
        .await
    }
}

/// Waits until every active tier's pool is at its target.
pub async fn wait_pools_full(db: &PgPool, timeout: Duration, begun: Instant) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (short, missing): (i64, Option<i64>) = sqlx::query_as(
            "select count(*), sum(t.pool_target - a.n)::bigint from tier t
             cross join lateral (select count(*) as n from install_token it
                                 where it.tier_id = t.tier_id and it.state = 'available') a
             where t.active and a.n < t.pool_target",
        )
        .fetch_one(db)
        .await?;
        if short == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("pools not full after {timeout:?}: {short} tiers short");
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            say(
                begun,
                &format!(
                    "waiting for pools: {short} tiers short of {} tokens",
                    missing.unwrap_or(0)
                ),
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every listing had its first reconciliation (after that, the next is hours away), so
/// tokens pgbench adds with SQL are not flagged missing by one.
pub async fn wait_reconciled(db: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from listing l where not exists (
                 select 1 from job j where j.kind = 'reconcile_listing' and j.subject = l.listing_id::text
                   and j.state = 'queued' and j.due_at > now() + interval '10 minutes')",
        )
        .fetch_one(db)
        .await?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("{pending} listings not reconciled after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until replenishers are running (they call Xano); returns how many.
pub async fn wait_replenishing(db: &PgPool, timeout: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "select count(*) from job where kind = 'replenish_pool' and state = 'running'",
        )
        .fetch_one(db)
        .await?;
        if running > 0 || started.elapsed() > timeout {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
