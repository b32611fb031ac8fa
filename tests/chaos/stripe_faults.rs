//! The Stripe side of the nemesis, beyond the deliveries' own faults (`deliveries.rs`): windows in
//! which Stripe's webhooks stop for good (every purchase started meanwhile never gets one, as
//! when an endpoint is down for longer than Stripe retries), and windows in which the simulator's
//! events carry another `api_version` and fields no release knows (a webhook endpoint pinned to
//! another version). Only the service's backfill can recover the first; the lenient intake must
//! read the second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::nemesis::Nemesis;

pub const STRIPE_KINDS: [&str; 2] = ["stripe_webhooks_down", "stripe_event_drift"];

/// The `api_version` drifted events carry.
pub const DRIFTED_VERSION: &str = "2099-01-01.chaos";

impl Nemesis {
    async fn stripe(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
        let url = format!("{}{path}", self.cluster.stripe_control);
        for attempt in 1..=5 {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => panic!("stripe sim control {path}: {}", response.status()),
                Err(e) if attempt < 5 => {
                    eprintln!("chaos: stripe sim control {path} (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => panic!("stripe sim control {path}: {e}"),
            }
        }
    }

    /// Ends every Stripe window.
    pub async fn heal_stripe(&self) {
        self.cluster.webhooks_down.store(false, Ordering::SeqCst);
        self.stripe(reqwest::Method::DELETE, "/event-drift", None)
            .await;
    }

    /// One Stripe window at a time until stopped.
    pub async fn run_stripe(self: Arc<Self>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0003);
        let mut first: Vec<&str> = STRIPE_KINDS.to_vec();
        first.shuffle(&mut rng);
        self.sleep_unless_stopped(Duration::from_secs(3)).await;
        while !self.stopped() {
            let kind = first
                .pop()
                .unwrap_or_else(|| STRIPE_KINDS[rng.random_range(0..STRIPE_KINDS.len())]);
            // Webhooks down for 2–5 s (every purchase started meanwhile is never delivered: about
            // one in ten more, besides the one in ten the driver drops on its own).
            let window = if kind == "stripe_webhooks_down" {
                Duration::from_millis(rng.random_range(2000..5000))
            } else {
                Duration::from_millis(rng.random_range(4000..10_000))
            };
            if kind == "stripe_webhooks_down" {
                self.cluster.webhooks_down.store(true, Ordering::SeqCst);
                self.note(
                    None,
                    kind,
                    &format!("no webhook for purchases started in the next {window:?}"),
                );
            } else {
                self.stripe(
                    reqwest::Method::POST,
                    "/event-drift",
                    Some(json!({ "api_version": DRIFTED_VERSION, "unknown_fields": true })),
                )
                .await;
                self.note(
                    None,
                    kind,
                    &format!(
                        "events at api_version {DRIFTED_VERSION} with unknown fields for {window:?}"
                    ),
                );
            }
            tokio::time::sleep(window).await;
            self.heal_stripe().await;
            self.history
                .record(None, None, format!("NEMESIS {kind}: healed"));
            let gap = rng.random_range(10_000..25_000);
            self.sleep_unless_stopped(Duration::from_millis(gap)).await;
        }
    }
}
