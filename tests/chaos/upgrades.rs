//! The `Upgraded` scenario's second half: a buyer whose purchase shows its token moves it to a
//! higher tier of the same listing (`POST /v1/purchases/{id}/upgrade` with the receipt key) — now
//! and then from two instances at once, or again after an answer — and pays the upgrade's own
//! Checkout Session. Its `checkout.session.completed` is often delivered twice under two event ids
//! (a forged copy, as a replay would bring it), each copy 1–5 times, shuffled, racing success pages
//! of the upgrade. Then one of:
//!
//! - `Paid`: the buyer waits to see the upgrade `fulfilled`, and sometimes installs more;
//! - `RefundedEarly`: refunded at Stripe at once, the refund possibly delivered before the payment;
//! - `RefundedLate` / `DisputedLate`: once applied, the buyer installs past the base tier's limit,
//!   then the upgrade is refunded or disputed: the limit comes down, never below the installs used;
//! - `BaseRefunded`: the base refunded at Stripe, its refund delivered while the upgrade's payment is;
//! - `BaseRefundedByAdmin`: once the upgrade is applied, an operator refunds the base through the
//!   admin API, which refunds the upgrade standing on it too (both refunds delivered at once);
//! - `Rotating`: a rotation of the base's token asked for while the upgrade's payment is delivered.
//!
//! Installs are made only while no job can be writing the token at Xano (before asking, and once
//! the upgrade shows applied, before any refund), so the count the token ends with is exact; the
//! checker (`upgrade_check.rs`) compares it, and the limits, with what the buyer did. The buyer's
//! calls are in `upgrade_calls.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::driver::{Driver, PurchaseRecord};
use crate::events::forge_duplicate;
use crate::scenarios::Scenario;
use crate::upgrade_calls::Asked;

/// The crash point only an upgrade's job reaches (armed only if the service lists it).
const CRASH_POINT: &str = "upgrade_before_recorded";

/// What happens to an upgrade once asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Paid,
    RefundedEarly,
    RefundedLate,
    DisputedLate,
    BaseRefunded,
    BaseRefundedByAdmin,
    Rotating,
}

const VARIANTS: [(Variant, u32); 7] = [
    (Variant::Paid, 30),
    (Variant::RefundedEarly, 14),
    (Variant::RefundedLate, 16),
    (Variant::DisputedLate, 8),
    (Variant::BaseRefunded, 10),
    (Variant::BaseRefundedByAdmin, 8),
    (Variant::Rotating, 20),
];

/// What one buyer of the `Upgraded` scenario did (keyed by the base purchase).
#[derive(Clone, Debug)]
pub struct Upgraded {
    pub variant: Variant,
    pub upgrade: Option<Uuid>,
    /// Installs Xano accepted on the base's token.
    pub installs: i64,
    /// The buyer's story ran to its end (every wait ended as it should): the installs are exact.
    pub finished: bool,
}

#[derive(Default)]
pub struct UpgradeLog {
    bases: Mutex<HashMap<Uuid, Upgraded>>,
}

impl UpgradeLog {
    pub(crate) fn update(&self, base: Uuid, f: impl FnOnce(&mut Upgraded)) {
        if let Some(u) = self.bases.lock().unwrap().get_mut(&base) {
            f(u);
        }
    }

    pub fn all(&self) -> HashMap<Uuid, Upgraded> {
        self.bases.lock().unwrap().clone()
    }
}

/// (tier, a higher tier of the same listing) in the catalog: what the `Upgraded` scenario buys and
/// then upgrades to (chaos-auth_01's solo → agency).
pub async fn paths(db: &sqlx::PgPool) -> Vec<(Uuid, Uuid)> {
    let paths: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select b.tier_id, t.tier_id from tier b
         join tier t on t.listing_id = b.listing_id and t.max_installs > b.max_installs
                    and t.price_amount > b.price_amount and t.currency = b.currency
         order by 1, 2",
    )
    .fetch_all(db)
    .await
    .expect("read the catalog");
    assert!(!paths.is_empty(), "the catalog has a tier to upgrade to");
    paths
}

impl Driver {
    pub fn upgrade_crash_missing(&self) -> bool {
        let key = format!("crash:{CRASH_POINT}");
        crate::nemesis::CRASH_POINTS.contains(&CRASH_POINT)
            && self.history.counters().get(&key).copied().unwrap_or(0) == 0
    }

    /// Upgrades `base` (paid, its payment `base_intent`) to `target`, as a [`Variant`] drawn here.
    pub async fn upgrade(
        self: &Arc<Self>,
        rng: &mut StdRng,
        base: &PurchaseRecord,
        base_intent: Option<&str>,
        target: Uuid,
    ) {
        let p = base.purchase;
        let mut variant = pick(rng);
        if base_intent.is_none() && variant == Variant::BaseRefunded {
            variant = Variant::Paid;
        }
        self.history.count(&format!("upgrade:{variant:?}"));
        self.upgrades.bases.lock().unwrap().insert(
            p,
            Upgraded {
                variant,
                upgrade: None,
                installs: 0,
                finished: false,
            },
        );
        let Some(shown) = self
            .view_until(rng, base, |b| b["token"]["value"].is_string())
            .await
        else {
            self.history.count("upgrade:token_never_shown");
            return;
        };
        let token = shown["token"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let canonical = shown["tier"]["canonical"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let base_max = shown["max_installs"].as_i64().unwrap_or(0);
        for _ in 0..rng.random_range(0..=2) {
            self.upgrade_install(p, &canonical, &token, None).await;
        }
        let Some(asked) = self.ask_upgrade(rng, base, target).await else {
            return;
        };
        let up = asked.upgrade;
        self.upgrades.update(p, |u| u.upgrade = Some(up));
        let record = self.upgrade_record(rng, base, &asked, target, variant);
        let pay = format!("/sessions/{}/pay", record.session);
        let Some(session_view) = self.stripe_control(up, &pay, json!({})).await else {
            return;
        };
        let intent = session_view["payment_intent"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(completed) = self.wait_event(up, "checkout.session.completed").await else {
            return;
        };
        let mut payments = vec![completed.clone()];
        if rng.random_bool(0.6) {
            let copy = forge_duplicate(&completed, rng);
            self.forged.lock().unwrap().push((up, copy.clone()));
            self.history.count("upgrade:paid_twice");
            payments.push(copy);
            payments.shuffle(rng);
        }
        let pages = rng.random_range(0..=3);
        let finished = match variant {
            Variant::Paid | Variant::RefundedLate | Variant::DisputedLate => {
                self.deliver_racing(rng, &record, &payments, pages).await;
                let applied = self.applied(rng, &record, base, asked.max_installs).await;
                let more = match variant {
                    Variant::Paid if rng.random_bool(0.5) => rng.random_range(1..=3),
                    Variant::Paid => 0,
                    _ => {
                        let made = self.upgrades.all().get(&p).map_or(0, |u| u.installs);
                        (base_max - made).max(0) + rng.random_range(1..=2)
                    }
                };
                if applied {
                    for _ in 0..more {
                        self.upgrade_install(p, &canonical, &token, Some(asked.max_installs))
                            .await;
                    }
                }
                if variant != Variant::Paid {
                    let (path, type_) = if variant == Variant::DisputedLate {
                        ("/dispute", "charge.dispute.created")
                    } else {
                        ("/refund", "charge.refunded")
                    };
                    let body = json!({ "payment_intent": intent });
                    if self.stripe_control(up, path, body).await.is_some()
                        && let Some(closing) = self.wait_event(up, type_).await
                    {
                        self.deliver_racing(rng, &record, &[closing], 1).await;
                    }
                }
                applied
            }
            Variant::RefundedEarly => {
                let body = json!({ "payment_intent": intent });
                if self.stripe_control(up, "/refund", body).await.is_some()
                    && let Some(refunded) = self.wait_event(up, "charge.refunded").await
                {
                    payments.push(refunded);
                    payments.shuffle(rng);
                }
                self.deliver_racing(rng, &record, &payments, pages).await;
                true
            }
            Variant::BaseRefunded => {
                let body = json!({ "payment_intent": base_intent.unwrap_or_default() });
                let refunded = match self.stripe_control(p, "/refund", body).await {
                    Some(_) => self.wait_event(p, "charge.refunded").await,
                    None => None,
                };
                let mut other = StdRng::seed_from_u64(rng.random());
                let base_refund = async {
                    if let Some(refunded) = refunded {
                        self.deliver_racing(&mut other, base, &[refunded], 0).await;
                    }
                };
                let payment = self.deliver_racing(rng, &record, &payments, pages);
                tokio::join!(base_refund, payment);
                true
            }
            Variant::BaseRefundedByAdmin => {
                self.deliver_racing(rng, &record, &payments, pages).await;
                if self.applied(rng, &record, base, asked.max_installs).await
                    && self.admin_refund(rng, base).await
                {
                    // The operator's refund of the base refunds the upgrade standing on it.
                    let base_refund = self.wait_event(p, "charge.refunded").await;
                    let upgrade_refund = self.wait_event(up, "charge.refunded").await;
                    let mut other = StdRng::seed_from_u64(rng.random());
                    let base_refund = async {
                        if let Some(e) = base_refund {
                            self.deliver_racing(&mut other, base, &[e], 0).await;
                        }
                    };
                    let upgrade_refund = async {
                        if let Some(e) = upgrade_refund {
                            self.deliver_racing(rng, &record, &[e], 0).await;
                        }
                    };
                    tokio::join!(base_refund, upgrade_refund);
                }
                true
            }
            Variant::Rotating => {
                let seed = rng.random();
                let (rotation, ()) = tokio::join!(
                    self.ask(seed, base),
                    self.deliver_racing(rng, &record, &payments, pages)
                );
                rotation.is_some()
                    && self.applied(rng, &record, base, asked.max_installs).await
                    && self.token_shown(rng, base, Some(&token)).await.is_some()
            }
        };
        // Stripe retries until it gets a 2xx: so does the driver, for every event of the upgrade.
        for event in self.pump.events_of(up) {
            self.ensure_acked(rng, up, &event).await;
        }
        let forged: Vec<_> = self
            .forged
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| *u == up)
            .map(|(_, e)| e.clone())
            .collect();
        for event in forged {
            self.ensure_acked(rng, up, &event).await;
        }
        self.upgrades.update(p, |u| u.finished = finished);
    }

    /// The upgrade's own record: a purchase of the workload (its webhooks, like any purchase's,
    /// sometimes never delivered).
    fn upgrade_record(
        &self,
        rng: &mut StdRng,
        base: &PurchaseRecord,
        asked: &Asked,
        target: Uuid,
        variant: Variant,
    ) -> PurchaseRecord {
        let down = self
            .cluster
            .webhooks_down
            .load(std::sync::atomic::Ordering::SeqCst);
        let record = PurchaseRecord {
            purchase: asked.upgrade,
            session: asked.session.clone(),
            receipt_key: asked.receipt_key.clone(),
            tier: target,
            scenario: Scenario::Upgraded,
            started_ms: self.history.now_ms(),
            undelivered: down || rng.random_bool(0.1),
            upgrade_of: Some(base.purchase),
        };
        if record.undelivered {
            self.undelivered.lock().unwrap().insert(record.purchase);
            self.history.count("delivery:never_delivered");
        }
        let what = format!(
            "upgrade {} of {} ({variant:?}){}",
            asked.upgrade,
            base.purchase,
            if record.undelivered {
                " (webhooks never delivered)"
            } else {
                ""
            }
        );
        self.history.record(Some(base.purchase), None, what.clone());
        self.history.record(Some(asked.upgrade), None, what);
        self.purchases.lock().unwrap().push(record.clone());
        record
    }
}

fn pick(rng: &mut StdRng) -> Variant {
    let total: u32 = VARIANTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (variant, weight) in VARIANTS {
        if roll < weight {
            return variant;
        }
        roll -= weight;
    }
    Variant::Paid
}
