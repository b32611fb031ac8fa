//! Sandbox mode: with no Xano or Stripe credentials (and outside production), `market serve` starts
//! both simulators in-process on loopback ports and talks to them through its normal client code.
//! Demo listings come from the same tiers file format operators use.

use std::net::SocketAddr;

use market_core::audit::Actor;
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};
use secrecy::SecretString;
use url::Url;

use crate::tiers_file::TiersFile;

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

    /// Creates the file's snippets at the Xano simulator (a real account would already have them).
    pub fn create_snippets(&self, file: &TiersFile) {
        for (listing, _) in &file.listings {
            if self.xano.snippet(listing.canonical.as_str()).is_none() {
                self.xano
                    .add_snippet(listing.canonical.as_str(), &listing.title);
            }
        }
    }
}

/// Seeds the demo catalog: the tiers file applied exactly as `market tiers apply` would.
pub async fn seed(
    db: &sqlx::PgPool,
    xano: &master_api::Client,
    file: &TiersFile,
) -> Result<crate::tiers_file::Diff, market_core::Error> {
    crate::tiers_file::apply(db, xano, file, false, &Actor::System).await
}
