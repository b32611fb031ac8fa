//! [`StripeSim`]: a running simulator, and the Rust side of its controls.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::web;
use tokio::task::JoinHandle;
use url::Url;

use super::api;
use super::config::StripeSimConfig;
use super::connect;
use super::control;
use super::error::SimError;
use super::hosted;
use super::model::{
    CallRecord, DeliveryRecord, DisputeOutcome, EventDrift, SimDispute, SimEvent, SimRefund,
    SimSession,
};
use super::ops::RefundRequest;
use super::state::{Origin, Shared, SimState};
use super::webhook::{self, signature_header};
use crate::server::{Bound, Server};

/// How often open sessions past their `expires_at` are looked for.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

/// A Stripe API simulator listening on a loopback port, plus the handle that controls it.
///
/// Dropping it stops the server and its background tasks (without waiting); [`StripeSim::stop`]
/// stops it and waits.
pub struct StripeSim {
    /// Reached by `connect::sim`'s controls too.
    pub(super) shared: Shared,
    base_url: Url,
    server: Server,
    /// The webhook dispatcher and the expiry sweeper.
    background: Vec<JoinHandle<()>>,
}

impl StripeSim {
    /// Binds `config.bind` and serves on the current tokio runtime (any flavour). The socket is
    /// listening when this returns, so requests can be sent at once.
    #[expect(
        clippy::unused_async,
        reason = "async in the contract, so starting can later wait for readiness without a breaking change"
    )]
    pub async fn start(config: StripeSimConfig) -> io::Result<Self> {
        let bound = Bound::bind(config.bind)?;
        let base_url =
            Url::parse(&format!("http://{}/", bound.addr())).map_err(io::Error::other)?;
        let public_base = config
            .public_url
            .clone()
            .unwrap_or_else(|| base_url.clone());
        let http = reqwest::Client::builder()
            // Deliveries go where the endpoint says, never through a proxy from the environment,
            // and a redirect is a failed delivery, as at Stripe.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(io::Error::other)?;
        let (outbox, jobs) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new(SimState::new(&config, public_base, outbox));
        let server = bound.serve(config.workers, shared.clone(), control::routes, routes)?;
        let dispatcher = tokio::spawn(webhook::dispatch(shared.clone(), jobs, http));
        let sweeper = tokio::spawn(sweep_expired(shared.clone()));
        Ok(Self {
            shared,
            base_url,
            server,
            background: vec![dispatcher, sweeper],
        })
    }

    /// Starts with default settings on a fixed address (for a standalone simulator).
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::start(StripeSimConfig {
            bind: addr,
            ..StripeSimConfig::default()
        })
        .await
    }

    /// Stops the server and the background tasks (pending deliveries are dropped), and waits
    /// until the server has stopped.
    pub async fn stop(mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        self.server.stop().await;
    }

    /// What `async_stripe::ClientBuilder::url` takes: `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The control API base, e.g. `http://127.0.0.1:40123/__sim`.
    pub fn control_url(&self) -> String {
        self.server.control_url()
    }

    /// The secret key the API accepts.
    pub fn api_key(&self) -> String {
        self.shared.lock().api_key.clone()
    }

    /// Sends future events (and retries of pending ones) to `url`, signed with `secrets`.
    pub fn set_webhook(&self, url: Url, secrets: Vec<String>) {
        let mut state = self.shared.lock();
        state.webhook_url = Some(url);
        state.webhook_secrets = secrets;
    }

    /// Stops delivering: later events are recorded only.
    pub fn clear_webhook(&self) {
        self.shared.lock().webhook_url = None;
    }

    pub fn set_duplicate_deliveries(&self, on: bool) {
        self.shared.lock().duplicate_deliveries = on;
    }

    /// The retry schedule for deliveries that fail from now on.
    pub fn set_retry_delays(&self, delays: Vec<Duration>) {
        self.shared.lock().retry_delays = delays;
    }

    /// Drops the deliveries of `rate` of the events created from now on (0.0 none, 1.0 all: an
    /// outage): they are listed by `GET /v1/events` as undelivered but never sent nor retried.
    /// Which ones is picked by an RNG seeded with the configured `seed` (0 without one), afresh
    /// at each call, so a run drops the same events each time. Fails outside 0.0–1.0.
    pub fn set_drop_deliveries(&self, rate: f64) -> Result<(), SimError> {
        self.shared.lock().drops.set(rate, None)
    }

    /// [`StripeSim::set_drop_deliveries`] with the RNG seeded with `seed`.
    pub fn set_drop_deliveries_seeded(&self, rate: f64, seed: u64) -> Result<(), SimError> {
        self.shared.lock().drops.set(rate, Some(seed))
    }

    /// The events whose delivery was dropped, oldest first. [`StripeSim::redeliver`] still
    /// delivers them.
    pub fn dropped_deliveries(&self) -> Vec<String> {
        self.shared.lock().drops.dropped.clone()
    }

    /// Renders events created from now on with another `api_version` and, if asked, unknown
    /// fields (in webhook bodies and `GET /v1/events` alike: they are one stored payload);
    /// `None` goes back to the configured rendering. Earlier events keep their rendering.
    pub fn set_event_drift(&self, drift: Option<EventDrift>) {
        self.shared.lock().event_drift = drift;
    }

    pub fn session(&self, id: &str) -> Option<SimSession> {
        let state = self.shared.lock();
        state.store.session_view(id, &state.public_base)
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<SimSession> {
        let state = self.shared.lock();
        state.store.session_views(&state.public_base)
    }

    /// A buyer pays by card: a PaymentIntent (`pi_…`) and a charge (`ch_…`) are created, the
    /// session becomes `complete` and `paid`, and `checkout.session.completed` then
    /// `charge.succeeded` are sent. A destination charge also transfers the amount to the
    /// connected account and collects its application fee (`transfer.created`,
    /// `application_fee.created`); it is refused while that account cannot receive transfers.
    pub fn pay(&self, session_id: &str) -> Result<SimSession, SimError> {
        self.control(session_id, |state| {
            state.pay(session_id, None, false, &Origin::default())
        })
    }

    /// A buyer pays by bank debit: the session becomes `complete` but `unpaid` and
    /// `checkout.session.completed` is sent; [`StripeSim::settle`] finishes the payment.
    pub fn pay_delayed(&self, session_id: &str) -> Result<SimSession, SimError> {
        self.control(session_id, |state| {
            state.pay(session_id, None, true, &Origin::default())
        })
    }

    /// The bank debit of a [`StripeSim::pay_delayed`] session succeeds (the session becomes
    /// `paid`; `checkout.session.async_payment_succeeded`, then `charge.succeeded` and a
    /// destination charge's transfer and fee) or fails (it stays `unpaid`;
    /// `checkout.session.async_payment_failed`).
    pub fn settle(&self, session_id: &str, succeeded: bool) -> Result<SimSession, SimError> {
        self.control(session_id, |state| state.settle(session_id, succeeded))
    }

    /// Expires an open session: `checkout.session.expired`.
    pub fn expire(&self, session_id: &str) -> Result<SimSession, SimError> {
        self.control(session_id, |state| {
            state.expire(session_id, &Origin::default())
        })
    }

    fn control(
        &self,
        session_id: &str,
        action: impl FnOnce(&mut SimState) -> Result<(), SimError>,
    ) -> Result<SimSession, SimError> {
        let mut state = self.shared.lock();
        action(&mut state)?;
        state
            .store
            .session_view(session_id, &state.public_base)
            .ok_or_else(|| SimError::UnknownSession(session_id.to_owned()))
    }

    /// Refunds `amount` (or what is left) of a PaymentIntent's charge, as `POST /v1/refunds`
    /// does, and sends `charge.refunded` (whose `refunded` is true only once fully refunded).
    /// A destination charge's transfer and fee are left alone, Stripe's default; see
    /// [`StripeSim::refund_reversing`].
    pub fn refund(&self, payment_intent: &str, amount: Option<i64>) -> Result<SimRefund, SimError> {
        let mut state = self.shared.lock();
        let request = RefundRequest {
            payment_intent: payment_intent.to_owned(),
            amount,
            ..RefundRequest::default()
        };
        let id = state.refund(request, &Origin::default())?;
        state
            .refund_view(&id)
            .ok_or_else(|| SimError::UnknownPaymentIntent(payment_intent.to_owned()))
    }

    /// The buyer's bank charges the payment back: a dispute (reason `fraudulent`, status
    /// `needs_response`), `charge.dispute.created` then `charge.dispute.funds_withdrawn`. The
    /// charge cannot be refunded until the dispute is won.
    pub fn dispute(&self, payment_intent: &str) -> Result<SimDispute, SimError> {
        self.open_dispute(payment_intent, false)
    }

    /// The buyer's bank asks before charging back (a Visa inquiry, a retrieval request): a
    /// dispute with status `warning_needs_response`, `charge.dispute.created` only; no funds
    /// move and the charge can still be refunded.
    pub fn dispute_inquiry(&self, payment_intent: &str) -> Result<SimDispute, SimError> {
        self.open_dispute(payment_intent, true)
    }

    fn open_dispute(&self, payment_intent: &str, inquiry: bool) -> Result<SimDispute, SimError> {
        let mut state = self.shared.lock();
        let id = state.open_dispute(payment_intent, inquiry)?;
        state
            .dispute_view(&id)
            .ok_or_else(|| SimError::UnknownPaymentIntent(payment_intent.to_owned()))
    }

    /// An open inquiry becomes a chargeback: `needs_response`, `charge.dispute.updated` (with
    /// the old status in `previous_attributes`) then `charge.dispute.funds_withdrawn`.
    pub fn escalate_dispute(&self, dispute_id: &str) -> Result<SimDispute, SimError> {
        self.dispute_control(dispute_id, |state| state.escalate_dispute(dispute_id))
    }

    /// The bank decides an open dispute: a chargeback becomes `won` (`charge.dispute.closed`
    /// then `charge.dispute.funds_reinstated`; the charge is refundable again) or `lost`
    /// (`charge.dispute.closed`); an inquiry becomes `warning_closed` (`charge.dispute.closed`)
    /// whichever the outcome. A closed dispute cannot be closed again.
    pub fn close_dispute(
        &self,
        dispute_id: &str,
        outcome: DisputeOutcome,
    ) -> Result<SimDispute, SimError> {
        self.dispute_control(dispute_id, |state| state.close_dispute(dispute_id, outcome))
    }

    /// A dispute as it stands now.
    pub fn dispute_by_id(&self, dispute_id: &str) -> Option<SimDispute> {
        self.shared.lock().dispute_view(dispute_id)
    }

    fn dispute_control(
        &self,
        dispute_id: &str,
        action: impl FnOnce(&mut SimState) -> Result<(), SimError>,
    ) -> Result<SimDispute, SimError> {
        let mut state = self.shared.lock();
        action(&mut state)?;
        state
            .dispute_view(dispute_id)
            .ok_or_else(|| SimError::UnknownDispute(dispute_id.to_owned()))
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<SimEvent> {
        self.shared.lock().events.clone()
    }

    /// Every delivery attempt so far, in the order they finished.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.lock().deliveries.clone()
    }

    /// Delivers an event again (a new delivery, with its own retries), as the Dashboard's
    /// "Resend" does.
    pub fn redeliver(&self, event_id: &str) -> Result<(), SimError> {
        let state = self.shared.lock();
        if state.event(event_id).is_none() {
            return Err(SimError::UnknownEvent(event_id.to_owned()));
        }
        state.queue_delivery(event_id);
        Ok(())
    }

    /// Waits until `event_id` has had a successful delivery; false if `timeout` passed first.
    pub async fn wait_delivered(&self, event_id: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let delivered = self
                .shared
                .lock()
                .deliveries
                .iter()
                .any(|record| record.event_id == event_id && record.succeeded());
            if delivered {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every `/v1` request so far, in the order they were answered.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// The `Stripe-Signature` value for `payload` at `timestamp` under the configured secrets.
    pub fn sign(&self, payload: &str, timestamp: i64) -> String {
        let secrets = self.shared.lock().webhook_secrets.clone();
        signature_header(payload, timestamp, &secrets)
    }
}

/// The hosted pages, the `/v1` API and Stripe's answer to any other path; the control API is
/// mounted by [`Bound::serve`].
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/pay").configure(hosted::routes))
        .service(web::scope("/connect").configure(connect::hosted::routes))
        .service(web::scope("/v1").default_service(web::to(api::serve)))
        .default_service(web::to(api::unrecognized));
}

async fn sweep_expired(shared: Shared) {
    let mut interval = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        interval.tick().await;
        shared.lock().expire_overdue();
    }
}

impl Drop for StripeSim {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
        // The server stops when `self.server` is dropped, right after this.
    }
}

// Written by hand: the state holds the key and the signing secrets, which must not reach a log
// through `{:?}`.
impl fmt::Debug for StripeSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSim")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}
