//! Test-only support shared by every crate's tests.
//!
//! - [`TestDb`]: a fresh PostgreSQL database per test, with the project's migrations applied.
//!   The server comes from `DATABASE_URL`; without it, from a `postgres:16` container started by
//!   testcontainers where Docker runs; otherwise the test fails with a message saying how to provide one.
//! - [`AppRoute`]: how the application under test reaches its database: directly, through a
//!   PgBouncer in transaction mode, or with a read replica, as the environment says
//!   (`MARKET_TEST_POOLER_URL`, `MARKET_TEST_READ_REPLICA`).
//! - [`http::json`]: an HTTP call that must answer JSON.
//! - [`LogCapture`]: every `tracing` event of the test process, at TRACE, in a buffer that a test can
//!   search for secrets.
//! - [`smtp::SmtpSink`]: a real SMTP server (aiosmtpd, in a Python process of its own) that records
//!   every message it accepts, and can be stopped and restarted to simulate an outage.
//! - [`receiver::WebhookReceiver`]: a real webhook receiver that verifies every delivery with the
//!   official Standard Webhooks library for Python, in a process of its own; it can be stopped,
//!   made to fail or to answer too slowly.
//!
//! Panicking is how a test harness reports a broken environment, hence the `expect`s below.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test-only crate: a failed set-up must fail the test"
)]

mod db;
pub mod http;
mod logs;
mod process;
pub mod receiver;
mod route;
pub mod smtp;

pub use db::{TestDb, server_url};
pub use logs::LogCapture;
pub use route::{AppRoute, read_replica};
