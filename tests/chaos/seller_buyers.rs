//! The isolation run's buyers: a new buyer every 250–600 ms buys a tier of the house or of a
//! seller (A most often), through the [`Driver`]: checkout at a random instance, payment at the
//! Stripe simulator, Stripe's events delivered by the driver (1–5 copies, to random instances,
//! success pages racing them, redelivered until accepted). One buyer in seven is then refunded by
//! the operator. Each payment's time is kept: "payment to token" is measured from it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::driver::{Driver, PurchaseRecord};
use crate::events::EventPump;
use crate::scenarios::Scenario;
use crate::sellers::Seller;

/// How often each seller is bought from, in the order of `Buyers::sellers` (house, A, B, C).
const WEIGHTS: [u32; 4] = [1, 3, 2, 2];
const REFUNDED_ONE_IN: u32 = 7;

/// `name`'s value in whole seconds, or `default` seconds.
pub fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(crate::env_u64(name).unwrap_or(default))
}

/// Fetches Stripe's events every 150 ms until `stop` is set (the driver waits on them).
pub async fn pump_until(pump: Arc<EventPump>, cluster: Arc<Cluster>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = pump.poll(&http, &cluster).await {
            eprintln!("sellers: event pump: {e}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// One purchase paid at Stripe.
#[derive(Clone, Debug)]
pub struct Payment {
    pub purchase: Uuid,
    /// Index into `Buyers::sellers`.
    pub seller: usize,
    /// 1: the baseline, 2: the run with faults.
    pub run: u8,
    /// When the Stripe simulator answered the payment: the buyer has paid.
    pub paid_at: DateTime<Utc>,
    pub refunded: bool,
}

pub struct Buyers {
    pub driver: Arc<Driver>,
    /// The house first, then A, B, C.
    pub sellers: Arc<Vec<Seller>>,
    pub paid: Mutex<Vec<Payment>>,
}

impl Buyers {
    /// Starts a buyer every 250–600 ms for `length`, then waits until every one is done: each
    /// event of its purchase accepted by some instance. Returns how many started.
    pub async fn run(self: &Arc<Self>, run: u8, length: Duration) -> u64 {
        let mut rng = StdRng::seed_from_u64(self.driver.seed ^ u64::from(run));
        let mut buyers = JoinSet::new();
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < length {
            buyers.spawn(Arc::clone(self).buy(run, n));
            n += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(250..600))).await;
            while buyers.try_join_next().is_some() {}
        }
        while let Some(done) = buyers.join_next().await {
            done.unwrap();
        }
        n
    }

    fn pick_seller(rng: &mut StdRng) -> usize {
        let mut roll = rng.random_range(0..WEIGHTS.iter().sum::<u32>());
        for (seller, weight) in WEIGHTS.iter().enumerate() {
            if roll < *weight {
                return seller;
            }
            roll -= weight;
        }
        0
    }

    /// Buyer `n` of run `run`: buys, pays, has Stripe's events delivered; sometimes refunded.
    async fn buy(self: Arc<Self>, run: u8, n: u64) {
        let driver = &self.driver;
        let mut rng = StdRng::seed_from_u64(
            driver.seed ^ (u64::from(run) << 56) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let seller = Self::pick_seller(&mut rng);
        let tiers = &self.sellers[seller].tiers;
        let tier = tiers[rng.random_range(0..tiers.len())];
        let refunded = rng.random_ratio(1, REFUNDED_ONE_IN);
        let started_ms = driver.history.now_ms();
        let Some((purchase, session, receipt_key)) = driver.checkout(&mut rng, tier).await else {
            return;
        };
        let record = PurchaseRecord {
            purchase,
            session: session.clone(),
            receipt_key,
            tier,
            scenario: if refunded {
                Scenario::RefundedByAdmin
            } else {
                Scenario::Paid
            },
            started_ms,
            undelivered: false,
            upgrade_of: None,
        };
        driver.purchases.lock().unwrap().push(record.clone());
        driver.history.record(
            Some(purchase),
            None,
            format!("run {run}: a buyer of {}", self.sellers[seller].name),
        );

        let pay = format!("/sessions/{session}/pay");
        if driver
            .stripe_control(purchase, &pay, json!({}))
            .await
            .is_none()
        {
            return;
        }
        self.paid.lock().unwrap().push(Payment {
            purchase,
            seller,
            run,
            paid_at: Utc::now(),
            refunded,
        });
        let Some(completed) = driver
            .wait_event(purchase, "checkout.session.completed")
            .await
        else {
            return;
        };
        let pages = rng.random_range(0..=2);
        driver
            .deliver_racing(&mut rng, &record, std::slice::from_ref(&completed), pages)
            .await;
        driver.ensure_acked(&mut rng, purchase, &completed).await;

        if refunded {
            // Refunded a little later, whether or not the token has come yet.
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
            if driver.admin_refund(&mut rng, &record).await
                && let Some(refund) = driver.wait_event(purchase, "charge.refunded").await
            {
                driver.deliver_racing(&mut rng, &record, &[refund], 0).await;
            }
        }
        // As Stripe does: every event of the purchase redelivered until some instance takes it.
        for event in driver.pump.events_of(purchase) {
            driver.ensure_acked(&mut rng, purchase, &event).await;
        }
    }
}
