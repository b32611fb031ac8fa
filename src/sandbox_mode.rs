//! Sandbox mode: with no Xano or Stripe credentials (and outside production), `market serve` starts
//! both simulators in-process on loopback ports and talks to them through its normal client code.
//! The demo catalog is compiled into the binary, so `market` runs the sandbox from any directory;
//! `MARKET_SANDBOX_TIERS` names a file to seed instead. It is applied exactly as `market tiers
//! apply` applies a file.
//!
//! Two sellers are seeded beside the house, so a newcomer sees a marketplace: each with their own
//! Xano account at the simulator, a listing and two tiers, and a Stripe connected account onboarded
//! through the same calls a real seller's onboarding makes (its `account.updated` reaches the
//! service's webhook like any event). Their API keys are printed once, when they are made.

use std::net::SocketAddr;
use std::path::Path;

use market_core::audit::Actor;
use market_core::listings::ListingSpec;
use market_core::tiers::TierSpec;
use market_core::tiers_file::{self, TiersFile};
use market_core::{Canonical, Currency, Email, Money, Slug, connect, seller_xano, sellers};
use market_http::state::AppState;
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{SimAccount, XanoSim, XanoSimConfig};
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

/// A demo seller: who, their Xano account at the simulator, and what they sell.
struct DemoSeller {
    name: &'static str,
    email: &'static str,
    xano_account: &'static str,
    canonical: &'static str,
    title: &'static str,
    description: &'static str,
    /// `(slug, name, price in cents, max installs)`.
    tiers: [(&'static str, &'static str, i64, i64); 2],
}

const DEMO_SELLERS: [DemoSeller; 2] = [
    DemoSeller {
        name: "Ada's snippets",
        email: "ada@sellers.example",
        xano_account: "101",
        canonical: "webhook-relay_01",
        title: "Webhook relay",
        description: "Receive, verify and replay third-party webhooks into Xano tables.",
        tiers: [("solo", "Solo", 2900, 5), ("team", "Team", 7900, 25)],
    },
    DemoSeller {
        name: "Grace's snippets",
        email: "grace@sellers.example",
        xano_account: "102",
        canonical: "audit-log_01",
        title: "Audit log",
        description: "An append-only audit trail for every table, with a viewer endpoint.",
        tiers: [("solo", "Solo", 1500, 3), ("agency", "Agency", 6900, 40)],
    },
];

impl Sandbox {
    /// Seeds the demo sellers not already there, through the service's own functions (the ones
    /// behind `POST /v1/admin/sellers`, `PUT /v1/seller/xano`, `PUT /v1/seller/listings/…` and
    /// `POST /v1/seller/stripe/onboarding`), then completes their Stripe onboarding at the
    /// simulator. Returns each new seller's name and API key.
    pub async fn seed_sellers(&self, state: &AppState) -> anyhow::Result<Vec<(String, String)>> {
        let existing = sellers::list(state.db()).await?;
        let actor = Actor::System;
        let mut made = Vec::new();
        for demo in &DEMO_SELLERS {
            if existing
                .iter()
                .any(|s| s.contact_email.as_deref() == Some(demo.email))
            {
                continue;
            }
            let (seller, key) =
                sellers::invite(state.db(), demo.name, &Email::parse(demo.email)?, &actor).await?;
            let xano_token = self.xano.add_account(SimAccount {
                id: demo.xano_account.to_owned(),
                name: demo.name.to_owned(),
                email: demo.email.to_owned(),
            });
            self.xano
                .add_snippet_for(&xano_token, demo.canonical, demo.title);
            seller_xano::set(
                &state.market,
                seller.seller_id,
                SecretString::from(xano_token),
                None,
                &actor,
            )
            .await?;
            let listing = ListingSpec {
                canonical: Canonical::parse(demo.canonical)?,
                title: demo.title.to_owned(),
                description: demo.description.to_owned(),
                active: true,
            };
            sellers::save_listing(&state.market, seller.seller_id, &listing, &actor).await?;
            for (slug, name, price, max_installs) in demo.tiers {
                let tier = TierSpec {
                    slug: Slug::parse(slug)?,
                    name: name.to_owned(),
                    price: Money::new(price, Currency::parse("usd")?)?,
                    max_installs,
                    pool_low_water: 1,
                    pool_target: 3,
                    active: true,
                };
                sellers::save_tier(state.db(), seller.seller_id, demo.canonical, &tier, &actor)
                    .await?;
            }
            let page = |path: &str| state.public_url.join(path);
            connect::onboarding(
                state.db(),
                &seller,
                &state.stripe,
                page("seller/stripe/refresh")?.as_str(),
                page("seller/stripe/return")?.as_str(),
                &actor,
            )
            .await?;
            let account = sellers::list(state.db())
                .await?
                .into_iter()
                .find(|s| s.seller_id == seller.seller_id)
                .and_then(|s| s.stripe.account_id)
                .ok_or_else(|| anyhow::anyhow!("{}: no Stripe account was made", demo.name))?;
            self.stripe.complete_onboarding(&account)?;
            made.push((demo.name.to_owned(), key.expose().to_owned()));
        }
        Ok(made)
    }
}
