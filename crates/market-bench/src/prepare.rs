//! The fulfilment scenarios' set-up: their tiers (sized so that pools hold every prepared purchase
//! above the low-water mark), and pending purchases made through the API and paid at the simulator
//! — for the webhook scenarios and for the success page's "paid, not delivered yet" (half as many).
//! The tiers of pgbench's replay and of the variants get a small minted pool here; their purchases
//! and tokens are made with SQL later (`pgbench::prepare`), after the first reconciliations, so no
//! reconciliation flags tokens the Xano simulator never minted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::context::Ctx;
use crate::purchases::{self, Pending};
use crate::say;
use crate::seed::{self, Admin};
use crate::server::Server;

/// Pool settings of the fulfilment tiers: sales never bring a pool below its low-water mark, so no
/// replenisher runs (and calls Xano) during scenario 1.
pub const LOW_WATER: i32 = 50;
/// The largest pool target a tier accepts.
pub const POOL_CAP: u64 = 1000;

/// The tiers of the fulfilment scenarios and of pgbench, `count` per scenario.
pub struct Tiers {
    pub fulfil: Vec<Uuid>,
    pub slow: Vec<Uuid>,
    pub defences: Vec<Uuid>,
    /// The success page's purchases paid at Stripe but not delivered.
    pub success: Vec<Uuid>,
    pub pgbench: Vec<Uuid>,
    /// The variants' (`variants.rs`): a small minted pool, then tokens added with SQL.
    pub variants: Vec<Uuid>,
    pub count: u64,
    /// When the first fulfilment tier was created: its replenisher started minting then.
    pub created: Instant,
}

/// The prepared, paid purchases of both fulfilment scenarios and their events.
pub struct Prepared {
    pub fulfil: Vec<Pending>,
    pub slow: Vec<Pending>,
    /// Paid at the simulator, never delivered: the success page fulfils them.
    pub success: Vec<Pending>,
    /// For the defences' cost (`defences::fulfilment`), fulfilled through both servers in turn.
    pub defences: Vec<Pending>,
    pub payloads: HashMap<String, String>,
    /// What filling the pools took.
    pub refill: String,
}

/// Enough tiers per fulfilment scenario that pools of at most [`POOL_CAP`] tokens hold every
/// prepared purchase above the low-water mark.
pub async fn tiers(ctx: &Ctx<'_>, admin: &Admin, db: &PgPool) -> anyhow::Result<Tiers> {
    let low_water = u64::try_from(LOW_WATER)?;
    let per_tier_max = POOL_CAP - low_water - 50;
    // Tiers for `n` purchases, and their pools' target.
    let sized = |n: u64| -> anyhow::Result<(u64, i32)> {
        let count = n.div_ceil(per_tier_max).max(2);
        let per_tier = n.div_ceil(count);
        Ok((
            count,
            i32::try_from((per_tier + low_water + 20).min(POOL_CAP))?,
        ))
    };
    let (count, target) = sized(ctx.plan.purchases)?;
    let (success_count, success_target) = sized(ctx.plan.purchases / 2)?;
    let mut sets: HashMap<&str, Vec<Uuid>> = HashMap::new();
    let created = Instant::now();
    for (canonical, n, tgt) in [
        ("bench-fulfil", count, target),
        ("bench-slow", count, target),
        ("bench-defences", count, target),
        ("bench-success", success_count, success_target),
        // pgbench's and the variants' tiers: a small minted pool, then tokens added with SQL.
        ("bench-pgbench", count, LOW_WATER),
        ("bench-variants", count, LOW_WATER),
    ] {
        ctx.xano.add_snippet(canonical, canonical);
        admin.listing(canonical, canonical).await?;
        for t in 0..n {
            admin
                .tier(
                    canonical,
                    &format!("t{t:02}"),
                    price(t)?,
                    10,
                    LOW_WATER,
                    tgt,
                )
                .await?;
        }
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "select t.tier_id from tier t join listing l using (listing_id)
             where l.canonical = $1 and t.active order by t.slug",
        )
        .bind(canonical)
        .fetch_all(db)
        .await?;
        sets.insert(canonical, ids);
    }
    say(
        ctx.begun,
        &format!(
            "{count} tiers per fulfilment scenario, pool target {target}; preparing {} purchases each while the pools fill",
            ctx.plan.purchases
        ),
    );
    Ok(Tiers {
        fulfil: sets.remove("bench-fulfil").unwrap_or_default(),
        slow: sets.remove("bench-slow").unwrap_or_default(),
        defences: sets.remove("bench-defences").unwrap_or_default(),
        success: sets.remove("bench-success").unwrap_or_default(),
        pgbench: sets.remove("bench-pgbench").unwrap_or_default(),
        variants: sets.remove("bench-variants").unwrap_or_default(),
        count,
        created,
    })
}

pub fn price(tier: u64) -> anyhow::Result<i64> {
    Ok(1000 + i64::try_from(tier)?)
}

/// Pending purchases through the API, paid at the simulator; then waits for full pools and for
/// the first reconciliations (so none runs during a measurement).
pub async fn prepare(
    ctx: &Ctx<'_>,
    server: &Server,
    db: &PgPool,
    tiers: &Tiers,
) -> anyhow::Result<Prepared> {
    let c = ctx.plan.concurrency.max(16);
    let started = Instant::now();
    let fulfil = purchases::prepare(server.addr, &tiers.fulfil, ctx.plan.purchases, c).await?;
    let slow = purchases::prepare(server.addr, &tiers.slow, ctx.plan.purchases, c).await?;
    let defences = purchases::prepare(server.addr, &tiers.defences, ctx.plan.purchases, c).await?;
    let success =
        purchases::prepare(server.addr, &tiers.success, ctx.plan.purchases / 2, c).await?;
    let secs = started.elapsed().as_secs_f64();
    let made = fulfil.len() + slow.len() + defences.len() + success.len();
    say(
        ctx.begun,
        &format!(
            "{made} checkouts in {secs:.1} s ({:.0}/s)",
            made as f64 / secs
        ),
    );
    let payloads = purchases::pay_all(
        ctx.stripe,
        fulfil.iter().chain(&slow).chain(&defences).chain(&success),
    )?;
    let fill_started = Instant::now();
    seed::wait_pools_full(db, Duration::from_secs(600), ctx.begun).await?;
    let fill_secs = tiers.created.elapsed().as_secs_f64();
    let tier_ids: Vec<Uuid> = tiers
        .fulfil
        .iter()
        .chain(&tiers.slow)
        .chain(&tiers.defences)
        .chain(&tiers.success)
        .copied()
        .collect();
    let minted: i64 = sqlx::query_scalar(
        "select count(*) from install_token where tier_id = any($1) and origin = 'minted'",
    )
    .bind(&tier_ids)
    .fetch_one(db)
    .await?;
    let refill = format!(
        "pool refill: {minted} tokens minted through the Xano simulator in {fill_secs:.1} s ({:.0}/s), {:.1} s of it after the checkouts",
        minted as f64 / fill_secs,
        fill_started.elapsed().as_secs_f64()
    );
    say(ctx.begun, &refill);
    seed::wait_reconciled(db, Duration::from_secs(60)).await?;
    Ok(Prepared {
        fulfil,
        slow,
        success,
        defences,
        payloads,
        refill,
    })
}
