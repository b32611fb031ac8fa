//! Wire types: every request and response body of the API, apart from the domain's types.
//!
//! The domain (`market-core`) does not derive `Serialize` for the wire: each body here is built
//! `From` the core type it shows, so renaming a field in core cannot silently change the API, and
//! the OpenAPI document is typed everywhere. The CLI prints the same bodies, so `jq` filters work
//! on both.

pub mod admin_catalog;
pub mod admin_purchases;
pub mod catalog;
pub mod checkout;
mod number;
pub mod object;
pub mod ops;
pub mod portal;
pub mod purchases;
pub mod reports;
pub mod rotation;
pub mod seller_keys;
pub mod sellers;
pub mod upgrade;
pub mod webhook_events;
pub mod webhooks;
