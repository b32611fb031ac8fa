//! I1–I5 per seller. The invariants are checked by the suite's own checker (`checker.rs`, over
//! every purchase, token and listing of the run); this splits what it saw by seller, so the report
//! shows each seller's purchases, what they are owed and hold, its tokens live at Xano against the
//! database's, and which seller any violation belongs to. A seller whose faults broke an invariant
//! shows it on its own line, and so does a seller broken by another's faults.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use crate::checker::Violation;
use crate::driver::Driver;
use crate::sellers::Seller;
use crate::tokens::Token;
use crate::truth::Truth;

/// One seller's share of the checker's view.
#[derive(Default, Debug)]
pub struct Share {
    pub purchases: usize,
    /// Paid, neither refunded nor disputed (what Stripe said).
    pub owed: usize,
    /// Owed, and holding exactly one assigned token, live at Xano.
    pub holding: usize,
    pub refunded: usize,
    /// Of the refunded: those holding a live token in the database or at Xano (must be none).
    pub refunded_live: usize,
    pub live_at_xano: usize,
    /// `available`, `assigned` or `foreign` in the database.
    pub live_in_db: usize,
    pub violations: Vec<String>,
}

impl Share {
    pub fn line(&self) -> String {
        format!(
            "{} purchases, {} owed a token and {} holding exactly one live at Xano, {} refunded ({} with a live token); tokens live at Xano {} / in the database {}; violations {}",
            self.purchases,
            self.owed,
            self.holding,
            self.refunded,
            self.refunded_live,
            self.live_at_xano,
            self.live_in_db,
            self.violations.len()
        )
    }
}

/// Splits the run's purchases, tokens and violations by seller (in the order of `sellers`; a last
/// share, "fleet", holds violations of no seller's).
pub fn shares(
    sellers: &[Seller],
    driver: &Driver,
    tokens: &[Token],
    xano_tokens: &HashMap<String, Vec<Value>>,
    violations: &[Violation],
) -> Vec<Share> {
    let seller_of_tier: HashMap<Uuid, usize> = sellers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.tiers.iter().map(move |t| (*t, i)))
        .collect();
    let seller_of_canonical: HashMap<&str, usize> = sellers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.canonicals.iter().map(move |c| (c.as_str(), i)))
        .collect();
    let seller_of_purchase: HashMap<Uuid, usize> = driver
        .purchases
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r.purchase, *seller_of_tier.get(&r.tier)?)))
        .collect();
    let at_xano: HashSet<(&str, &str)> = xano_tokens
        .iter()
        .flat_map(|(canonical, list)| {
            list.iter()
                .filter_map(move |t| Some((canonical.as_str(), t["token"].as_str()?)))
        })
        .collect();

    let mut shares: Vec<Share> = (0..=sellers.len()).map(|_| Share::default()).collect();
    let mut held: HashMap<Uuid, Vec<&Token>> = HashMap::new();
    for token in tokens {
        if let Some(p) = token.purchase_id {
            held.entry(p).or_default().push(token);
        }
        let Some(&s) = seller_of_canonical.get(token.canonical.as_str()) else {
            continue;
        };
        if matches!(token.state.as_str(), "available" | "assigned" | "foreign") {
            shares[s].live_in_db += 1;
        }
    }
    for (canonical, list) in xano_tokens {
        if let Some(&s) = seller_of_canonical.get(canonical.as_str()) {
            shares[s].live_at_xano += list.len();
        }
    }
    for (&purchase, &s) in &seller_of_purchase {
        let truth = Truth::of(&driver.pump.events_of(purchase));
        let tokens = held.get(&purchase).map(Vec::as_slice).unwrap_or_default();
        let live_at_xano = |t: &Token| at_xano.contains(&(t.canonical.as_str(), t.value.as_str()));
        let share = &mut shares[s];
        share.purchases += 1;
        if truth.owed_a_token() {
            share.owed += 1;
            let assigned: Vec<&Token> = tokens
                .iter()
                .copied()
                .filter(|t| t.state == "assigned")
                .collect();
            share.holding +=
                usize::from(assigned.len() == 1 && assigned.iter().all(|t| live_at_xano(t)));
        }
        if truth.refunded {
            share.refunded += 1;
            let live = tokens
                .iter()
                .any(|t| matches!(t.state.as_str(), "assigned" | "revoking") || live_at_xano(t));
            share.refunded_live += usize::from(live);
        }
    }
    for violation in violations {
        let by_purchase = violation
            .purchase
            .and_then(|p| seller_of_purchase.get(&p).copied());
        let by_canonical = || {
            seller_of_canonical
                .iter()
                .find(|(canonical, _)| violation.what.contains(*canonical))
                .map(|(_, s)| *s)
        };
        let s = by_purchase.or_else(by_canonical).unwrap_or(sellers.len());
        shares[s].violations.push(violation.what.clone());
    }
    shares
}
