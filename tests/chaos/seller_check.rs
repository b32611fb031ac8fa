//! The isolation run's timing checks: how long each buyer waited from payment to token, and where
//! the token came from.
//!
//! - **A, both runs**: every purchase is fulfilled from the pool — its token existed before the
//!   payment was recorded and no `purchase.awaiting_token` was ever audited for it, so no job was
//!   waited for — within [`Bounds::pool`] of the payment. The same bound holds in the baseline run,
//!   whatever B's and C's faults do in the second.
//! - **Run 1, every seller**: no faults, so every token within [`Bounds::pool`].
//! - **B and C, run 2**: every purchase holds its token within [`Bounds::catch_up`] of its seller's
//!   faults healing (or within [`Bounds::pool`] of its payment, if later); and their faults were
//!   felt (some purchase of each had to wait for a job), or the run proved nothing.
//!
//! "Payment" is when the Stripe simulator answered the buyer's payment (the driver's clock), "token"
//! the purchase's `fulfilled_at` (PostgreSQL's clock, on the same machine).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::Checker;
use crate::seller_buyers::Payment;
use crate::seller_faults::Healed;
use crate::sellers::Seller;

/// The stated bounds.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Payment to token for a purchase served from the pool, in both runs.
    pub pool: Duration,
    /// Heal to token for a purchase that waited out its seller's faults.
    pub catch_up: Duration,
}

/// What the database says of one paid purchase.
#[derive(Debug, sqlx::FromRow)]
struct Served {
    purchase_id: Uuid,
    status: String,
    paid_at: Option<DateTime<Utc>>,
    fulfilled_at: Option<DateTime<Utc>>,
    token_created_at: Option<DateTime<Utc>>,
    awaited: bool,
}

/// One seller's figures in one run.
#[derive(Default)]
pub struct Figures {
    pub purchases: usize,
    /// Fulfilled from the pool: no job waited for.
    pub from_pool: usize,
    /// Payment to token, in seconds, of every purchase that got its token.
    pub waits: Vec<f64>,
    /// Of the purchases that waited for a job: the latest token, in seconds after the seller's
    /// faults healed (negative: all came before).
    pub after_heal: Option<f64>,
}

impl Figures {
    fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.waits.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
    }

    pub fn line(&self) -> String {
        format!(
            "{} purchases, {} from the pool, {} with a token; payment to token p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            self.purchases,
            self.from_pool,
            self.waits.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0)
        ) + &self
            .after_heal
            .map(|s| format!("; the last that waited had it {s:.2} s after healing"))
            .unwrap_or_default()
    }
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).as_seconds_f64()
}

/// Runs the checks and returns the figures by (run, seller index).
pub async fn check(
    c: &mut Checker,
    db: &PgPool,
    sellers: &[Seller],
    paid: &[Payment],
    healed: &Healed,
    bounds: Bounds,
) -> BTreeMap<(u8, usize), Figures> {
    let ids: Vec<Uuid> = paid.iter().map(|p| p.purchase).collect();
    let served: Vec<Served> = sqlx::query_as(
        "select p.purchase_id, p.status::text as status, p.paid_at, p.fulfilled_at,
                (select min(it.created_at) from install_token it
                 where it.purchase_id = p.purchase_id) as token_created_at,
                exists (select 1 from audit_event a where a.purchase_id = p.purchase_id
                          and a.action = 'purchase.awaiting_token') as awaited
         from purchase p where p.purchase_id = any($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await
    .expect("read the purchases' times");
    let served: BTreeMap<Uuid, Served> = served.into_iter().map(|s| (s.purchase_id, s)).collect();

    let mut figures: BTreeMap<(u8, usize), Figures> = BTreeMap::new();
    let pool_bound = bounds.pool.as_secs_f64();
    for bought in paid {
        let name = &sellers[bought.seller].name;
        let Some(row) = served.get(&bought.purchase) else {
            c.check(false, Some(bought.purchase), || {
                format!("seller {name}: a paid purchase is not in the database")
            });
            continue;
        };
        let from_pool = !row.awaited
            && row
                .token_created_at
                .zip(row.paid_at)
                .is_some_and(|(token, paid)| token < paid);
        let wait = row.fulfilled_at.map(|at| secs(bought.paid_at, at));
        let entry = figures.entry((bought.run, bought.seller)).or_default();
        entry.purchases += 1;
        entry.from_pool += usize::from(from_pool);
        entry.waits.extend(wait);
        let what = |rule: &str| {
            format!(
                "run {}, seller {name}: {rule} (status {}, waited for a job: {}, payment to token {wait:?} s)",
                bought.run, row.status, row.awaited
            )
        };

        if name == "A" {
            c.check(from_pool, Some(bought.purchase), || {
                what("a purchase of A not fulfilled from the pool")
            });
        }
        if name == "A" || bought.run == 1 {
            c.check(
                wait.is_some_and(|w| w <= pool_bound),
                Some(bought.purchase),
                || what(&format!("no token within {:?} of payment", bounds.pool)),
            );
        } else if name == "B" || name == "C" {
            let heal = if name == "B" { healed.b } else { healed.c };
            let deadline = secs(bought.paid_at, heal) + bounds.catch_up.as_secs_f64();
            let refunded_first = bought.refunded && row.fulfilled_at.is_none();
            if row.awaited
                && let Some(at) = row.fulfilled_at
            {
                let after = secs(heal, at);
                entry.after_heal = Some(entry.after_heal.map_or(after, |a| a.max(after)));
            }
            c.check(
                refunded_first || wait.is_some_and(|w| w <= pool_bound.max(deadline)),
                Some(bought.purchase),
                || {
                    what(&format!(
                        "no token within {:?} of the faults healing nor {:?} of payment",
                        bounds.catch_up, bounds.pool
                    ))
                },
            );
        }
    }
    for (seller, name) in [(2, "B"), (3, "C")] {
        let waited = figures
            .get(&(2, seller))
            .map_or(0, |f| f.purchases - f.from_pool);
        c.check(waited > 0, None, || {
            format!("run 2: no purchase of {name} waited for a job: its faults were never felt")
        });
    }
    figures
}
