//! Outgoing webhooks: sellers (and the platform) are told what happened, at least once, in order
//! per purchase, signed to the Standard Webhooks specification.
//!
//! **Written with the fact.** The events are written by the database itself (migration 29): a
//! trigger on each fact (a purchase's status, a token deleted at Xano, a rotation done, a pool
//! refill queued under the low-water mark, a credential refused or healed, a job dead) writes the
//! `webhook_event` and a `webhook_delivery` per endpoint that wants it, in the fact's transaction.
//! No code path can forget one, and a fact applied twice writes none (`fact` is unique). This module
//! has no `emit`: Rust never writes an event.
//!
//! - [`endpoints`]: where a seller's events go, managed by the seller and the operator; each
//!   endpoint has its own signing secret, sealed at rest, rolled with an overlap during which both
//!   sign.
//! - [`deliveries`]: the outbox as a queue. A delivery is claimed under a lease by any instance,
//!   only when no earlier delivery of the same purchase to the same endpoint is pending (order per
//!   purchase), sent by the deliverer (`deliverer`, a floor up) through the `courier`, and recorded
//!   with its attempt in the delivery log. A failed attempt is retried on exponential backoff until
//!   [`Policy::retry_for`] has passed since the first; an endpoint failing without a break for
//!   [`Policy::disable_after`] is disabled and its seller told by email.
//! - [`history`]: the delivery log as the owner reads it; redelivery and replay of a time range,
//!   which put deliveries back in the queue.
//!
//! Who may touch what is one value, [`Scope`]: a seller sees and changes only its own endpoints;
//! the operator, every one (and the platform's, which receive every seller's events).

pub mod deliveries;
pub mod endpoints;
pub mod history;
mod kinds;

pub use deliveries::{Claimed, Policy, Recorded};
pub use endpoints::{Endpoint, EndpointFilter, EndpointPatch, EndpointSpec, MAX_ENDPOINTS};
pub use history::{Delivery, LoggedAttempt};
pub use kinds::{EventType, Scope};
