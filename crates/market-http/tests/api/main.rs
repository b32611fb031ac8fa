//! End-to-end tests of the HTTP API: the real application on port 0, real PostgreSQL, and the Xano
//! and Stripe simulators. One binary, a module per feature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod helpers;
mod purchase_flow;
