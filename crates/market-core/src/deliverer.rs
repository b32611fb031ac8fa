//! The deliverer: every instance sends the webhook outbox's due deliveries (`webhooks`), through
//! the `courier`, and records how each ended.
//!
//! It is the jobs runner's sibling rather than a job kind: a delivery needs an order the job queue
//! does not keep (per purchase and endpoint: `webhooks::deliveries`), a retry schedule of days
//! rather than minutes, and no Xano. Like the runner it holds no transaction or connection while it
//! waits on the network, its work survives any instance's death (leases), and several instances
//! share the queue without coordinating.
//!
//! What a receiver gets (Standard Webhooks): `webhook-id` the event's id (`msg_…`, the same on every
//! try and every instance), `webhook-timestamp` the attempt's time, `webhook-signature` one `v1,`
//! signature per live secret of the endpoint, and the body `{"type", "timestamp", "data"}`. The body
//! is the same on every try: `data` was written with the fact, and the token an opted-in endpoint
//! receives is the one the event names, opened from its seal when sent.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use uuid::Uuid;

use crate::courier::{self, Courier};
use crate::webhooks::{EventType, Policy, Recorded, deliveries, endpoints};
use crate::{Market, Result, TokenId, keys};

/// How an instance delivers.
#[derive(Clone, Copy, Debug)]
pub struct DelivererConfig {
    /// Deliveries in flight at once on this instance.
    pub concurrency: usize,
    /// How often it looks for due deliveries when it has nothing to do.
    pub poll_interval: Duration,
    /// How long a claimed delivery is this instance's; longer than the courier's timeout.
    pub lease: Duration,
    pub policy: Policy,
    /// How long the delivery log and delivered events are kept (and so how far back a replay goes).
    pub keep: Duration,
}

impl Default for DelivererConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            policy: Policy::default(),
            keep: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One instance's deliverer.
#[derive(Debug)]
pub struct Deliverer {
    market: Market,
    courier: Courier,
    config: DelivererConfig,
    /// This instance's identity in `webhook_delivery.lease_owner`.
    owner: Uuid,
}

impl Deliverer {
    pub fn new(market: Market, courier: Courier, config: DelivererConfig) -> Self {
        Self {
            market,
            courier,
            config,
            owner: Uuid::new_v4(),
        }
    }

    /// Runs until `shutdown` completes, then gives deliveries in flight the courier's timeout to
    /// end; a delivery cut short stays pending and is sent again when its lease runs out.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut in_flight = JoinSet::new();
        let mut last_prune = None::<tokio::time::Instant>;
        loop {
            if last_prune.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                if let Err(e) = deliveries::prune(&self.market.db, self.config.keep).await {
                    tracing::warn!(error = %e, "pruning the webhook log failed");
                }
                last_prune = Some(tokio::time::Instant::now());
            }
            let room = self.config.concurrency.saturating_sub(in_flight.len());
            if room > 0 {
                match self.claim(room).await {
                    Ok(claimed) => {
                        for delivery in claimed {
                            let this = self.handle();
                            in_flight.spawn(async move { this.deliver(delivery).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.config.poll_interval) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        let deadline = tokio::time::sleep(self.config.lease);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                next = in_flight.join_next() => if next.is_none() { break },
            }
        }
        in_flight.abort_all();
    }

    /// Sends every due delivery, round after round, until none is due: for tests and the CLI.
    /// Returns how many attempts were made.
    pub async fn drain(&self) -> Result<usize> {
        let mut made = 0;
        loop {
            let claimed = self.claim(self.config.concurrency.max(1)).await?;
            if claimed.is_empty() {
                return Ok(made);
            }
            made += claimed.len();
            let mut batch = JoinSet::new();
            for delivery in claimed {
                let this = self.handle();
                batch.spawn(async move { this.deliver(delivery).await });
            }
            while batch.join_next().await.is_some() {}
        }
    }

    async fn claim(&self, room: usize) -> Result<Vec<deliveries::Claimed>> {
        deliveries::claim(
            &self.market.db,
            self.owner,
            i64::try_from(room).unwrap_or(i64::MAX),
            self.config.lease,
        )
        .await
    }

    fn handle(&self) -> Handle {
        Handle {
            market: self.market.clone(),
            courier: self.courier.clone(),
            policy: self.config.policy,
            owner: self.owner,
        }
    }
}

/// What one delivery task needs.
struct Handle {
    market: Market,
    courier: Courier,
    policy: Policy,
    owner: Uuid,
}

impl Handle {
    async fn deliver(self, delivery: deliveries::Claimed) {
        let span = tracing::info_span!(
            "webhook",
            webhook.delivery = delivery.delivery_id,
            webhook.endpoint = %delivery.endpoint_id,
            webhook.event = %delivery.event_type,
            attempt = delivery.attempts,
        );
        let attempt = tracing::Instrument::instrument(self.attempt(&delivery), span.clone()).await;
        match deliveries::record(
            &self.market.db,
            self.owner,
            &delivery,
            &attempt,
            &self.policy,
        )
        .await
        {
            Ok((outcome, disabled)) => {
                let status = attempt.status;
                let latency_ms = u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX);
                match outcome {
                    Recorded::Delivered => {
                        tracing::debug!(parent: &span, status, latency_ms, "webhook delivered");
                    }
                    Recorded::Retry(after) => {
                        tracing::info!(parent: &span, status, latency_ms, error = attempt.error.as_deref(), retry_in_s = after.as_secs(), "webhook not delivered; will retry");
                    }
                    Recorded::GaveUp => {
                        tracing::warn!(parent: &span, status, error = attempt.error.as_deref(), "webhook not delivered; retries ran out");
                    }
                    Recorded::LostLease => {
                        tracing::info!(parent: &span, "webhook lease lost to another instance before the record");
                    }
                }
                if disabled {
                    tracing::warn!(parent: &span, "webhook endpoint disabled");
                }
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "could not record a webhook attempt; it will be sent again");
            }
        }
    }

    /// One attempt: the body, the signatures, the POST. A failure before the POST (a secret that
    /// does not open, a token gone) is an attempt with an error, retried like a refused one.
    async fn attempt(&self, delivery: &deliveries::Claimed) -> courier::Attempt {
        match self.prepare(delivery).await {
            Ok((url, signed, body)) => self.courier.post(&url, &signed, &body).await,
            Err(why) => courier::Attempt {
                status: None,
                latency: Duration::ZERO,
                response: None,
                error: Some(why),
                refusal: None,
            },
        }
    }

    async fn prepare(
        &self,
        delivery: &deliveries::Claimed,
    ) -> std::result::Result<(url::Url, courier::Signed, Vec<u8>), String> {
        let url = url::Url::parse(&delivery.url).map_err(|e| format!("bad endpoint url: {e}"))?;
        let body = self.body(delivery).await.map_err(|e| e.to_string())?;
        let secrets = endpoints::signing_secrets(
            &self.market.db,
            &self.market.envelope,
            delivery.endpoint_id,
        )
        .await
        .map_err(|e| e.to_string())?;
        let id = courier::message_id(delivery.event_id);
        let signed = courier::sign(&secrets, &id, chrono::Utc::now().timestamp(), &body)
            .map_err(|e| e.to_string())?;
        Ok((url, signed, body))
    }

    /// `{"type", "timestamp", "data"}`; `data.token` for an opted-in endpoint when the event is
    /// about the buyer's token.
    async fn body(&self, delivery: &deliveries::Claimed) -> Result<Vec<u8>> {
        let mut data = delivery.data.clone();
        let carries = delivery
            .event_type
            .parse::<EventType>()
            .is_ok_and(EventType::carries_token);
        if delivery.include_token
            && carries
            && let Some(token) = delivery.token_id
            && let Some(object) = data.as_object_mut()
        {
            let value =
                keys::open_stored(&self.market.db, &self.market.envelope, TokenId(token)).await?;
            object.insert("token".into(), value.expose().into());
        }
        let body = serde_json::json!({
            "type": delivery.event_type,
            "timestamp": delivery.created_at,
            "data": data,
        });
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }
}
