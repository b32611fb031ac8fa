//! Stripe's events as the driver sees them: fetched from the Stripe simulator (`GET /v1/events`)
//! and filed under their purchase, plus the late expiry the driver forges for a paid session and
//! the second copy of a payment it forges under another event id.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cluster::Cluster;

/// An event from the Stripe simulator (or forged by the driver), as delivered.
#[derive(Debug)]
pub struct StripeEvent {
    pub id: String,
    pub type_: String,
    pub body: Value,
    /// Made up by the driver (a late expiry); not something Stripe said.
    pub forged: bool,
}

impl StripeEvent {
    pub fn payload(&self) -> String {
        serde_json::to_string_pretty(&self.body).unwrap_or_default()
    }
}

/// Fetches the Stripe simulator's events (`GET /v1/events`, newest first, paged) and files them
/// under the purchase they are about.
pub struct EventPump {
    by_purchase: Mutex<HashMap<Uuid, Vec<Arc<StripeEvent>>>>,
    purchase_of_intent: Mutex<HashMap<String, Uuid>>,
    seen: Mutex<HashSet<String>>,
    pub total: AtomicU64,
}

impl EventPump {
    pub fn new() -> Self {
        Self {
            by_purchase: Mutex::new(HashMap::new()),
            purchase_of_intent: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashSet::new()),
            total: AtomicU64::new(0),
        }
    }

    /// One round: every event not seen yet, oldest first.
    pub async fn poll(&self, http: &reqwest::Client, cluster: &Cluster) -> Result<usize, String> {
        let mut fresh = Vec::new();
        let mut starting_after: Option<String> = None;
        'pages: loop {
            let mut url = format!("{}v1/events?limit=100", cluster.stripe_url);
            if let Some(after) = &starting_after {
                let _ = write!(url, "&starting_after={after}");
            }
            let page: Value = http
                .get(&url)
                .bearer_auth(&cluster.secrets.stripe_key)
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            for event in &data {
                let id = event["id"].as_str().unwrap_or_default().to_owned();
                if self.seen.lock().unwrap().contains(&id) {
                    break 'pages;
                }
                starting_after = Some(id);
                fresh.push(event.clone());
            }
            if !page["has_more"].as_bool().unwrap_or(false) || data.is_empty() {
                break;
            }
        }
        let count = fresh.len();
        for body in fresh.into_iter().rev() {
            self.file(body);
        }
        Ok(count)
    }

    fn file(&self, body: Value) {
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        let type_ = body["type"].as_str().unwrap_or_default().to_owned();
        let object = &body["data"]["object"];
        let intent = object["payment_intent"].as_str().map(str::to_owned);
        let purchase = match object["object"].as_str() {
            Some("checkout.session") => {
                let purchase = object["client_reference_id"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok());
                if let (Some(purchase), Some(pi)) = (purchase, &intent) {
                    self.purchase_of_intent
                        .lock()
                        .unwrap()
                        .insert(pi.clone(), purchase);
                }
                purchase
            }
            _ => object["metadata"]["purchase_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .or_else(|| {
                    intent.and_then(|pi| self.purchase_of_intent.lock().unwrap().get(&pi).copied())
                }),
        };
        self.seen.lock().unwrap().insert(id.clone());
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(purchase) = purchase {
            self.by_purchase
                .lock()
                .unwrap()
                .entry(purchase)
                .or_default()
                .push(Arc::new(StripeEvent {
                    id,
                    type_,
                    body,
                    forged: false,
                }));
        }
    }

    pub fn events_of(&self, purchase: Uuid) -> Vec<Arc<StripeEvent>> {
        self.by_purchase
            .lock()
            .unwrap()
            .get(&purchase)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for the purchase's event of `type_`.
    pub async fn wait_for(
        &self,
        purchase: Uuid,
        type_: &str,
        timeout: Duration,
    ) -> Option<Arc<StripeEvent>> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self
                .events_of(purchase)
                .into_iter()
                .find(|e| e.type_ == type_)
            {
                return Some(event);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A `checkout.session.expired` for a session that was paid: the same session object, expired,
/// under a new event id. Stripe never sends it; a late or forged one must change nothing.
pub fn forge_expiry(completed: &StripeEvent, rng: &mut StdRng) -> Arc<StripeEvent> {
    let mut body = completed.body.clone();
    let id = format!("evt_1chaosforged{:016x}", rng.random::<u64>());
    body["id"] = json!(id);
    body["type"] = json!("checkout.session.expired");
    body["data"]["object"]["status"] = json!("expired");
    Arc::new(StripeEvent {
        id,
        type_: "checkout.session.expired".to_owned(),
        body,
        forged: true,
    })
}

/// The same event again under a new event id, as Stripe never sends it but a replay, a second
/// endpoint or a forwarding proxy might: a payment seen twice must be applied once.
pub fn forge_duplicate(event: &StripeEvent, rng: &mut StdRng) -> Arc<StripeEvent> {
    let mut body = event.body.clone();
    let id = format!("evt_1chaosdup{:016x}", rng.random::<u64>());
    body["id"] = json!(id);
    Arc::new(StripeEvent {
        id,
        type_: event.type_.clone(),
        body,
        forged: true,
    })
}
