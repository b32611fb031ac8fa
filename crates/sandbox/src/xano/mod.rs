//! An in-memory simulator of Xano's Master Metadata API (`https://app.xano.com/api:meta`),
//! faithful to `shared/spec/xano-master-api.md`, for tests and demos that must run offline.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sandbox::xano::{Fault, XanoSim, XanoSimConfig};
//! let sim = XanoSim::start(XanoSimConfig::default()).await?;
//! sim.add_snippet("kRG3t_-i", "Token Share Test");
//! sim.inject(Fault::RateLimited { count: 1, retry_after: Some(1), only: None });
//! // point a client at sim.base_url() with sim.access_token() ...
//! assert!(sim.calls().is_empty());
//! sim.stop().await;
//! # Ok(()) }
//! ```
//!
//! Map of the module:
//! - [`sim`]: [`XanoSim`], the running server and its Rust controls (start, seed, inspect, faults).
//! - [`config`]: [`XanoSimConfig`]: bind address, default account, page size, limits, seed.
//! - [`model`]: the public seed/inspect types ([`SimInstance`], [`SimToken`], …) and Xano's
//!   timestamp format.
//! - `api`: the pipeline each `/api:meta` request runs through (log, route, faults, auth, limit,
//!   logic); `endpoint` maps a request line to one of the ten endpoints.
//! - `handlers`: the endpoints' logic and JSON shapes; `store`: accounts, snippets and tokens;
//!   `body`: JSON, form and multipart bodies; `error`: Xano's error bodies.
//! - [`faults`]: the fault rules, each for every account or for one ([`FaultRule`]);
//!   `fault_engine` decides from them what each request suffers.
//! - [`rate_limit`]: the free-plan limit (10 requests per 20 s per access token).
//! - [`calls`]: the call log; `caller` says whose token each call carried (a fingerprint, never
//!   the token) and whose snippet it named.
//! - `control`: the same controls over HTTP under `/__sim` (table in that file); `serde_ms`:
//!   durations as milliseconds in that API's JSON.
//!
//! Secrets: nothing here logs an access token or an install token value. Log lines carry path
//! templates (`/snippet/{canonical}/token/{token}`) and statuses only.

mod api;
mod body;
mod call_guard;
mod caller;
pub mod calls;
pub mod config;
mod control;
mod endpoint;
mod error;
mod fault_engine;
pub mod faults;
mod handlers;
pub mod model;
pub mod rate_limit;
mod serde_ms;
pub mod sim;
mod state;
mod store;

pub use caller::token_fingerprint;
pub use calls::{CallRecord, CallRecordJson};
pub use config::XanoSimConfig;
pub use endpoint::Endpoint;
pub use faults::{Fault, FaultRule};
pub use model::{
    InstallAccess, InstallError, SimAccount, SimInstance, SimSnippet, SimToken, TokenState,
    xano_timestamp,
};
pub use rate_limit::FreePlanPolicy;
pub use sim::XanoSim;
