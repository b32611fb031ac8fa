//! The Stripe simulator exercised with async-stripe (the client the service uses), reqwest (as a
//! browser and as the control client) and a local webhook receiver, one module per concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod api_errors;
mod checkout;
mod connect_accounts;
mod connect_charges;
mod connect_helpers;
mod connect_onboarding;
mod connect_refunds;
mod connect_shapes;
mod control;
mod delivery;
mod disputes;
mod drift;
mod dropping;
mod events;
mod helpers;
mod idempotency;
mod listing;
mod refunds;
