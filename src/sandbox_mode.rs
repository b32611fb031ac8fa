//! Sandbox mode: with no Xano or Stripe credentials (and outside production), `market serve` starts
//! both simulators in-process on loopback ports and talks to them through its normal client code.
//! The demo catalog is compiled into the binary, so `market` runs the sandbox from any directory;
//! `MARKET_SANDBOX_TIERS` names a file to seed instead. It is applied exactly as `market tiers
//! apply` applies a file.

use std::net::SocketAddr;
use std::path::Path;

use market_core::audit::Actor;
use market_core::tiers_file::{self, TiersFile};
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};
use secrecy::SecretString;
use url::Url;

/// The demo catalog: `examples/tiers.toml`, as it was when the binary was built.
const DEMO_TIERS: &str = include_str!("../examples/tiers.toml");

/// The running simulators and the secrets generated for this run.
#[derive(Debug)]
pub struct Sandbox {
    pub xano: XanoSim,
    pub stripe: StripeSim,
    pub webhook_secret: SecretString,
}

impl Sandbox {
    /// Starts both simulators. The Stripe simulator delivers signed events to `webhook_url`
    /// (this service's own webhook endpoint), twice and shuffled when `duplicate_events` is set.
    pub async fn start(webhook_url: Url, duplicate_events: bool) -> std::io::Result<Self> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let xano = XanoSim::start(XanoSimConfig {
            bind: loopback,
            ..XanoSimConfig::default()
        })
        .await?;
        let webhook_secret = format!("whsec_sandbox_{}", uuid::Uuid::new_v4().simple());
        let stripe = StripeSim::start(StripeSimConfig {
            bind: loopback,
            webhook_url: Some(webhook_url),
            webhook_secrets: vec![webhook_secret.clone()],
            duplicate_deliveries: duplicate_events,
            ..StripeSimConfig::default()
        })
        .await?;
        Ok(Self {
            xano,
            stripe,
            webhook_secret: SecretString::from(webhook_secret),
        })
    }

    /// Seeds the catalog (the demo one, or `file`): its snippets created at the Xano simulator (a
    /// real account would already have them), then the file applied.
    pub async fn seed(
        &self,
        db: &sqlx::PgPool,
        xano: &master_api::Client,
        file: Option<&Path>,
    ) -> anyhow::Result<()> {
        let tiers = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("MARKET_SANDBOX_TIERS {}: {e}", path.display()))?;
                TiersFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => TiersFile::parse(DEMO_TIERS)
                .map_err(|e| anyhow::anyhow!("the built-in demo catalog: {e}"))?,
        };
        for (listing, _) in &tiers.listings {
            if self.xano.snippet(listing.canonical.as_str()).is_none() {
                self.xano
                    .add_snippet(listing.canonical.as_str(), &listing.title);
            }
        }
        tiers_file::apply(db, xano, &tiers, false, &Actor::System).await?;
        Ok(())
    }
}
