//! Stripe's deliveries, made by the driver itself as Stripe would make them and worse: each event
//! signed, sent 1–5 times to random instances (all at once, one after another, or a mix), some
//! ahead of the event they follow, with success-page calls racing them; and redelivered until an
//! instance accepts it, as Stripe retries. Counts the delivery faults every run must show.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::driver::{Driver, PurchaseRecord};
use crate::events::StripeEvent;
use crate::history::Call;

/// Counters of the delivery faults (the Stripe side of the nemesis), which every run must show.
pub const DUPLICATED: &str = "delivery:duplicated";
pub const CONCURRENT: &str = "delivery:duplicates_concurrent";
pub const SEVERAL_INSTANCES: &str = "delivery:to_several_instances";
pub const OUT_OF_ORDER: &str = "delivery:out_of_order";
pub const PAGES_RACING: &str = "delivery:success_pages_racing";
pub const DELIVERY_KINDS: [&str; 5] = [
    DUPLICATED,
    CONCURRENT,
    SEVERAL_INSTANCES,
    OUT_OF_ORDER,
    PAGES_RACING,
];

impl Driver {
    /// Delivers one copy of `event`, signed now, to `instance`. True when answered 200. An
    /// undelivered purchase's events are dropped (Stripe gave up on them), as if delivered.
    pub async fn deliver(&self, purchase: Uuid, event: &StripeEvent, instance: usize) -> bool {
        if self.undelivered.lock().unwrap().contains(&purchase) {
            self.history.count("deliveries_dropped");
            self.history.record(
                Some(purchase),
                None,
                format!(
                    "  DROPPED {} {} (Stripe never delivers it)",
                    event.type_, event.id
                ),
            );
            self.dropped.lock().unwrap().insert(event.id.clone());
            return true;
        }
        let payload = event.payload();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let signature = sandbox::stripe::webhook::signature_header(
            &payload,
            timestamp,
            std::slice::from_ref(&self.cluster.secrets.webhook_secret),
        );
        let request = self
            .http
            .post(self.url(instance, "/v1/webhooks/stripe"))
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(payload);
        self.history.count("deliveries");
        let answer = self
            .send(
                instance,
                Call::Webhook,
                Some(purchase),
                request,
                format!(
                    "{} {}{}",
                    event.type_,
                    event.id,
                    if event.forged { " (forged)" } else { "" }
                ),
            )
            .await;
        let ok = answer.as_ref().is_some_and(|a| a.status == 200);
        if let Some(answer) = answer
            && ok
        {
            self.history.record(
                Some(purchase),
                Some(instance),
                format!(
                    "  webhook outcome {} for {}",
                    answer.body["outcome"], event.id
                ),
            );
            self.acked.lock().unwrap().insert(event.id.clone());
            if event.body["api_version"] == crate::stripe_faults::DRIFTED_VERSION
                && event.body["data"]["object"]["x_future_field"].is_object()
            {
                self.history.count("drift:applied");
            }
        }
        ok
    }

    pub fn is_acked(&self, event: &StripeEvent) -> bool {
        self.acked.lock().unwrap().contains(&event.id)
            || self.dropped.lock().unwrap().contains(&event.id)
    }

    /// Redelivers `event` to random instances until one accepts it, as Stripe retries.
    pub async fn ensure_acked(&self, rng: &mut StdRng, purchase: Uuid, event: &StripeEvent) {
        let until = tokio::time::Instant::now() + Duration::from_secs(600);
        while !self.is_acked(event) {
            if tokio::time::Instant::now() >= until {
                self.unacked
                    .lock()
                    .unwrap()
                    .push((purchase, event.id.clone()));
                return;
            }
            let instance = self.instance(rng);
            if !self.deliver(purchase, event, instance).await {
                self.history.count("redeliveries");
                tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
            }
        }
    }

    /// Delivers `events` in the given order, each 1–5 times to random instances (all at once,
    /// one after another, or a mix), with `pages` success-page calls racing them. Waits for all.
    pub async fn deliver_racing(
        self: &Arc<Self>,
        rng: &mut StdRng,
        record: &PurchaseRecord,
        events: &[Arc<StripeEvent>],
        pages: usize,
    ) {
        let mut plan: Vec<(u64, Option<Arc<StripeEvent>>, usize)> = Vec::new();
        let mut offset = 0u64;
        for event in events {
            let copies = rng.random_range(1..=5);
            let mode = rng.random_range(0..3);
            let mut instances = HashSet::new();
            for copy in 0..copies {
                let at = match mode {
                    0 => offset,                                                     // all at once
                    1 => offset + copy * rng.random_range(20..250), // one after another
                    _ => offset + rng.random_range(0..2) * rng.random_range(0..400), // a mix
                };
                let instance = self.instance(rng);
                instances.insert(instance);
                plan.push((at, Some(event.clone()), instance));
            }
            if copies > 1 {
                self.history.count(DUPLICATED);
                if mode == 0 {
                    self.history.count(CONCURRENT);
                }
            }
            if instances.len() > 1 {
                self.history.count(SEVERAL_INSTANCES);
            }
            offset += rng.random_range(0..300);
        }
        // A refund, dispute or bank settlement sent ahead of the payment it is about.
        if events.len() > 1 && events[0].type_ != "checkout.session.completed" {
            self.history.count(OUT_OF_ORDER);
        }
        if pages > 0 {
            self.history.count(PAGES_RACING);
        }
        for _ in 0..pages {
            plan.push((rng.random_range(0..=offset + 200), None, self.instance(rng)));
        }
        let mut tasks = JoinSet::new();
        for (at, event, instance) in plan {
            let driver = Arc::clone(self);
            let record = record.clone();
            tasks.spawn(async move {
                tokio::time::sleep(Duration::from_millis(at)).await;
                match event {
                    Some(event) => {
                        driver.deliver(record.purchase, &event, instance).await;
                    }
                    None => driver.success_page(instance, &record).await,
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}
