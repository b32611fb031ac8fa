//! Tier upgrades, checked after settling against what Stripe said (the upgrades' own events) and the
//! Xano simulator's live tokens, not against the service's own entitlement function alone.
//!
//! - An upgrade is a purchase of its own that never holds a token: no token row names it, it is never
//!   rotated. It upgrades a purchase that is not itself an upgrade, to a tier of the same listing
//!   allowing more installs; its `max_installs` is that tier's, and the first upgrade of a purchase
//!   is charged the target's price less the base's.
//! - Its status agrees with what Stripe said about it: paid, neither refunded nor disputed, it is
//!   `fulfilled` (applied) whenever its base still holds its token; `paid` is allowed only when
//!   the base closed before it could be applied (it stays for an operator to refund).
//! - For every purchase holding an assigned token, the entitlement is what Stripe says: the base
//!   tier's installs, or the highest of its upgrades paid and neither refunded nor disputed; the
//!   database's `purchase_entitlement()` agrees; the purchase's `max_installs` is the entitlement, or
//!   the installs used at Xano when a reversed upgrade left more used than the entitlement allows
//!   (never lowered below what is used); and the token's limit at Xano is exactly the purchase's
//!   `max_installs` (the database's token row is compared in `checker.rs`, I5).
//! - The installs a buyer made (`upgrades.rs`) are all on the token the purchase ends with. A count
//!   a late Xano update set back is counted and printed apart, as in `rotation_check.rs`.
//!
//! The upgrades' email (one `upgraded` per applied upgrade, one `upgrade_reversed` per upgrade closed
//! after it was paid, exactly once at the SMTP server) is checked in `mail_check.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::Checker;
use crate::driver::Driver;
use crate::tokens::Token;
use crate::truth::Truth;

/// What the summary prints about upgrades.
#[derive(Debug, Default)]
pub struct UpgradeFigures {
    /// Upgrade purchases by status.
    pub statuses: BTreeMap<String, u64>,
    /// Purchases holding a token whose limit an upgrade raised (now standing).
    pub raised: u64,
    /// Purchases whose limit is held at the installs used, above their entitlement.
    pub held_at_used: u64,
    pub limits_checked: u64,
    pub installs_checked: u64,
    /// Buyers' installs forgotten by a late update of their token.
    pub forgotten: Vec<String>,
}

impl UpgradeFigures {
    pub fn print(&self, counters: &BTreeMap<String, u64>) {
        println!(
            "chaos: upgrades {:?}; {} purchases with an upgrade standing, {} held at the installs used; limits checked on {} tokens, installs on {} buyers; driver {:?}",
            self.statuses,
            self.raised,
            self.held_at_used,
            self.limits_checked,
            self.installs_checked,
            counters
                .iter()
                .filter(|(k, _)| k.starts_with("upgrade:"))
                .collect::<Vec<_>>()
        );
        for what in &self.forgotten {
            println!("chaos: installs forgotten to a late Xano update: {what}");
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    purchase_id: Uuid,
    upgrade_of: Option<Uuid>,
    status: String,
    max_installs: i64,
    amount: i64,
    entitled: i64,
    listing_id: Uuid,
    tier_installs: i64,
    tier_price: i64,
}

pub async fn check(
    c: &mut Checker,
    db: &PgPool,
    driver: &Driver,
    xano_tokens: &HashMap<String, Vec<Value>>,
    tokens: &[Token],
    late_updates: &HashSet<String>,
) -> UpgradeFigures {
    let rows: Vec<Row> = sqlx::query_as(
        "select p.purchase_id, p.upgrade_of, p.status::text as status, p.max_installs, p.amount,
                purchase_entitlement(p.purchase_id) as entitled, t.listing_id,
                t.max_installs as tier_installs, t.price_amount as tier_price
         from purchase p join tier t using (tier_id)",
    )
    .fetch_all(db)
    .await
    .expect("read purchases");
    let rotated: HashSet<Uuid> = sqlx::query_scalar("select purchase_id from token_rotation")
        .fetch_all(db)
        .await
        .expect("read rotations")
        .into_iter()
        .collect();
    let by_id: HashMap<Uuid, &Row> = rows.iter().map(|r| (r.purchase_id, r)).collect();
    let mut upgrades_of: HashMap<Uuid, Vec<&Row>> = HashMap::new();
    for r in &rows {
        if let Some(base) = r.upgrade_of {
            upgrades_of.entry(base).or_default().push(r);
        }
    }
    let assigned: HashMap<Uuid, &Token> = tokens
        .iter()
        .filter(|t| t.state == "assigned")
        .filter_map(|t| Some((t.purchase_id?, t)))
        .collect();
    let named: HashSet<Uuid> = tokens.iter().filter_map(|t| t.purchase_id).collect();
    // Xano's live tokens: (canonical, value) → (max_installs, current_installs).
    let mut at_xano: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    for (canonical, list) in xano_tokens {
        for t in list {
            let n = |k: &str| t[k].as_i64().unwrap_or(-1);
            let value = t["token"].as_str().unwrap_or_default();
            at_xano.insert(
                (canonical, value),
                (n("max_installs"), n("current_installs")),
            );
        }
    }
    let mut figures = UpgradeFigures::default();

    // Each upgrade.
    for u in rows.iter().filter(|r| r.upgrade_of.is_some()) {
        let p = Some(u.purchase_id);
        *figures.statuses.entry(u.status.clone()).or_default() += 1;
        let base = u.upgrade_of.and_then(|b| by_id.get(&b).copied());
        c.check(!named.contains(&u.purchase_id), p, || {
            "an upgrade holds a token of its own".to_owned()
        });
        c.check(!rotated.contains(&u.purchase_id), p, || {
            "an upgrade was rotated".to_owned()
        });
        let Some(base) = base else {
            c.check(false, p, || "an upgrade of an unknown purchase".to_owned());
            continue;
        };
        c.check(
            base.upgrade_of.is_none()
                && base.listing_id == u.listing_id
                && u.tier_installs > base.tier_installs
                && u.max_installs == u.tier_installs,
            p,
            || {
                format!(
                    "upgrade of {} to {} installs (its tier {}), from a tier of {} installs of listing {} (upgrade's listing {})",
                    base.purchase_id,
                    u.max_installs,
                    u.tier_installs,
                    base.tier_installs,
                    base.listing_id,
                    u.listing_id
                )
            },
        );
        if upgrades_of.get(&base.purchase_id).map(Vec::len) == Some(1) {
            c.check(u.amount == u.tier_price - base.amount, p, || {
                format!(
                    "the upgrade charges {}, the target's price {} less the base's {}",
                    u.amount, u.tier_price, base.amount
                )
            });
        }
        let truth = Truth::of(&driver.pump.events_of(u.purchase_id));
        let base_holds = assigned.contains_key(&base.purchase_id);
        let expected: &[&str] = match truth.statuses() {
            ["fulfilled"] if !base_holds => &["fulfilled", "paid"],
            other => other,
        };
        c.check(expected.contains(&u.status.as_str()), p, || {
            format!(
                "upgrade status {} but Stripe says {truth:?} and its base {} {} its token (expected one of {expected:?})",
                u.status,
                base.status,
                if base_holds { "holds" } else { "does not hold" }
            )
        });
    }

    // Each purchase holding a token: its limits, here and at Xano.
    for (purchase, token) in &assigned {
        let Some(row) = by_id.get(purchase) else {
            continue;
        };
        let p = Some(*purchase);
        let ups = upgrades_of.get(purchase).cloned().unwrap_or_default();
        let entitled = ups
            .iter()
            .filter(|u| Truth::of(&driver.pump.events_of(u.purchase_id)).owed_a_token())
            .map(|u| u.tier_installs)
            .fold(row.tier_installs, i64::max);
        figures.limits_checked += 1;
        figures.raised += u64::from(entitled > row.tier_installs);
        figures.held_at_used += u64::from(row.max_installs > entitled);
        c.check(row.entitled == entitled, p, || {
            format!(
                "purchase_entitlement() says {}, Stripe's word on its {} upgrades {entitled}",
                row.entitled,
                ups.len()
            )
        });
        let Some((max, current)) = at_xano
            .get(&(token.canonical.as_str(), token.value.as_str()))
            .copied()
        else {
            continue; // I2 in `checker.rs`.
        };
        let late = if late_updates.contains(&token.value) {
            "; an update of this token reached Xano after its client gave up"
        } else {
            ""
        };
        c.check(max == row.max_installs, p, || {
            format!(
                "token {} allows {max} installs at Xano, its purchase {} (entitled to {entitled}){late}",
                token.id, row.max_installs
            )
        });
        let expected = entitled.max(current);
        if row.max_installs != expected && late_updates.contains(&token.value) {
            figures.forgotten.push(format!(
                "purchase {purchase}: max_installs {} for entitlement {entitled} and {current} installs at Xano; a late update of token {}",
                row.max_installs, token.id
            ));
            continue;
        }
        c.check(row.max_installs == expected, p, || {
            format!(
                "max_installs {} but entitled to {entitled} with {current} installs used at Xano (token {})",
                row.max_installs, token.id
            )
        });
    }

    // What the buyers did: their installs on the token they end with.
    for (base, buyer) in driver.upgrades.all() {
        let Some(token) = assigned.get(&base).copied() else {
            continue;
        };
        let fulfilled = by_id.get(&base).is_some_and(|r| r.status == "fulfilled");
        if !buyer.finished || !fulfilled {
            continue;
        }
        figures.installs_checked += 1;
        let installs = at_xano
            .get(&(token.canonical.as_str(), token.value.as_str()))
            .map(|(_, current)| *current);
        let what = format!(
            "purchase {base} ({:?}, upgrade {:?}): the buyer made {} installs, its token {} shows {installs:?} at Xano",
            buyer.variant, buyer.upgrade, buyer.installs, token.id
        );
        let late: Vec<i64> = tokens
            .iter()
            .filter(|t| t.purchase_id == Some(base) && late_updates.contains(&t.value))
            .map(|t| t.id)
            .collect();
        if installs.is_some_and(|n| n < buyer.installs) && !late.is_empty() {
            figures
                .forgotten
                .push(format!("{what}; late updates of its tokens {late:?}"));
            continue;
        }
        c.check(installs == Some(buyer.installs), Some(base), || what);
    }
    figures
}
