//! What happens to one purchase: a scenario drawn at random (paid, refunded, disputed, expired,
//! abandoned, bank debits, a late expiry after payment, a token rotated, a tier upgraded, …), played
//! through the [`Driver`] until every event Stripe sent about it was accepted by some instance.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::driver::{Driver, PurchaseRecord};
use crate::events::{StripeEvent, forge_expiry};
use crate::history::Call;

/// What happens to one purchase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Paid by card; `completed` delivered 1–5 times, success pages racing it.
    Paid,
    /// The buyer lands on the success page before any webhook arrives.
    SuccessPageFirst,
    /// Paid, then fully refunded at Stripe; the refund may be delivered before the payment.
    RefundedAtStripe,
    /// Paid, then refunded through the admin API (Stripe refund → `charge.refunded`).
    RefundedByAdmin,
    /// Paid, then partly refunded: the token stays.
    PartialRefund,
    /// Paid, then disputed; the dispute may be delivered before the payment.
    Disputed,
    /// Paid; then a late (forged, correctly signed) `checkout.session.expired` arrives.
    ExpiryAfterPayment,
    /// The session expires unpaid.
    Expired,
    /// Checked out, never paid.
    Abandoned,
    /// Bank debit: `completed` unpaid, then `async_payment_succeeded`, in either order.
    DelayedSucceeded,
    /// Bank debit that fails.
    DelayedFailed,
    /// Paid like `Paid`; once the token shows, the buyer rotates it (`rotations.rs`), and is
    /// sometimes refunded while the rotation runs.
    Rotated,
    /// Paid like `Paid` for a tier that has a higher one; once the token shows, the buyer upgrades
    /// (`upgrades.rs`): the upgrade's payment duplicated and reordered, sometimes refunded or
    /// disputed, sometimes the base refunded meanwhile or its token rotated.
    Upgraded,
}

const SCENARIOS: [(Scenario, u32); 13] = [
    (Scenario::Paid, 30),
    (Scenario::SuccessPageFirst, 6),
    (Scenario::RefundedAtStripe, 10),
    (Scenario::RefundedByAdmin, 6),
    (Scenario::PartialRefund, 5),
    (Scenario::Disputed, 8),
    (Scenario::ExpiryAfterPayment, 6),
    (Scenario::Expired, 8),
    (Scenario::Abandoned, 6),
    (Scenario::DelayedSucceeded, 8),
    (Scenario::DelayedFailed, 4),
    (Scenario::Rotated, 6),
    (Scenario::Upgraded, 8),
];

fn pick_scenario(rng: &mut StdRng) -> Scenario {
    let total: u32 = SCENARIOS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (scenario, weight) in SCENARIOS {
        if roll < weight {
            return scenario;
        }
        roll -= weight;
    }
    Scenario::Paid
}

impl Driver {
    /// Runs purchase number `n` to its end: every event of it accepted at least once.
    pub async fn run_purchase(self: Arc<Self>, n: u64) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let scenario = pick_scenario(&mut rng);
        // Until a rotation's job has been killed at its crash point, more buyers rotate: the run
        // must show that crash, and only rotations reach it.
        let scenario = if rng.random_bool(0.2) && self.rotation_crash_missing() {
            Scenario::Rotated
        } else if rng.random_bool(0.2) && self.upgrade_crash_missing() {
            Scenario::Upgraded
        } else {
            scenario
        };
        let (tier, target) = if scenario == Scenario::Upgraded {
            let (base, target) = self.upgrade_paths[rng.random_range(0..self.upgrade_paths.len())];
            (base, Some(target))
        } else {
            (self.tiers[rng.random_range(0..self.tiers.len())], None)
        };
        let started_ms = self.history.now_ms();
        let Some((purchase, session, receipt_key)) = self.checkout(&mut rng, tier).await else {
            return;
        };
        let down = self
            .cluster
            .webhooks_down
            .load(std::sync::atomic::Ordering::SeqCst);
        let undelivered = down || rng.random_bool(0.1);
        // An operator refunds only what they can see paid; an undelivered payment is found later.
        let scenario = if undelivered && scenario == Scenario::RefundedByAdmin {
            Scenario::RefundedAtStripe
        } else {
            scenario
        };
        let record = PurchaseRecord {
            purchase,
            session: session.clone(),
            receipt_key,
            tier,
            scenario,
            started_ms,
            undelivered,
            upgrade_of: None,
        };
        if undelivered {
            self.undelivered.lock().unwrap().insert(purchase);
            self.history.count("delivery:never_delivered");
        }
        self.history.count(&format!("scenario:{scenario:?}"));
        self.history.record(
            Some(purchase),
            None,
            format!(
                "scenario {scenario:?}{}",
                if undelivered {
                    " (webhooks never delivered)"
                } else {
                    ""
                }
            ),
        );
        self.purchases.lock().unwrap().push(record.clone());
        let pay = format!("/sessions/{session}/pay");
        let pages = rng.random_range(0..=3);

        match scenario {
            Scenario::Abandoned => {
                if rng.random_bool(0.5) {
                    let i = self.instance(&mut rng);
                    self.success_page(i, &record).await;
                }
            }
            Scenario::Expired => {
                if self
                    .stripe_control(purchase, &format!("/sessions/{session}/expire"), json!({}))
                    .await
                    .is_none()
                {
                    return;
                }
                let Some(expired) = self.wait_event(purchase, "checkout.session.expired").await
                else {
                    return;
                };
                self.deliver_racing(&mut rng, &record, &[expired], pages)
                    .await;
            }
            Scenario::Paid | Scenario::Rotated | Scenario::Upgraded => {
                let paid = self.stripe_control(purchase, &pay, json!({})).await;
                let Some(completed) = self
                    .wait_event(purchase, "checkout.session.completed")
                    .await
                else {
                    return;
                };
                self.deliver_racing(&mut rng, &record, std::slice::from_ref(&completed), pages)
                    .await;
                if scenario == Scenario::Rotated {
                    self.ensure_acked(&mut rng, purchase, &completed).await;
                    let intent = paid.as_ref().and_then(|v| v["payment_intent"].as_str());
                    self.rotate_tokens(&mut rng, &record, intent).await;
                }
                if let Some(target) = target {
                    self.ensure_acked(&mut rng, purchase, &completed).await;
                    let intent = paid.as_ref().and_then(|v| v["payment_intent"].as_str());
                    self.upgrade(&mut rng, &record, intent, target).await;
                }
            }
            Scenario::SuccessPageFirst => {
                self.stripe_control(purchase, &pay, json!({})).await;
                for _ in 0..rng.random_range(1..=3) {
                    let i = self.instance(&mut rng);
                    self.success_page(i, &record).await;
                }
                let Some(completed) = self
                    .wait_event(purchase, "checkout.session.completed")
                    .await
                else {
                    return;
                };
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..2000))).await;
                self.deliver_racing(&mut rng, &record, &[completed], 0)
                    .await;
            }
            Scenario::RefundedAtStripe | Scenario::Disputed | Scenario::PartialRefund => {
                let Some(session_view) = self.stripe_control(purchase, &pay, json!({})).await
                else {
                    return;
                };
                let intent = session_view["payment_intent"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let Some(completed) = self
                    .wait_event(purchase, "checkout.session.completed")
                    .await
                else {
                    return;
                };
                // Half the time the payment is delivered first; otherwise the refund or dispute
                // may overtake it.
                let completed_first = rng.random_bool(0.5);
                if completed_first {
                    self.deliver_racing(&mut rng, &record, std::slice::from_ref(&completed), pages)
                        .await;
                }
                let (path, body, type_) = match scenario {
                    Scenario::Disputed => (
                        "/dispute",
                        json!({ "payment_intent": intent }),
                        "charge.dispute.created",
                    ),
                    Scenario::PartialRefund => (
                        "/refund",
                        json!({ "payment_intent": intent, "amount": 100 }),
                        "charge.refunded",
                    ),
                    _ => (
                        "/refund",
                        json!({ "payment_intent": intent }),
                        "charge.refunded",
                    ),
                };
                if self.stripe_control(purchase, path, body).await.is_none() {
                    return;
                }
                let Some(closing) = self.wait_event(purchase, type_).await else {
                    return;
                };
                let mut events = vec![closing];
                if !completed_first {
                    events.push(completed);
                    events.shuffle(&mut rng);
                }
                self.deliver_racing(&mut rng, &record, &events, pages).await;
            }
            Scenario::RefundedByAdmin | Scenario::ExpiryAfterPayment => {
                self.stripe_control(purchase, &pay, json!({})).await;
                let Some(completed) = self
                    .wait_event(purchase, "checkout.session.completed")
                    .await
                else {
                    return;
                };
                self.deliver_racing(&mut rng, &record, std::slice::from_ref(&completed), pages)
                    .await;
                self.ensure_acked(&mut rng, purchase, &completed).await;
                if scenario == Scenario::RefundedByAdmin {
                    if !self.admin_refund(&mut rng, &record).await {
                        return;
                    }
                    let Some(refunded) = self.wait_event(purchase, "charge.refunded").await else {
                        return;
                    };
                    self.deliver_racing(&mut rng, &record, &[refunded], 1).await;
                } else {
                    let forged = forge_expiry(&completed, &mut rng);
                    self.forged.lock().unwrap().push((purchase, forged.clone()));
                    self.deliver_racing(&mut rng, &record, &[forged], 1).await;
                }
            }
            Scenario::DelayedSucceeded | Scenario::DelayedFailed => {
                self.stripe_control(
                    purchase,
                    &format!("/sessions/{session}/pay-delayed"),
                    json!({}),
                )
                .await;
                let Some(completed) = self
                    .wait_event(purchase, "checkout.session.completed")
                    .await
                else {
                    return;
                };
                let succeeded = scenario == Scenario::DelayedSucceeded;
                self.stripe_control(
                    purchase,
                    &format!("/sessions/{session}/settle"),
                    json!({ "succeeded": succeeded }),
                )
                .await;
                let type_ = if succeeded {
                    "checkout.session.async_payment_succeeded"
                } else {
                    "checkout.session.async_payment_failed"
                };
                let Some(settled) = self.wait_event(purchase, type_).await else {
                    return;
                };
                let mut events = vec![completed, settled];
                events.shuffle(&mut rng);
                self.deliver_racing(&mut rng, &record, &events, pages).await;
            }
        }

        // Stripe retries until it gets a 2xx: so does the driver, for every event of the purchase.
        for event in self.pump.events_of(purchase) {
            self.ensure_acked(&mut rng, purchase, &event).await;
        }
        let forged: Vec<Arc<StripeEvent>> = self
            .forged
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == purchase)
            .map(|(_, e)| e.clone())
            .collect();
        for event in forged {
            self.ensure_acked(&mut rng, purchase, &event).await;
        }
        if rng.random_bool(0.3) {
            let i = self.instance(&mut rng);
            self.read_purchase(i, &record).await;
        }
    }

    /// `POST /v1/admin/purchases/{id}/refund`, retried on transport errors (Stripe's idempotency
    /// key makes the retry refund once). True when Stripe was asked (202) or the purchase is already
    /// refunded (200, a retry after an answer lost to a crash).
    pub(crate) async fn admin_refund(&self, rng: &mut StdRng, record: &PurchaseRecord) -> bool {
        for _ in 0..60 {
            let instance = self.instance(rng);
            let request = self
                .http
                .post(self.url(
                    instance,
                    &format!("/v1/admin/purchases/{}/refund", record.purchase),
                ))
                .bearer_auth(&self.cluster.secrets.admin_token);
            match self
                .send(
                    instance,
                    Call::AdminRefund,
                    Some(record.purchase),
                    request,
                    String::new(),
                )
                .await
            {
                // 200: refunded already (an earlier try's answer was lost, its refund landed).
                Some(answer) if answer.status == 202 || answer.status == 200 => return true,
                Some(answer) if answer.status == 409 => {
                    self.driver_error(
                        Some(record.purchase),
                        "admin refund of a purchase whose payment was acknowledged answered 409"
                            .into(),
                    );
                    return false;
                }
                _ => tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await,
            }
        }
        self.driver_error(Some(record.purchase), "admin refund never answered".into());
        false
    }
}
