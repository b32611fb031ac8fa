//! Plain serde structs for what the Master API returns.
//!
//! Parsing is tolerant in the ways the spec's "Uncertain" list demands: unknown fields are
//! ignored, optional fields may be absent or `null`, and instances decode from both the official
//! shape and the origin guide's shape (the deserializers that allow it are in `lenient`).

mod account;
mod lenient;
mod snippet;
mod token;

pub use account::{Instance, Me};
pub use snippet::{InstallAccess, Snippet, SnippetPage};
pub use token::{InstallToken, TokenValue};
