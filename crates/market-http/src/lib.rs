//! `market-http`: how storefronts, Stripe and operators reach the marketplace.
//!
//! Reading order:
//! - [`cli`]: the `market` binary's commands (`serve`, `migrate`, `tiers apply`, `reconcile`, `sim`);
//!   [`operator`]: its operators' commands (`purchases`, `instances`, `status`).
//! - [`config`]: every flag and environment variable.
//! - [`startup`]: settings → a running [`startup::Application`] (server + job runner).
//! - [`routes`]: the route table, then one module per resource; [`routes::webhooks`] is where Stripe's
//!   events come in.
//! - [`stripe`]: async-stripe, and Stripe objects → `market-core` facts.
//! - [`error`]: the one error envelope and the one mapping from errors to HTTP statuses.
//! - [`openapi`], [`metrics`], [`telemetry`].
//! - `crashpoints` (only with the `failpoints` feature): `MARKET_CRASHPOINTS` arms fail points that
//!   abort the process, for the chaos tests.
//!
//! The domain (and every invariant) lives in `market-core`; nothing here decides what a purchase is.

pub mod catalog_cache;
pub mod cli;
pub mod config;
#[cfg(feature = "failpoints")]
pub mod crashpoints;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod routes;
pub mod sandbox_mode;
pub mod sim_cli;
pub mod startup;
pub mod state;
pub mod stripe;
pub mod telemetry;
pub mod tiers_file;
