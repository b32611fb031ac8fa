//! The token pool: tokens minted ahead of sales, so that fulfilment is one short PostgreSQL
//! transaction and sales go on while Xano is slow, rate-limited or down.
//!
//! Exactly-once here is a uniqueness property of PostgreSQL, not of Xano: claiming a token for a
//! purchase is an `update … where state = 'available'` on a row picked with `for update skip locked`,
//! and the partial unique index `install_token_one_live_per_purchase` makes a second live token for
//! the same purchase impossible. Pool tokens are fungible, so a token minted by a worker that then
//! died is not lost: reconciliation finds it at Xano and adopts it into the pool.

use master_api::InstallToken;
use sqlx::{PgConnection, PgPool};

use crate::audit::{Actor, Audit};
use crate::envelope::Envelope;
use crate::keys::SealedToken;
use crate::queue::{self, JobKind};
use crate::{ListingId, PurchaseId, Result, TierId, TokenId};

/// Takes the oldest available token of `tier` for `purchase`, or `None` when the pool is empty:
/// [`claim_reporting_low`] without its low-water answer.
pub async fn claim(
    conn: &mut PgConnection,
    tier: TierId,
    purchase: PurchaseId,
    max_installs: i64,
) -> Result<Option<TokenId>> {
    Ok(claim_reporting_low(conn, tier, purchase, max_installs)
        .await?
        .0)
}

/// Takes the oldest available token of `tier` for `purchase` and, in the same statement, does the
/// low-water check of [`top_up_if_low`]: the token taken, if any, and whether fewer than the tier's
/// low-water mark are left.
///
/// The caller holds the purchase row locked and marks it fulfilled in the same transaction. The SQL
/// is the database's `pool_claim` (migration 31), shared with the one-statement fulfilment
/// (`payments::one_statement`), so the claim is written once.
///
/// `max_installs` is what the purchase is entitled to: its tier's, unless an upgrade raised it
/// (migration 21), and then no token of the pool fits (the caller mints one for it).
pub async fn claim_reporting_low(
    conn: &mut PgConnection,
    tier: TierId,
    purchase: PurchaseId,
    max_installs: i64,
) -> Result<(Option<TokenId>, bool)> {
    Ok(sqlx::query_as::<_, (Option<TokenId>, bool)>(
        "select token, low from pool_claim($1, $2, $3)",
    )
    .bind(tier)
    .bind(purchase)
    .bind(max_installs)
    .fetch_one(&mut *conn)
    .await?)
}

/// Queues a replenisher for `tier` when fewer than its low-water mark of tokens are available.
/// Cheap enough for the purchase path: it counts at most `pool_low_water` index entries.
pub async fn top_up_if_low(conn: &mut PgConnection, tier: TierId) -> Result<()> {
    let low = sqlx::query_scalar::<_, bool>(
        "select (select count(*) from (
                     select 1 from install_token
                     where tier_id = t.tier_id and state = 'available'
                     limit t.pool_low_water) a) < t.pool_low_water
         from tier t
         where t.tier_id = $1 and t.active",
    )
    .bind(tier)
    .fetch_optional(&mut *conn)
    .await?;
    if low == Some(true) {
        queue::enqueue(conn, JobKind::ReplenishPool, &tier.to_string()).await?;
    }
    Ok(())
}

/// Records a token Xano just created for `tier`'s pool, sealed. Called right after Xano answers, in a
/// transaction of its own, so the window in which a crash leaves an unknown token is as short as it
/// can be. A token already known (reconciliation got there first) is left as it is; a token for a
/// tier taken off sale meanwhile is retired at once.
pub async fn record_minted(
    conn: &mut PgConnection,
    envelope: &Envelope,
    listing: ListingId,
    tier: TierId,
    token: &InstallToken,
    actor: &Actor,
) -> Result<Option<TokenId>> {
    let sealed = SealedToken::new(envelope, listing, &token.token)?;
    let row = sqlx::query_as::<_, (TokenId, bool)>(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, current_installs, state, origin)
         select $1, $2, $3, $4, $5, $6, $7,
                (case when t.active and t.max_installs = $3 then 'available' else 'retiring' end)::token_state, 'minted'
         from tier t where t.tier_id = $2
         on conflict (listing_id, token_fingerprint) do nothing
         returning install_token_id, state = 'retiring'",
    )
    .bind(listing)
    .bind(tier)
    .bind(token.max_installs)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(token.current_installs)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, retiring)) = row else {
        return Ok(None);
    };
    Audit::new(actor, "xano.token_created")
        .listing(listing)
        .tier(tier)
        .token(id)
        .write(&mut *conn)
        .await?;
    if retiring {
        queue::enqueue(conn, JobKind::DeleteToken, &id.to_string()).await?;
    }
    Ok(Some(id))
}

/// How full a tier's pool is, for operators and metrics.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PoolLevel {
    pub tier_id: TierId,
    pub listing_id: ListingId,
    pub slug: String,
    pub version: i32,
    pub active: bool,
    pub available: i64,
    pub assigned: i64,
    pub pool_low_water: i32,
    pub pool_target: i32,
}

pub async fn levels(pool: &PgPool) -> Result<Vec<PoolLevel>> {
    levels_of(pool, None).await
}

/// [`levels`] of `seller`'s tiers only, when given.
pub async fn levels_of(pool: &PgPool, seller: Option<uuid::Uuid>) -> Result<Vec<PoolLevel>> {
    Ok(sqlx::query_as::<_, PoolLevel>(
        "select t.tier_id, t.listing_id, t.slug, t.version, t.active,
                count(*) filter (where it.state = 'available') as available,
                count(*) filter (where it.state = 'assigned') as assigned,
                t.pool_low_water, t.pool_target
         from tier t
         join listing l on l.listing_id = t.listing_id
         left join install_token it on it.tier_id = t.tier_id
         where $1::uuid is null or l.seller_id = $1
         group by t.tier_id
         order by t.listing_id, t.slug, t.version",
    )
    .bind(seller)
    .fetch_all(pool)
    .await?)
}

/// How many tokens an active tier's pool holds, and its target: the metrics gauges' figures.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PoolGauge {
    pub tier_id: TierId,
    pub slug: String,
    pub available: i64,
    pub pool_target: i32,
}

/// The pools as the metrics show them, in the dashboard's words: how many active tiers are empty
/// (a target, no token), low (under the low-water mark: a refill is due) or stocked, and the
/// [`PoolGauge`] of the [`EMPTIEST`] emptiest.
#[derive(Clone, Debug, Default)]
pub struct PoolGauges {
    pub empty: i64,
    pub low: i64,
    pub stocked: i64,
    /// Emptiest first (tokens over target; a tier that wants no pool last), at most [`EMPTIEST`].
    pub emptiest: Vec<PoolGauge>,
}

/// How many tiers [`gauges`] names one by one. A gauge per tier of a 30 000-tier marketplace was
/// 60 000 series in every instance (20 MiB of its memory, `docs/PERFORMANCE.md`, "sixth
/// session") and in Prometheus; the tiers worth a look are the emptiest, and the counts say how
/// many there are.
pub const EMPTIEST: i64 = 100;

#[derive(sqlx::FromRow)]
struct GaugeRow {
    #[sqlx(flatten)]
    gauge: PoolGauge,
    empty: i64,
    low: i64,
    active: i64,
}

/// [`PoolGauges`] of the active tiers. Every instance reads this on each refresh of its gauges, so
/// it reads the available tokens alone, in the pool's own partial index, and not every sold token
/// as [`levels`] does (on a million sales that read took the cores the requests needed).
pub async fn gauges(pool: &PgPool) -> Result<PoolGauges> {
    let rows = sqlx::query_as::<_, GaugeRow>(
        "with levels as (
             select t.tier_id, t.slug, coalesce(a.available, 0) as available, t.pool_target,
                    t.pool_low_water
             from tier t
             left join (select tier_id, count(*) as available from install_token
                        where state = 'available' group by tier_id) a using (tier_id)
             where t.active
         )
         select tier_id, slug, available, pool_target,
                count(*) filter (where pool_target > 0 and available = 0) over () as empty,
                count(*) filter (where not (pool_target > 0 and available = 0)
                                   and available < pool_low_water) over () as low,
                count(*) over () as active
         from levels
         order by case when pool_target > 0 then available::float8 / pool_target
                       else 'infinity' end,
                  tier_id
         limit $1",
    )
    .bind(EMPTIEST)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(PoolGauges::default());
    };
    Ok(PoolGauges {
        empty: first.empty,
        low: first.low,
        stocked: first.active - first.empty - first.low,
        emptiest: rows.into_iter().map(|row| row.gauge).collect(),
    })
}

pub async fn available(conn: &mut PgConnection, tier: TierId) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "select count(*) from install_token where tier_id = $1 and state = 'available'",
    )
    .bind(tier)
    .fetch_one(conn)
    .await?)
}
