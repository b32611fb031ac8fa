//! Integration tests of the client against the in-process Xano simulator (`sandbox::xano`).
//! One binary, a module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod endpoints;
mod errors;
mod outcome_unknown;
mod rate_limit;
mod retries;
