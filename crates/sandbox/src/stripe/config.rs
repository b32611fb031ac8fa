//! How a Stripe simulator starts: where it listens, its key, where its webhooks go and how they
//! are delivered.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use url::Url;

/// The API version the simulator renders events in: async-stripe 1.0.0-rc.10's
/// `stripe_shared::version::VERSION` (a test keeps the two equal).
pub const API_VERSION: &str = "2026-09-30.endive";

/// Settings for [`StripeSim::start`](super::StripeSim::start). `Default` gives a loopback listener
/// on a free port, a random test-mode key, no webhook endpoint and a short retry schedule.
#[derive(Clone)]
pub struct StripeSimConfig {
    /// Where to listen; port 0 picks a free port. A standalone simulator sets a fixed address.
    pub bind: SocketAddr,
    /// The only secret key the API accepts (`Authorization: Bearer …`).
    pub api_key: String,
    /// Where events are POSTed. `None` records events without delivering them, as Stripe does for
    /// an account without an endpoint.
    pub webhook_url: Option<Url>,
    /// Endpoint signing secrets (`whsec_…`). Each delivery carries one `v1` signature per secret,
    /// as Stripe does while a rolled secret's old value is still valid.
    pub webhook_secrets: Vec<String>,
    /// Whether objects and events say `livemode: true` (and ids say `live`).
    pub livemode: bool,
    /// Delivers every event twice, and lets neighbouring events overtake each other, so a
    /// receiver can prove it is idempotent and order-independent.
    pub duplicate_deliveries: bool,
    /// The wait before each retry of a delivery that failed (non-2xx or transport error); one
    /// retry per entry, then the delivery is given up. Stripe's own schedule spans days.
    pub retry_delays: Vec<Duration>,
    /// The base of hosted checkout page URLs when clients reach the simulator under another
    /// address (a container name, a proxy); `None` uses the bound address.
    pub public_url: Option<Url>,
    /// With `duplicate_deliveries`: how long the dispatcher gathers neighbouring events before
    /// shuffling them.
    pub shuffle_window: Duration,
    /// How long one delivery attempt may take before it counts as a transport error.
    pub delivery_timeout: Duration,
    /// The `api_version` events carry.
    pub api_version: String,
    /// Seeds ids and shuffles, for reproducible runs; `None` seeds from the OS. Also the seed of
    /// dropped deliveries when their control gives none (0 when this is `None`).
    pub seed: Option<u64>,
    /// HTTP worker threads. One is plenty: handlers never block.
    pub workers: usize,
}

impl StripeSimConfig {
    /// A random key in Stripe's test-mode shape, `sk_test_sandbox_<24 alphanumerics>`.
    pub fn random_api_key() -> String {
        let suffix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        format!("sk_test_sandbox_{suffix}")
    }
}

impl Default for StripeSimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: Self::random_api_key(),
            webhook_url: None,
            webhook_secrets: Vec::new(),
            livemode: false,
            duplicate_deliveries: false,
            retry_delays: [1, 2, 5, 10, 30].map(Duration::from_secs).to_vec(),
            public_url: None,
            shuffle_window: Duration::from_millis(200),
            delivery_timeout: Duration::from_secs(10),
            api_version: API_VERSION.to_owned(),
            seed: None,
            workers: 1,
        }
    }
}

// Written by hand so the key and the signing secrets never reach a log through `{:?}`.
impl fmt::Debug for StripeSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSimConfig")
            .field("bind", &self.bind)
            .field("api_key", &"[redacted]")
            .field("webhook_url", &self.webhook_url.as_ref().map(Url::as_str))
            .field(
                "webhook_secrets",
                &format_args!("[{} redacted]", self.webhook_secrets.len()),
            )
            .field("livemode", &self.livemode)
            .field("duplicate_deliveries", &self.duplicate_deliveries)
            .field("retry_delays", &self.retry_delays)
            .field("public_url", &self.public_url.as_ref().map(Url::as_str))
            .field("shuffle_window", &self.shuffle_window)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("api_version", &self.api_version)
            .field("seed", &self.seed)
            .field("workers", &self.workers)
            .finish()
    }
}
