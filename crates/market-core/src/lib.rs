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
//! - [`jobs`]: the work that calls Xano (refill pools, mint when a pool is empty, delete tokens,
//!   reconcile), claimed from the [`queue`] with leases by every instance, fenced, safe to run twice.
//! - [`reconcile`]: Xano's tokens compared with ours; orphans adopted, the missing flagged.
//! - [`health`]: Xano's refusals, per credential (an instance whose token is refused stops
//!   claiming and hands its work to the others) and per snippet (a forbidden listing's jobs park).
//! - [`listings`], [`tiers`], [`tiers_file`]: the catalog operators manage (tier terms never
//!   change: new versions); [`catalog`]: what storefronts read of it.
//! - [`checkout`], [`purchases`], [`receipt`]: starting a purchase, and the buyer's receipt;
//!   [`provider`]: what the domain asks of the payment provider (Stripe, in `market-http`);
//!   [`reports`]: sales over a range of days (gross, refunds, disputes, platform fees, net) by
//!   day, seller, listing and tier, in one query.
//! - [`envelope`], [`keys`]: tokens sealed at rest (AES-256-GCM, a key id per value, keys that
//!   roll) and found by an HMAC fingerprint.
//! - [`letters`]: buyers' email through a transactional outbox (the database writes a message with
//!   the fact), rendered when sent; [`postman`]: how it leaves (SMTP, or an in-process capture).
//! - [`webhooks`]: sellers (and the platform) told what happened through Standard Webhooks: the
//!   database writes an event and its deliveries with each fact, delivered in order per purchase
//!   and at least once by every instance's [`deliverer`]; [`courier`]: how one leaves (signed,
//!   10 s, never to an internal address, checked after DNS resolution).
//! - [`portal`]: buyers sign in with a single-use link by email and see every purchase of it;
//!   [`rotation`]: a leaked token replaced, its installs carried over, never two live at once;
//!   [`upgrades`]: a purchase moved to a higher tier, its token's limit raised in place at Xano;
//!   [`usage`]: install counts read from Xano when a buyer looks and they are over a minute old.
//! - [`sellers`]: the marketplace's tenants, each owning listings and signing in with an API key,
//!   suspended and reactivated by the operator; the *house* owns what was made without one;
//!   [`seller_keys`]: a seller's keys listed by id, issued and revoked (rotation without downtime);
//!   [`seller_xano`]: each seller's own Xano credential, checked, sealed, never returned;
//!   [`accounts`]: whose Xano a listing's calls go to; [`connect`]: each seller paid through their
//!   own Stripe connected account, the platform's fee kept as an application fee.
//! - [`audit`]: the append-only log of every change.
//! - [`db`]: connection, migrations ([`MIGRATOR`]), retry of aborted transactions.
//! - [`Market`]: the database, the Xano client and the workers' tuning, bundled once.
//! - Values parsed once at the boundary: ids ([`PurchaseId`], …), [`Money`], names ([`Canonical`],
//!   [`Slug`], [`Email`]); [`Error`] with its typed [`Conflict`]s.
//!
//! **Floors.** Modules import only from their own floor or below, never up, and no two import each
//! other (`tests/architecture.rs` at the workspace root checks both):
//! 1. values: `envelope`, `error`, `text`, `ids`, `money`, `names`, `status`;
//! 2. plumbing: `db`, `receipt`, `provider`, `postman`, `courier`, `market`, `keys`, then `audit`,
//!    `queue`, `accounts`;
//! 3. aggregates: `health`, `pool`, `listings`, `catalog`, then `tiers`, `purchases`, `reports`,
//!    `tiers_file`, `sellers`, `seller_keys`, `seller_xano`, `connect`, then `letters`, `webhooks`;
//! 4. flows: `payments`, `checkout`, `portal`, `rotation`, `usage`, then `upgrades`, `reconcile`;
//! 5. `jobs`, the adapters from claimed jobs to the flows, and the runner; `deliverer`, which
//!    sends the webhook outbox.
//!
//! Every function that writes owns its transaction and runs it again when PostgreSQL aborts it
//! (`db::retry_transient`); callers never `begin()`. The invariants themselves live in the
//! migrations as constraints (see `docs/ARCHITECTURE.md`).

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod checkout;
pub mod connect;
pub mod courier;
pub mod db;
pub mod deliverer;
pub mod envelope;
mod error;
pub mod health;
mod ids;
pub mod jobs;
pub mod keys;
pub mod letters;
pub mod listings;
mod market;
mod money;
mod names;
pub mod payments;
pub mod pool;
pub mod portal;
pub mod postman;
pub mod provider;
pub mod purchases;
pub mod queue;
pub mod receipt;
pub mod reconcile;
pub mod reports;
pub mod rotation;
pub mod seller_keys;
pub mod seller_xano;
pub mod sellers;
pub mod status;
mod text;
pub mod tiers;
pub mod tiers_file;
pub mod upgrades;
pub mod usage;
pub mod webhooks;

pub use db::MIGRATOR;
pub use error::{Conflict, Error, Result};
pub use ids::{ListingId, PurchaseId, TierId, TokenId};
pub use market::{Credential, JobsConfig, Market};
pub use money::{Currency, FeeRate, Money};
pub use names::{Canonical, Email, Slug};
pub use status::{PurchaseEvent, PurchaseStatus};
