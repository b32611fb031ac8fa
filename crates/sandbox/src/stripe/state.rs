//! Everything the simulator knows, behind one mutex shared by the HTTP workers, the webhook
//! dispatcher and the [`StripeSim`](super::StripeSim) handle; and how events are born.
//!
//! Locking rule: take the lock, do synchronous work, let go. Nothing awaits while holding it;
//! events are handed to the dispatcher through a channel, never delivered under the lock.

use std::time::Duration;

use chrono::Utc;
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;
use url::Url;

use super::config::StripeSimConfig;
use super::faults::{self, DeliveryDrops};
use super::idempotency::IdempotencyStore;
use super::model::{CallRecord, DeliveryRecord, EventDrift, SimEvent};
use super::store::Store;

/// Where events go, and the secrets that sign them.
#[derive(Clone)]
pub(crate) struct WebhookTarget {
    pub(crate) url: Url,
    pub(crate) secrets: Vec<String>,
}

/// What caused an event, for its `request` field: an API call has a request id and maybe an
/// idempotency key; a buyer on the hosted page or a simulator control has neither.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub(crate) request_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
}

/// A request to deliver an event once (one delivery, with its own retries).
#[derive(Debug, Clone)]
pub(crate) struct DeliveryJob {
    pub(crate) event_id: String,
}

pub(crate) struct SimState {
    pub(crate) api_key: String,
    pub(crate) livemode: bool,
    pub(crate) api_version: String,
    /// Base of hosted page URLs.
    pub(crate) public_base: Url,
    pub(crate) webhook_url: Option<Url>,
    pub(crate) webhook_secrets: Vec<String>,
    pub(crate) duplicate_deliveries: bool,
    pub(crate) retry_delays: Vec<Duration>,
    pub(crate) shuffle_window: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) store: Store,
    pub(crate) idempotency: IdempotencyStore,
    pub(crate) events: Vec<SimEvent>,
    pub(crate) deliveries: Vec<DeliveryRecord>,
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) rng: StdRng,
    pub(crate) drops: DeliveryDrops,
    /// How events born from now on are rendered differently, if at all.
    pub(crate) event_drift: Option<EventDrift>,
    next_delivery: u64,
    outbox: UnboundedSender<DeliveryJob>,
}

impl SimState {
    pub(crate) fn new(
        config: &StripeSimConfig,
        public_base: Url,
        outbox: UnboundedSender<DeliveryJob>,
    ) -> Self {
        let mut state = Self {
            api_key: config.api_key.clone(),
            livemode: config.livemode,
            api_version: config.api_version.clone(),
            public_base,
            webhook_url: config.webhook_url.clone(),
            webhook_secrets: config.webhook_secrets.clone(),
            duplicate_deliveries: config.duplicate_deliveries,
            retry_delays: config.retry_delays.clone(),
            shuffle_window: config.shuffle_window,
            delivery_timeout: config.delivery_timeout,
            store: Store::default(),
            idempotency: IdempotencyStore::default(),
            events: Vec::new(),
            deliveries: Vec::new(),
            calls: Vec::new(),
            rng: config
                .seed
                .map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64),
            drops: DeliveryDrops::new(config.seed),
            event_drift: None,
            next_delivery: 1,
            outbox,
        };
        state.store.connect.application = state.new_id("ca_", 32);
        state
    }

    /// A Stripe-shaped id: `prefix` then `len` random alphanumerics.
    pub(crate) fn new_id(&mut self, prefix: &str, len: usize) -> String {
        let suffix: String = (&mut self.rng)
            .sample_iter(Alphanumeric)
            .take(len)
            .map(char::from)
            .collect();
        format!("{prefix}{suffix}")
    }

    /// `test` or `live`, for ids that carry the mode (`cs_test_…`).
    pub(crate) fn mode(&self) -> &'static str {
        if self.livemode { "live" } else { "test" }
    }

    pub(crate) fn now() -> i64 {
        Utc::now().timestamp()
    }

    pub(crate) fn next_delivery(&mut self) -> u64 {
        let delivery = self.next_delivery;
        self.next_delivery += 1;
        delivery
    }

    /// Records an event about `object` and, when an endpoint is configured, queues its delivery
    /// (unless it is to be dropped). Stripe never sends events created while no endpoint
    /// listened, and neither does this.
    pub(crate) fn emit(&mut self, type_: &str, object: &Value, origin: &Origin) -> String {
        self.emit_event(type_, object, None, origin)
    }

    /// [`SimState::emit`] for a `*.updated` event: `previous` is its `data.previous_attributes`,
    /// the changed attributes' old values.
    pub(crate) fn emit_event(
        &mut self,
        type_: &str,
        object: &Value,
        previous: Option<Value>,
        origin: &Origin,
    ) -> String {
        self.record_event(type_, object, previous, None, origin)
    }

    /// [`SimState::emit_event`] for an event about a connected account (`account.updated`): it
    /// carries the account's id at the top level, `"account": "acct_…"`, as Stripe's Connect
    /// events do. It goes to the same endpoint as every other event (see `connect`).
    pub(crate) fn emit_connect_event(
        &mut self,
        type_: &str,
        object: &Value,
        previous: Option<Value>,
        account: &str,
        origin: &Origin,
    ) -> String {
        self.record_event(type_, object, previous, Some(account), origin)
    }

    fn record_event(
        &mut self,
        type_: &str,
        object: &Value,
        previous: Option<Value>,
        account: Option<&str>,
        origin: &Origin,
    ) -> String {
        let id = self.new_id("evt_1", 24);
        let created = Self::now();
        let mut data = json!({ "object": object });
        if let (Some(previous), Value::Object(data)) = (previous, &mut data) {
            data.insert("previous_attributes".to_owned(), previous);
        }
        let mut envelope = json!({
            "id": id,
            "object": "event",
            "api_version": self.api_version,
            "created": created,
            "data": data,
            "livemode": self.livemode,
            "pending_webhooks": i64::from(self.webhook_url.is_some()),
            "request": {
                "id": origin.request_id,
                "idempotency_key": origin.idempotency_key,
            },
            "type": type_,
        });
        if let (Some(account), Value::Object(envelope)) = (account, &mut envelope) {
            envelope.insert("account".to_owned(), json!(account));
        }
        if let Some(drift) = &self.event_drift {
            faults::drift(&mut envelope, drift);
        }
        // Stripe's webhook bodies are pretty-printed JSON; receivers must verify the raw bytes,
        // so the simulator sends exactly these bytes on every attempt.
        let payload = serde_json::to_string_pretty(&envelope).unwrap_or_default();
        tracing::debug!(stripe.event.id = %id, stripe.event.type = type_, "stripe sim event");
        self.events.push(SimEvent {
            id: id.clone(),
            type_: type_.to_owned(),
            created,
            payload,
        });
        if self.webhook_url.is_some() {
            if self.drops.drop_next(&id) {
                tracing::debug!(stripe.event.id = %id, "stripe sim dropped a webhook delivery");
            } else {
                self.queue_delivery(&id);
            }
        }
        id
    }

    pub(crate) fn queue_delivery(&self, event_id: &str) {
        // The receiver is gone only while the simulator shuts down; the event stays recorded.
        let _ = self.outbox.send(DeliveryJob {
            event_id: event_id.to_owned(),
        });
    }

    /// Where deliveries go now, with the secrets that sign them.
    pub(crate) fn webhook_target(&self) -> Option<WebhookTarget> {
        self.webhook_url.clone().map(|url| WebhookTarget {
            url,
            secrets: self.webhook_secrets.clone(),
        })
    }

    pub(crate) fn event(&self, id: &str) -> Option<&SimEvent> {
        self.events.iter().find(|event| event.id == id)
    }
}

/// The old values of the top-level attributes that differ between `before` and `after` (a
/// changed list or hash is given whole, as Stripe does): a `*.updated` event's
/// `data.previous_attributes`.
pub(crate) fn previous_attributes(before: &Value, after: &Value) -> Map<String, Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Map::new();
    };
    before
        .iter()
        .filter(|(key, value)| after.get(key.as_str()) != Some(value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The shared handle on [`SimState`].
pub(crate) type Shared = crate::shared::Shared<SimState>;
