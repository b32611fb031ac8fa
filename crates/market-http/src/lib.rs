//! `market-http`: how storefronts, Stripe and operators reach the marketplace over HTTP. The
//! `market` binary (the workspace's root package) parses flags into [`startup::Settings`] and runs
//! the [`startup::Application`] this crate builds; nothing here reads the environment, starts a
//! simulator or opens a transaction.
//!
//! Reading order, top floor first (a module imports only from floors below it; the workspace's
//! `tests/architecture.rs` checks it):
//! - [`startup`]: settings → a running [`startup::Application`] (server + job runner).
//! - [`server`]: the public listener's middleware stack around the routes.
//! - [`openapi`]: the API document, assembled from the handlers, and its two routes.
//! - [`routes`]: the route table, then one module per resource; [`routes::webhooks`] is where
//!   Stripe's events come in. Handlers parse, call one `market-core` function, and map.
//! - [`state`], [`catalog_cache`]: what every handler can reach; the public catalog in memory.
//! - [`limits`]: per-client rate limits of the public endpoints (a middleware per class).
//! - [`extract`]: bearer credentials, idempotency keys, admins; [`wire`]: every request and
//!   response body, built `From` the core types.
//! - [`backfill`]: what webhooks never delivered, found by asking Stripe (its events, and the
//!   sessions of purchases pending too long); [`stripe_events`]: Stripe's list of events, raw.
//! - [`stripe`]: async-stripe (sessions, refunds, webhook signatures); the domain's payment
//!   provider. [`intake`]: a verified body read leniently into a `market-core` fact; [`inbox`]: the
//!   one path of every event into the inbox (webhook, backfill, replay of those kept unreadable).
//! - [`error`]: the one error envelope, the table of error codes, the one mapping to HTTP statuses.
//! - [`metrics`]; `crashpoints` (only with the `failpoints` feature): `MARKET_CRASHPOINTS` arms
//!   fail points that abort the process, for the chaos tests.
//!
//! The domain (and every invariant) lives in `market-core`; nothing here decides what a purchase is.

pub mod backfill;
pub mod catalog_cache;
#[cfg(feature = "failpoints")]
pub mod crashpoints;
pub mod error;
pub mod extract;
pub mod inbox;
pub mod intake;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod stripe;
pub mod stripe_events;
pub mod wire;
