//! Outgoing webhooks' settings: where they may go (the SSRF guard) and how patiently they are
//! retried. Production's defaults are the issue's: https only, never to a loopback, private or
//! link-local address, 10 s per attempt, retries on exponential backoff for three days, an endpoint
//! disabled after three days of failing without a break. Sandbox mode also allows `http` and
//! loopback addresses, so a receiver on the same machine can be tried.

use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use market_core::courier::{CourierConfig, Guard};
use market_core::deliverer::DelivererConfig;
use market_core::webhooks::Policy;
use market_http::startup::WebhookSettings;

#[derive(Args, Clone, Debug)]
#[expect(
    clippy::struct_field_names,
    reason = "clap names each flag after its field: --webhook-…"
)]
pub struct WebhookArgs {
    /// Networks (CIDR, comma-separated) webhooks may be delivered to although they are not public
    /// (e.g. `10.1.0.0/16` for receivers inside your own network). Empty in production.
    #[arg(long, env = "MARKET_WEBHOOK_ALLOW_NETS", value_delimiter = ',')]
    pub webhook_allow_nets: Vec<IpNet>,

    /// Allow `http://` endpoints (never in production).
    #[arg(long, env = "MARKET_WEBHOOK_ALLOW_HTTP", default_value_t = false)]
    pub webhook_allow_http: bool,

    /// Seconds one delivery attempt may take, answer included.
    #[arg(long, env = "MARKET_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,

    /// The wait after a first failed attempt, in seconds; doubled after each, up to
    /// `MARKET_WEBHOOK_RETRY_CAP_SECS`.
    #[arg(long, env = "MARKET_WEBHOOK_RETRY_BASE_SECS", default_value_t = 10.0)]
    pub webhook_retry_base_secs: f64,

    #[arg(long, env = "MARKET_WEBHOOK_RETRY_CAP_SECS", default_value_t = 6.0 * 3600.0)]
    pub webhook_retry_cap_secs: f64,

    /// How long after its first attempt a delivery is still retried, in seconds (3 days).
    #[arg(long, env = "MARKET_WEBHOOK_RETRY_FOR_SECS", default_value_t = 72.0 * 3600.0)]
    pub webhook_retry_for_secs: f64,

    /// How long an endpoint may fail without one success before it is disabled (and its seller
    /// told by email), in seconds (3 days).
    #[arg(long, env = "MARKET_WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 72.0 * 3600.0)]
    pub webhook_disable_after_secs: f64,

    /// Deliveries this instance has in flight at once.
    #[arg(long, env = "MARKET_WEBHOOK_CONCURRENCY", default_value_t = 8)]
    pub webhook_concurrency: usize,
}

impl WebhookArgs {
    /// The settings, for sandbox mode (`sandbox`: also `http` and loopback addresses) or not.
    pub fn settings(&self, sandbox: bool) -> anyhow::Result<WebhookSettings> {
        let mut allowed = self.webhook_allow_nets.clone();
        if sandbox {
            allowed.extend(
                ["127.0.0.0/8", "::1/128"]
                    .map(str::parse::<IpNet>)
                    .into_iter()
                    .flatten(),
            );
        }
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| anyhow::anyhow!("{name} must be a number of seconds, not {value}"))
        };
        let timeout = Duration::from_secs(self.webhook_timeout_secs.max(1));
        Ok(WebhookSettings {
            courier: CourierConfig {
                timeout,
                guard: Guard::allowing(self.webhook_allow_http || sandbox, allowed),
                ..CourierConfig::default()
            },
            deliverer: Some(DelivererConfig {
                concurrency: self.webhook_concurrency.max(1),
                // A claimed delivery is this instance's for three timeouts.
                lease: timeout * 3,
                policy: Policy {
                    retry_base: seconds(
                        "MARKET_WEBHOOK_RETRY_BASE_SECS",
                        self.webhook_retry_base_secs,
                    )?,
                    retry_cap: seconds(
                        "MARKET_WEBHOOK_RETRY_CAP_SECS",
                        self.webhook_retry_cap_secs,
                    )?,
                    retry_for: seconds(
                        "MARKET_WEBHOOK_RETRY_FOR_SECS",
                        self.webhook_retry_for_secs,
                    )?,
                    disable_after: seconds(
                        "MARKET_WEBHOOK_DISABLE_AFTER_SECS",
                        self.webhook_disable_after_secs,
                    )?,
                },
                ..DelivererConfig::default()
            }),
        })
    }
}
