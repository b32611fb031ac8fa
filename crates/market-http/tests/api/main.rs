//! End-to-end tests of the HTTP API: the real application on port 0, real PostgreSQL, and the Xano
//! and Stripe simulators. One binary, a module per feature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod admin_catalog;
mod admin_matrix;
mod admin_ops;
mod admin_purchases;
mod backfill;
mod catalog;
mod checkout;
mod connect;
mod errors;
mod helpers;
mod intake;
mod mail;
mod ops;
mod outgoing_webhooks;
mod pages;
mod pooler;
mod portal;
mod purchase_flow;
mod rate_limits;
mod replica;
mod reports;
mod rotation;
mod sealed;
mod security;
mod seller_isolation;
mod seller_keys;
mod seller_work;
mod seller_xano;
mod sellers;
mod success_page;
mod upgrade;
mod usage;
mod webhook_effects;
mod webhooks;
mod xano_refusals;
