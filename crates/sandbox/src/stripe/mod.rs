//! A simulator of the parts of Stripe the marketplace uses, for tests and demos that must run
//! offline: Checkout Sessions and refunds over the real API shape (form-encoded requests,
//! `Authorization: Bearer sk_…`, idempotency keys, Stripe's error bodies), a hosted checkout
//! page, disputes from inquiry to close, Connect (Express sellers onboarded on a hosted form,
//! destination charges with application fees, reversals), and signed webhook events delivered,
//! retried and optionally duplicated and shuffled as Stripe may do. On request it also
//! misbehaves as Stripe does on a bad day: deliveries dropped, events in another API version with
//! unknown fields. Its answers and events deserialize with async-stripe's own types.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sandbox::stripe::{StripeSim, StripeSimConfig};
//! let sim = StripeSim::start(StripeSimConfig {
//!     webhook_url: Some("http://127.0.0.1:8080/v1/webhooks/stripe".parse().map_err(std::io::Error::other)?),
//!     webhook_secrets: vec!["whsec_test".to_owned()],
//!     ..StripeSimConfig::default()
//! })
//! .await?;
//! // point async-stripe at sim.base_url() with sim.api_key(), create a session, then:
//! # let session_id = "cs_test_…";
//! let _paid = sim.pay(session_id); // checkout.session.completed is on its way
//! sim.stop().await;
//! # Ok(()) }
//! ```
//!
//! Map of the module:
//! - [`sim`]: [`StripeSim`], the running server and its Rust controls.
//! - [`config`]: [`StripeSimConfig`]: address, key, webhook endpoint and secrets, delivery knobs.
//! - [`model`]: the public views ([`SimSession`], [`SimEvent`], [`DeliveryRecord`],
//!   [`SimAccount`], [`SimLedgerEntry`], …).
//! - `api`: the `/v1` pipeline (auth, routing, idempotency, call log); `sessions`, `refunds`
//!   and `events`: the endpoints (Connect's are in `connect`); `form`: Stripe's bracketed form
//!   parameters; `idempotency`: saved answers; `objects`: each object's JSON; `error`: Stripe's
//!   error bodies and [`SimError`].
//! - `ops`: paying, settling, expiring and refunding, and the events they emit; `disputes`: a
//!   dispute's lifecycle (chargeback or inquiry, escalation, won, lost) and its events (table in
//!   that file); `store`: the records; `state`: the shared state and event creation.
//! - [`webhook`]: signing and the background delivery with retries, duplicates and shuffling;
//!   `faults`: deliveries dropped on purpose (all, or a seeded share) and drifted events (another
//!   `api_version`, unknown fields).
//! - `connect`: Stripe Connect: Express accounts and their onboarding links and login links,
//!   destination charges' transfers and application fees, reversals and fee refunds, their
//!   hosted pages (`/connect/…`), controls and the ledger (map and limits in that module).
//! - `hosted`: the checkout page (`/pay/{id}`); `money`: amounts for people.
//! - `control`: the same controls over HTTP under `/__sim` (table in that file).
//!
//! Secrets: the API key and the webhook signing secrets never reach `tracing` output or `Debug`
//! output. Log lines carry path templates, event ids and types, statuses only.

mod api;
pub mod config;
mod connect;
mod control;
mod disputes;
mod error;
mod events;
mod faults;
mod form;
mod hosted;
mod idempotency;
pub mod model;
mod money;
mod objects;
mod ops;
mod refunds;
mod sessions;
pub mod sim;
mod state;
mod store;
pub mod webhook;

pub use config::{API_VERSION, StripeSimConfig};
pub use error::SimError;
pub use model::{
    CallRecord, DeliveryRecord, DisputeOutcome, DisputeStatus, EventDrift, PaymentStatus,
    SessionStatus, SimAccount, SimApplicationFee, SimDispute, SimEvent, SimLedgerEntry, SimRefund,
    SimSession, SimTransfer,
};
pub use sim::StripeSim;
pub use webhook::signature_header;
