//! Offline stand-ins for the outside services the marketplace talks to.
//!
//! - [`xano`]: an in-memory simulator of Xano's Master Metadata API (`/api:meta`), with fault
//!   injection and a call log, so the client, the core and the whole product run without Xano.
//! - [`stripe`]: a simulator of Stripe's Checkout Sessions and refunds API, its hosted checkout
//!   page and its signed webhooks, so payments run without Stripe.
//!
//! What the two share is written once: `server` binds, serves, stops and mounts the common part of
//! the `/__sim` control API; `shared` is the lock each keeps its state behind.

mod server;
mod shared;
pub mod stripe;
pub mod xano;
