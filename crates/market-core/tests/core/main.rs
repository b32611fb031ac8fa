//! `market-core`'s integration tests, as one test binary (one link instead of nine): a database of
//! its own per test, the Xano simulator in-process, the job runner as the service runs it. One
//! module per concern:
//! - `smoke`: the whole path once: pool fill, payment, fulfilment, refund;
//! - `catalog`: listings, tiers and their versioning rule, checkout against them;
//! - `connect`: sellers paid through Stripe Connect: the house never connected, a purchase's
//!   split whole and within its price, its seller recorded;
//! - `concurrency`: many deliveries, many buyers, several instances, one database;
//! - `courier`: outgoing webhooks against a real listener: signed, never redirected, bounded,
//!   and never sent where the SSRF guard refuses (the listener counts zero connections);
//! - `credentials`: Xano refuses one instance's access token (a rotation): that instance hands its
//!   work to the others and stops; they never flip each other's credential;
//! - `refunds`: refunds, disputes and the other ways a purchase closes, in every order;
//! - `disputes`: a dispute from inquiry to close; a won one gives access back exactly once;
//! - `forbidden_snippets`: Xano refuses one snippet: only its listing's jobs park, until a probe
//!   lifts it;
//! - `foreign_sessions`: a session made elsewhere cannot pay for, or close, a stranger's purchase;
//! - `job_claim`: the job queue's claim and fence;
//! - `one_statement`: the one-statement fulfilment raced by a refund and by a pool taken meanwhile
//!   writes nothing and leaves the fact to the general path; its trail is the general path's;
//! - `dead_jobs`: jobs that die once instead of looping, and owed work the sweep always queues;
//! - `leases`: slow Xano calls and shutdowns; execution at least once, effects exactly once;
//! - `reconcile`: a listing reconciled with what Xano really holds;
//! - `reconcile_guard`: reappeared tokens resolved, and a pass that meets a short list held back;
//! - `cut_lists`: a job that writes a token's installs count never writes ours when Xano's list
//!   leaves the token out: it waits for a full list, and the buyer's installs are kept;
//! - `reports`: sales reports' figures for every way a sale ends, dated by the day paid, read
//!   through their indexes;
//! - `seller_fairness`: one seller's slow Xano holds at most half an instance's workers;
//! - `seller_plans`: a seller's declared Xano plan paces its client;
//! - `sealed_tokens`: tokens at rest sealed, found by fingerprint, and keys that roll;
//! - `xano_faults`: 429 storms, 5xx, creations whose answers were lost, the only credential refused;
//! - `stalled_instance`: an instance that stalls mid-transaction does not fail the others;
//! - `upgrades`: an upgrade raises the same token's limit once, in any order; a refund lowers it;
//! - `webhooks` (the shared receiver and deliverer), `webhook_events`, `webhook_delivery`,
//!   `webhook_endpoints`: outgoing webhooks written with each fact, sent in order at least once,
//!   signed, retried, given up on, replayed, disabled, never to an address the guard refuses.
//! - `trigger_plans`: the fulfilment path's checks rewritten to cost the same whatever plan is
//!   cached (migration 33) still refuse what they refused;
//! - `pool_gauges`: the pools as the metrics show them: counted by state, the emptiest named;
//! - `refill`: a pool refilled as fast as the account's Xano limit allows: creates in flight
//!   together, no 429, nothing lost when a create or a lease fails.
//!
//! The model test (`tests/model.rs`) stays a binary of its own: its cases use 60 ms leases, and
//! alone it measures the engine rather than a neighbouring test's load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod catalog;
mod concurrency;
mod connect;
mod courier;
mod credentials;
mod cut_lists;
mod dead_jobs;
mod disputes;
mod forbidden_snippets;
mod foreign_sessions;
mod job_claim;
mod leases;
mod one_statement;
mod pool_gauges;
mod reconcile;
mod reconcile_guard;
mod refill;
mod refunds;
mod report_pages;
mod reports;
mod sealed_tokens;
mod seller_fairness;
mod seller_plans;
mod smoke;
mod stalled_instance;
mod trigger_plans;
mod upgrades;
mod webhook_delivery;
mod webhook_endpoints;
mod webhook_events;
mod webhooks;
mod xano_faults;
