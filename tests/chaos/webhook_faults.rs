//! The run's webhook receiver and its faults. Before the workload, a platform endpoint (no seller:
//! it receives every seller's events) is made through instance 0's admin API, pointing at one real
//! receiver ([`WebhookReceiver`]: a Python process verifying every delivery with the official
//! `standardwebhooks` library), so what the checker (`webhook_check.rs`) reads is what an
//! independent verifier accepted, not what the service believes it sent.
//!
//! The nemesis opens one fault window at a time: `receiver_down` (the process killed, connections
//! refused, then started again on its port), `receiver_500` (500 to everything) and
//! `receiver_slow` (an answer after [`SLOW`], past the instances' [`TIMEOUT_SECS`]: the receiver
//! has seen a delivery the sender gives up on). Deliveries due meanwhile wait on the deliverer's
//! backoff, and a purchase's later events wait for its earlier ones. Together with `kill -9` and
//! `SIGSTOP` of instances mid-delivery (the process nemesis; a delivery in flight is sent again when
//! its lease of three timeouts runs out), this is the chaos. Like an SMTP outage, a fault
//! here opens no disturbance window: no instance may answer its clients badly because of it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use testkit::receiver::{Mode, Received, WebhookReceiver};
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::nemesis::Nemesis;

pub const WEBHOOK_KINDS: [&str; 3] = ["receiver_down", "receiver_500", "receiver_slow"];

/// `MARKET_WEBHOOK_TIMEOUT_SECS` of every instance (their lease of a delivery is three of these).
pub const TIMEOUT_SECS: u64 = 2;
/// How long the slow receiver takes to answer: longer than the instances wait.
const SLOW: Duration = Duration::from_secs(TIMEOUT_SECS + 1);

/// The receiver and the platform's endpoint at it.
pub struct Hooks {
    pub endpoint_id: Uuid,
    /// When the receiver got the endpoint's secret, in seconds since the epoch (as it records
    /// `received_at`): a delivery it cannot verify after that was signed wrong.
    pub secret_given_at: f64,
    receiver: tokio::sync::Mutex<Receiver>,
}

struct Receiver {
    process: WebhookReceiver,
    down: bool,
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Hooks {
    /// Starts the receiver and makes the platform's endpoint at it (`POST /v1/admin/webhooks` on
    /// instance 0), then gives the receiver the endpoint's secret.
    pub async fn start(cluster: &Cluster) -> Self {
        let mut process = WebhookReceiver::start().await;
        let response = reqwest::Client::new()
            .post(format!("{}/v1/admin/webhooks", cluster.instances[0].url))
            .bearer_auth(&cluster.secrets.admin_token)
            .json(&serde_json::json!({
                "url": process.url(),
                "seller_id": null,
                "description": "chaos: the platform's receiver",
            }))
            .send()
            .await
            .expect("make the platform's webhook endpoint");
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 201, "make the platform's webhook endpoint: {body}");
        let secret = body["secret"].as_str().expect("the endpoint's secret");
        process.set_secrets(&[secret]);
        Self {
            endpoint_id: body["endpoint"]["endpoint_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("the endpoint's id"),
            secret_given_at: epoch_secs(),
            receiver: tokio::sync::Mutex::new(Receiver {
                process,
                down: false,
            }),
        }
    }

    /// Every request the receiver got, in the order it wrote them down (across its outages).
    pub async fn received(&self) -> Vec<Received> {
        self.receiver.lock().await.process.received()
    }

    /// Opens the fault window `kind`; returns what it does.
    async fn fault(&self, kind: &str) -> String {
        let mut receiver = self.receiver.lock().await;
        match kind {
            "receiver_down" => {
                receiver.process.stop().await;
                receiver.down = true;
                "the receiver is down (connections refused)".to_owned()
            }
            "receiver_500" => {
                receiver.process.set_mode(Mode::Fail);
                "the receiver answers 500 to everything".to_owned()
            }
            _ => {
                receiver.process.set_mode(Mode::Slow(SLOW));
                format!("the receiver answers after {SLOW:?} (instances wait {TIMEOUT_SECS} s)")
            }
        }
    }

    /// Back up on its port, verifying and answering at once (a no-op when it is).
    async fn heal(&self) {
        let mut receiver = self.receiver.lock().await;
        receiver.process.set_mode(Mode::Verify);
        if receiver.down {
            receiver.process.restart().await;
            receiver.down = false;
        }
    }
}

impl Nemesis {
    /// Receiver faults of 3–10 s, every 8–20 s, until stopped: each kind once first (in a seeded
    /// order), then drawn at random; the receiver is healthy at the end.
    pub async fn run_webhooks(self: Arc<Self>, hooks: Arc<Hooks>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0006);
        let mut first = WEBHOOK_KINDS.to_vec();
        first.shuffle(&mut rng);
        self.sleep_unless_stopped(Duration::from_millis(rng.random_range(3000..10_000)))
            .await;
        while !self.stopped() {
            let kind = first
                .pop()
                .unwrap_or_else(|| WEBHOOK_KINDS[rng.random_range(0..WEBHOOK_KINDS.len())]);
            let window = Duration::from_millis(rng.random_range(3000..10_000));
            let what = hooks.fault(kind).await;
            self.note(None, kind, &format!("{what} for {window:?}"));
            self.sleep_unless_stopped(window).await;
            hooks.heal().await;
            self.history.record(
                None,
                None,
                format!("NEMESIS {kind}: the receiver verifies and answers again"),
            );
            self.sleep_unless_stopped(Duration::from_millis(rng.random_range(8000..20_000)))
                .await;
        }
    }

    /// Ends a receiver fault still open.
    pub async fn heal_webhooks(&self, hooks: &Hooks) {
        hooks.heal().await;
    }
}
