//! `market-core`: the marketplace's domain on PostgreSQL.
//!
//! The promise: **every paid purchase gets exactly one live Xano install token, and refunded or
//! disputed ones get none**, whatever Stripe repeats or reorders, whichever instance dies, and
//! however Xano fails. How it is kept (read in this order):
//!
//! - [`status`]: the purchase state machine, one pure function.
//! - [`payments`]: a Stripe fact (paid, refunded, …) applied in one transaction with the inbox,
//!   the refund tombstone and fulfilment from the pool.
//! - [`pool`]: tokens minted ahead of sales; claiming one is a PostgreSQL row update.
//! - [`jobs`]: the work that calls Xano (refill pools, mint when a pool is empty, delete tokens),
//!   claimed with leases by every instance, fenced, safe to run twice.
//! - [`reconcile`]: Xano's tokens compared with ours; orphans adopted, the missing flagged.
//! - [`health`]: the Xano credential's state; jobs park while Xano refuses it.
//! - [`listings`], [`tiers`]: the catalog operators manage (tier terms never change: new versions).
//! - [`purchases`], [`receipt`]: checkout and the buyer's receipt.
//! - [`audit`]: the append-only log of every change.
//! - [`db`]: connection, migrations ([`MIGRATOR`]), retry of aborted transactions.
//!
//! The invariants themselves live in the migrations as constraints (see `docs/ARCHITECTURE.md`).

pub mod audit;
pub mod catalog;
pub mod db;
mod error;
pub mod health;
mod ids;
pub mod jobs;
pub mod listings;
mod market;
pub mod payments;
pub mod pool;
pub mod purchases;
pub mod receipt;
pub mod reconcile;
pub mod status;
pub mod tiers;

pub use db::MIGRATOR;
pub use error::{Error, Result};
pub use ids::{Canonical, Currency, Email, ListingId, Money, PurchaseId, Slug, TierId, TokenId};
pub use jobs::JobsConfig;
pub use market::Market;
pub use status::{PurchaseEvent, PurchaseStatus};
