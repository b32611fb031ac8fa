//! Token rotations, checked after settling against the Xano simulator's live tokens: a rotation
//! swaps tokens in steps (reserve, carry the installs over, delete the old one at Xano, swap in the
//! database) that crashes, kills and Xano faults interrupt anywhere, and what must hold at the end
//! is what a buyer and the seller see.
//!
//! - No rotation is left pending; every rotation a buyer was answered 202 with is recorded.
//! - A done rotation's old token is `revoked` and no longer live at Xano, and the purchase does not
//!   hold it; a purchase still fulfilled holds its newest rotation's new token. A cancelled
//!   rotation's reserved token went back to no one and is not live at Xano.
//! - Never two live tokens for a purchase at Xano (counting a token reserved for its rotation): I1
//!   in `checker.rs` counts the database's live tokens only, and a rotation is the one path that
//!   holds a second token for a purchase while the first is still live.
//! - Each token live at Xano that the database holds as `assigned` or `reserved` has its purchase's
//!   `max_installs` there (the entitlement: the tier's, or an upgrade's), an `available` one its
//!   tier's (I5 compares Xano with the token's row, this with the purchase and the tier).
//! - The installs a buyer made (`rotations.rs`) are all on the token the purchase ends with: a
//!   rotation carries them over, none lost, none invented. One loss is counted and printed, not
//!   failed: a rotation's absolute update of the new token that Xano applied after the service's
//!   client had given up on it (a latency stall), and so after the buyer had begun installing with
//!   that token, sets its count back (chaos seed 969590975487650303 met one). Xano's API has no
//!   compare-and-set; the buyer gains those installs, and never loses one.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::Checker;
use crate::driver::Driver;
use crate::tokens::Token;

/// What the summary prints about rotations.
#[derive(Debug, Default)]
pub struct RotationFigures {
    pub states: HashMap<String, u64>,
    pub carried_nonzero: u64,
    pub buyers: usize,
    pub installs_checked: usize,
    /// Buyers' installs forgotten by a late update of one of their tokens (see the module docs).
    pub forgotten: Vec<String>,
}

impl RotationFigures {
    pub fn print(&self, counters: &std::collections::BTreeMap<String, u64>) {
        println!(
            "chaos: rotations {:?} ({} with installs carried over) for {} buyers, installs checked on {}; driver {:?}",
            self.states,
            self.carried_nonzero,
            self.buyers,
            self.installs_checked,
            counters
                .iter()
                .filter(|(k, _)| k.starts_with("rotation:"))
                .collect::<Vec<_>>()
        );
        for what in &self.forgotten {
            println!("chaos: installs forgotten to a late Xano update: {what}");
        }
    }
}

#[derive(sqlx::FromRow)]
struct Rotation {
    #[sqlx(rename = "rotation_id")]
    id: Uuid,
    purchase_id: Uuid,
    old_token_id: i64,
    new_token_id: Option<i64>,
    state: String,
    installs_carried: Option<i64>,
}

pub async fn check(
    c: &mut Checker,
    db: &PgPool,
    driver: &Driver,
    xano_tokens: &HashMap<String, Vec<Value>>,
    tokens: &[Token],
    late_updates: &HashSet<String>,
) -> RotationFigures {
    let rotations: Vec<Rotation> = sqlx::query_as(
        "select rotation_id, purchase_id, old_token_id, new_token_id, state, installs_carried
         from token_rotation order by created_at",
    )
    .fetch_all(db)
    .await
    .expect("read rotations");
    let purchases: Vec<(Uuid, String, i64)> =
        sqlx::query_as("select purchase_id, status::text, max_installs from purchase")
            .fetch_all(db)
            .await
            .expect("read purchases");
    let status: HashMap<Uuid, String> = purchases.iter().map(|(p, s, _)| (*p, s.clone())).collect();
    let entitled: HashMap<Uuid, i64> = purchases.iter().map(|(p, _, m)| (*p, *m)).collect();
    let tier_installs: HashMap<Uuid, i64> =
        sqlx::query_as("select tier_id, max_installs from tier")
            .fetch_all(db)
            .await
            .expect("read tiers")
            .into_iter()
            .collect();
    // Xano's live tokens: (canonical, value) → (max_installs, current_installs).
    let mut at_xano: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    for (canonical, list) in xano_tokens {
        for t in list {
            let installs = |k: &str| t[k].as_i64().unwrap_or(-1);
            let value = t["token"].as_str().unwrap_or_default();
            at_xano.insert(
                (canonical, value),
                (installs("max_installs"), installs("current_installs")),
            );
        }
    }
    let live = |t: &Token| {
        at_xano
            .get(&(t.canonical.as_str(), t.value.as_str()))
            .copied()
    };
    let by_id: HashMap<i64, &Token> = tokens.iter().map(|t| (t.id, t)).collect();
    let assigned: HashMap<Uuid, &Token> = tokens
        .iter()
        .filter(|t| t.state == "assigned")
        .filter_map(|t| Some((t.purchase_id?, t)))
        .collect();
    let mut figures = RotationFigures::default();

    // Each rotation, and the purchase's token after its newest done one.
    let mut newest: HashMap<Uuid, &Rotation> = HashMap::new();
    for r in &rotations {
        let p = Some(r.purchase_id);
        *figures.states.entry(r.state.clone()).or_default() += 1;
        figures.carried_nonzero += u64::from(r.installs_carried.unwrap_or(0) > 0);
        let old = by_id[&r.old_token_id];
        let new = r.new_token_id.map(|id| by_id[&id]);
        c.check(r.state != "pending", p, || {
            format!("rotation {} is still pending after settling", r.id)
        });
        if r.state == "done" {
            newest.insert(r.purchase_id, r);
            c.check(old.state == "revoked" && live(old).is_none(), p, || {
                format!(
                    "rotation {} is done, but its old token {} is {} (live at Xano: {})",
                    r.id,
                    old.id,
                    old.state,
                    live(old).is_some()
                )
            });
        }
        if r.state == "cancelled"
            && let Some(new) = new
        {
            c.check(
                new.purchase_id.is_none() && live(new).is_none(),
                p,
                || {
                    format!(
                        "rotation {} was cancelled, but its reserved token {} is {} for {:?} (live at Xano: {})",
                        r.id,
                        new.id,
                        new.state,
                        new.purchase_id,
                        live(new).is_some()
                    )
                },
            );
        }
    }
    for (p, r) in &newest {
        let holds = assigned.get(p).map(|t| t.id);
        let fulfilled = status.get(p).is_some_and(|s| s == "fulfilled");
        c.check(
            holds != Some(r.old_token_id) && (!fulfilled || holds == r.new_token_id),
            Some(*p),
            || {
                format!(
                    "after rotation {} (token {} → {:?}) the {} purchase holds token {holds:?}",
                    r.id,
                    r.old_token_id,
                    r.new_token_id,
                    status.get(p).map_or("unknown", String::as_str)
                )
            },
        );
    }

    // Live at Xano: one token per purchase at most, each with its entitlement.
    let rotation_of: HashMap<Uuid, Uuid> =
        rotations.iter().map(|r| (r.id, r.purchase_id)).collect();
    let mut live_per_purchase: HashMap<Uuid, Vec<i64>> = HashMap::new();
    for t in tokens {
        let Some((max, _)) = live(t) else { continue };
        let owner = t
            .purchase_id
            .or_else(|| t.reserved_for.and_then(|r| rotation_of.get(&r).copied()));
        if let Some(owner) = owner {
            live_per_purchase.entry(owner).or_default().push(t.id);
        }
        let expected = match t.state.as_str() {
            "assigned" | "reserved" => owner.and_then(|p| entitled.get(&p)),
            "available" => t.tier_id.and_then(|tier| tier_installs.get(&tier)),
            _ => None,
        };
        if let Some(expected) = expected {
            c.check(*expected == max, owner, || {
                format!(
                    "token {} ({}) allows {max} installs at Xano, its {} {expected}",
                    t.id,
                    t.state,
                    if t.state == "available" {
                        "tier"
                    } else {
                        "purchase"
                    }
                )
            });
        }
    }
    for (p, ids) in &live_per_purchase {
        c.check(ids.len() <= 1, Some(*p), || {
            format!(
                "{} tokens of one purchase are live at Xano: {ids:?}",
                ids.len()
            )
        });
    }

    // What the buyers did: their rotations recorded, their installs on the token they end with.
    let recorded: HashMap<Uuid, BTreeSet<Uuid>> =
        rotations.iter().fold(HashMap::new(), |mut all, r| {
            all.entry(r.purchase_id).or_default().insert(r.id);
            all
        });
    let buyers = driver.rotations.all();
    figures.buyers = buyers.len();
    for (p, buyer) in &buyers {
        let known = recorded.get(p).cloned().unwrap_or_default();
        c.check(buyer.rotations.is_subset(&known), Some(*p), || {
            format!(
                "rotations answered 202 {:?}, recorded {known:?}",
                buyer.rotations
            )
        });
        // Exact only when every rotation is one the buyer waited for (an answer lost to a crash
        // may have asked for one more, which may still have run while the buyer installed).
        let token = assigned.get(p).copied();
        if buyer.finished
            && known == buyer.rotations
            && status.get(p).is_some_and(|s| s == "fulfilled")
            && let Some(token) = token
        {
            figures.installs_checked += 1;
            let installs = live(token).map(|(_, current)| current);
            let what = format!(
                "purchase {p}: the buyer made {} installs over {} rotations, its token {} shows {installs:?} at Xano",
                buyer.installs,
                known.len(),
                token.id
            );
            let late = tokens
                .iter()
                .filter(|t| t.purchase_id == Some(*p) && late_updates.contains(&t.value))
                .map(|t| t.id)
                .collect::<Vec<_>>();
            if installs.is_some_and(|n| n < buyer.installs) && !late.is_empty() {
                figures
                    .forgotten
                    .push(format!("{what}; late updates of its tokens {late:?}"));
                continue;
            }
            c.check(installs == Some(buyer.installs), Some(*p), || what);
        }
    }
    figures
}
