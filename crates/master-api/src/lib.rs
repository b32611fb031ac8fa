//! A typed async client for Xano's Master (account-level) Metadata API, modelled on crates.io's
//! GitHub client: a `Client` holding the HTTP pool, base URL and access token; plain serde
//! structs; one error enum derived from the outcome.
//!
//! Map of the crate:
//! - [`client`]: [`Client`] and [`ClientBuilder`] (base URL, token, timeouts, retry, rate limit).
//! - `endpoints/`: one method per endpoint: [`Client::me`], [`Client::instances`],
//!   [`Client::instance`], [`Client::snippets`] / [`Client::snippets_page`], [`Client::snippet`],
//!   [`Client::update_snippet_access`], [`Client::tokens`], [`Client::create_token`],
//!   [`Client::update_token`], [`Client::delete_token`].
//! - `transport`: URL building (percent-encoded segments), the attempt loop, tracing.
//! - [`retry`]: [`RetryPolicy`] (backoff with full jitter, `Retry-After`).
//! - [`rate_limit`]: [`RateLimit`], the limiter shared by all clones of a client.
//! - [`types`]: [`Me`], [`Instance`], [`Snippet`], [`SnippetPage`], [`InstallAccess`],
//!   [`InstallToken`], [`TokenValue`].
//! - [`timestamp`]: [`Timestamp`] and the three wire forms it parses from.
//! - [`error`]: [`Error`], with [`Error::is_retryable`] and [`Error::is_outcome_unknown`].
//!
//! Secrets: the access token and install-token values never appear in `Debug`, errors or
//! `tracing` output; spans carry path templates (`/snippet/{canonical}/token/{token}`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), master_api::Error> {
//! use futures::TryStreamExt;
//! use master_api::{Client, RateLimit, RetryPolicy};
//!
//! let client = Client::builder("xano-access-token".into())
//!     .rate_limit(RateLimit::XANO_FREE_PLAN)
//!     .retry(RetryPolicy::default())
//!     .build()?;
//! let snippets: Vec<_> = client.snippets().try_collect().await?;
//! for snippet in &snippets {
//!     let tokens = client.tokens(&snippet.canonical).await?;
//!     println!("{}: {} tokens", snippet.canonical, tokens.len());
//! }
//! # Ok(())
//! # }
//! ```

pub mod client;
mod endpoints;
pub mod error;
pub mod rate_limit;
pub mod retry;
pub mod timestamp;
mod transport;
pub mod types;

pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use error::Error;
pub use rate_limit::RateLimit;
pub use reqwest::StatusCode;
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use timestamp::Timestamp;
pub use types::{InstallAccess, InstallToken, Instance, Me, Snippet, SnippetPage, TokenValue};

/// Installs ring as the process-wide rustls crypto provider, if no provider is installed yet.
///
/// The workspace compiles exactly one provider (ring); installing it explicitly means no code
/// path (reqwest here, Stripe's client elsewhere) can find zero or two. Idempotent: safe to call
/// from every constructor. [`ClientBuilder::build`] calls it.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is the state we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
