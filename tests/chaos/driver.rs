//! The driver: buyers' requests to random instances of the public API, and Stripe's deliveries
//! made by the driver itself — signed, 1–5 times each, to random instances, some concurrently,
//! some out of order — with success-page calls racing them. Every request goes into the
//! [`History`]; what a purchase goes through is in `scenarios.rs`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::events::{EventPump, StripeEvent};
use crate::history::{Call, History, Outcome, Request};
use crate::scenarios::Scenario;

/// A purchase the driver created.
#[derive(Clone, Debug)]
pub struct PurchaseRecord {
    pub purchase: Uuid,
    pub session: String,
    pub receipt_key: String,
    pub tier: Uuid,
    pub scenario: Scenario,
    pub started_ms: u64,
    /// Stripe never delivers this purchase's webhooks (10 % of purchases, and every one started
    /// while the nemesis has webhooks down), and its buyer never reaches the success page: only
    /// the service's backfill from Stripe's list of events can find what happened to it.
    pub undelivered: bool,
    /// An upgrade (`upgrades.rs`): the purchase it upgrades.
    pub upgrade_of: Option<Uuid>,
}

/// A status a buyer saw, and when (for the real-time monotonicity check), with the token value
/// shown (a buyer must never be shown two).
#[derive(Clone, Debug)]
pub struct Observation {
    pub purchase: Uuid,
    pub start_ms: u64,
    pub end_ms: u64,
    pub status: String,
    pub token: Option<String>,
}

pub struct Driver {
    pub cluster: Arc<Cluster>,
    pub history: Arc<History>,
    pub pump: Arc<EventPump>,
    pub http: reqwest::Client,
    pub tiers: Vec<Uuid>,
    /// (tier, a higher tier of the same listing): what the `Upgraded` scenario buys, then upgrades to.
    pub upgrade_paths: Vec<(Uuid, Uuid)>,
    pub seed: u64,
    pub purchases: Mutex<Vec<PurchaseRecord>>,
    pub forged: Mutex<Vec<(Uuid, Arc<StripeEvent>)>>,
    pub acked: Mutex<HashSet<String>>,
    pub unacked: Mutex<Vec<(Uuid, String)>>,
    /// Purchases whose webhooks are never delivered, and the events dropped.
    pub undelivered: Mutex<HashSet<Uuid>>,
    pub dropped: Mutex<HashSet<String>>,
    pub observations: Mutex<Vec<Observation>>,
    pub errors: Mutex<Vec<(Option<Uuid>, String)>>,
    /// What the buyers of the `Rotated` scenario did (`rotations.rs`).
    pub rotations: crate::rotations::RotationLog,
    /// What the buyers of the `Upgraded` scenario did (`upgrades.rs`).
    pub upgrades: crate::upgrades::UpgradeLog,
}

/// A request's answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Driver {
    pub fn new(
        cluster: Arc<Cluster>,
        history: Arc<History>,
        pump: Arc<EventPump>,
        tiers: Vec<Uuid>,
        upgrade_paths: Vec<(Uuid, Uuid)>,
        seed: u64,
    ) -> Self {
        let http = reqwest::Client::builder()
            // A fresh connection per request: a pooled connection to a killed instance would fail
            // long after the instance is back.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(40))
            .build()
            .expect("http client");
        Self {
            cluster,
            history,
            pump,
            http,
            tiers,
            upgrade_paths,
            seed,
            purchases: Mutex::new(Vec::new()),
            forged: Mutex::new(Vec::new()),
            acked: Mutex::new(HashSet::new()),
            unacked: Mutex::new(Vec::new()),
            undelivered: Mutex::new(HashSet::new()),
            dropped: Mutex::new(HashSet::new()),
            observations: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            rotations: crate::rotations::RotationLog::default(),
            upgrades: crate::upgrades::UpgradeLog::default(),
        }
    }

    pub fn driver_error(&self, purchase: Option<Uuid>, what: String) {
        self.history
            .record(purchase, None, format!("DRIVER ERROR: {what}"));
        self.errors.lock().unwrap().push((purchase, what));
    }

    pub fn instance(&self, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.cluster.instances.len())
    }

    /// Sends one request to an instance and records it.
    pub async fn send(
        &self,
        instance: usize,
        call: Call,
        purchase: Option<Uuid>,
        request: reqwest::RequestBuilder,
        detail: String,
    ) -> Option<Answer> {
        let start_ms = self.history.now_ms();
        let result = request.send().await;
        let (outcome, answer) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                (Outcome::Status(status), Some(Answer { status, body }))
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "io"
                };
                (Outcome::Transport(kind.to_owned()), None)
            }
        };
        let mut detail = detail;
        if let Some(answer) = &answer
            && answer.status >= 400
        {
            let _ = write!(detail, " body={}", answer.body);
        }
        self.history.count(&format!("requests:{call:?}"));
        self.history.request(Request {
            start_ms,
            end_ms: self.history.now_ms(),
            instance,
            call,
            purchase,
            outcome,
            detail,
        });
        if let (Some(answer), Some(purchase)) = (&answer, purchase)
            && answer.status == 200
            && matches!(call, Call::SuccessPage | Call::Purchase)
            && let Some(status) = answer.body["status"].as_str()
        {
            self.observations.lock().unwrap().push(Observation {
                purchase,
                start_ms,
                end_ms: self.history.now_ms(),
                status: status.to_owned(),
                token: answer.body["token"]["value"].as_str().map(str::to_owned),
            });
        }
        answer
    }

    pub fn url(&self, instance: usize, path: &str) -> String {
        format!("{}{path}", self.cluster.instances[instance].url)
    }

    /// `POST /v1/checkout` with an idempotency key, retried on other instances until it answers.
    pub async fn checkout(&self, rng: &mut StdRng, tier: Uuid) -> Option<(Uuid, String, String)> {
        let key = format!("chaos-{}", Uuid::from_u128(rng.random()));
        let body = json!({ "tier_id": tier, "email": "buyer@example.com" });
        for _ in 0..60 {
            if self.cluster.stopping() {
                return None;
            }
            let instance = self.instance(rng);
            let request = self
                .http
                .post(self.url(instance, "/v1/checkout"))
                .header("idempotency-key", &key)
                .json(&body);
            if let Some(answer) = self
                .send(
                    instance,
                    Call::Checkout,
                    None,
                    request,
                    format!("key={key}"),
                )
                .await
                && (answer.status == 200 || answer.status == 201)
            {
                let purchase = answer.body["purchase_id"].as_str()?.parse().ok()?;
                let url = answer.body["checkout_url"].as_str()?;
                let session = url.rsplit("/pay/").next()?.to_owned();
                let receipt = answer.body["receipt_key"].as_str()?.to_owned();
                self.history.record(
                    Some(purchase),
                    Some(instance),
                    format!("checkout {} ({key}) session {session}", answer.status),
                );
                return Some((purchase, session, receipt));
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await;
        }
        self.driver_error(None, format!("checkout {key} never succeeded"));
        None
    }

    /// A control call to the Stripe simulator (never faulted); its failure is a driver error.
    pub async fn stripe_control(&self, purchase: Uuid, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}{path}", self.cluster.stripe_control);
        let result = self.http.post(&url).json(&body).send().await;
        match result {
            Ok(response) if response.status().is_success() => {
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                self.history
                    .record(Some(purchase), None, format!("stripe sim: {path}"));
                Some(body)
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                self.driver_error(
                    Some(purchase),
                    format!("stripe sim {path} answered {status}: {text}"),
                );
                None
            }
            Err(e) => {
                self.driver_error(Some(purchase), format!("stripe sim {path}: {e}"));
                None
            }
        }
    }

    pub async fn wait_event(&self, purchase: Uuid, type_: &str) -> Option<Arc<StripeEvent>> {
        let event = self
            .pump
            .wait_for(purchase, type_, Duration::from_secs(60))
            .await;
        if event.is_none() {
            self.driver_error(Some(purchase), format!("no {type_} event within 60 s"));
        }
        event
    }

    /// The success page: reads the session through a random instance, with the receipt key.
    /// Never for an undelivered purchase (the success page would pay it).
    pub async fn success_page(&self, instance: usize, record: &PurchaseRecord) {
        if record.undelivered {
            return;
        }
        let request = self
            .http
            .get(self.url(
                instance,
                &format!("/v1/checkout/sessions/{}", record.session),
            ))
            .bearer_auth(&record.receipt_key);
        self.history.count("success_pages");
        self.send(
            instance,
            Call::SuccessPage,
            Some(record.purchase),
            request,
            String::new(),
        )
        .await;
    }

    pub async fn read_purchase(&self, instance: usize, record: &PurchaseRecord) {
        let request = self
            .http
            .get(self.url(instance, &format!("/v1/purchases/{}", record.purchase)))
            .bearer_auth(&record.receipt_key);
        self.send(
            instance,
            Call::Purchase,
            Some(record.purchase),
            request,
            String::new(),
        )
        .await;
    }
}
