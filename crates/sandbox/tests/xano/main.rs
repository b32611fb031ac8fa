//! The Xano simulator exercised over HTTP with reqwest, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod call_log;
mod callers;
mod control;
mod faults;
mod helpers;
mod incidents;
mod install;
mod instances;
mod rate_limit;
mod rotation;
mod runtime;
mod scoped_faults;
mod snippets;
mod tokens;
