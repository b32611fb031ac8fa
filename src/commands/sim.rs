//! `market sim xano` and `market sim stripe`: the simulators as standalone processes, for local
//! stacks and for tests that run several `market` instances against one shared simulator.

use std::net::SocketAddr;

use clap::Args;
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};
use url::Url;

#[derive(Args, Debug)]
pub struct XanoSimArgs {
    /// Address to listen on.
    #[arg(long, env = "XANO_SIM_BIND", default_value = "127.0.0.1:8091")]
    pub bind: SocketAddr,
    /// The account's access token (clients send it as `Authorization: Bearer …`).
    #[arg(long, env = "XANO_SIM_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: String,
    /// Snippets the account owns at start (repeat, or comma-separate); more can be added over HTTP.
    #[arg(long = "snippet", value_delimiter = ',')]
    pub snippets: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StripeSimArgs {
    /// Address to listen on.
    #[arg(long, env = "STRIPE_SIM_BIND", default_value = "127.0.0.1:8092")]
    pub bind: SocketAddr,
    /// The secret key clients must send.
    #[arg(long, env = "STRIPE_SIM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Where to deliver events (a `market` instance's `/v1/webhooks/stripe`).
    #[arg(long, env = "STRIPE_SIM_WEBHOOK_URL")]
    pub webhook_url: Option<Url>,
    /// Webhook signing secrets (one `v1` signature per secret).
    #[arg(
        long = "webhook-secret",
        env = "STRIPE_SIM_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub webhook_secrets: Vec<String>,
    /// Deliver every event twice and out of order.
    #[arg(long)]
    pub duplicate: bool,
}

pub async fn xano(args: XanoSimArgs) -> anyhow::Result<()> {
    crate::telemetry::init(crate::config::LogFormat::Pretty);
    let sim = XanoSim::start(XanoSimConfig {
        bind: args.bind,
        access_token: Some(args.access_token),
        ..XanoSimConfig::default()
    })
    .await?;
    for canonical in &args.snippets {
        sim.add_snippet(canonical, canonical);
    }
    println!(
        "xano simulator listening at {} (control: {})",
        sim.base_url(),
        sim.control_url()
    );
    crate::startup::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}

pub async fn stripe(args: StripeSimArgs) -> anyhow::Result<()> {
    crate::telemetry::init(crate::config::LogFormat::Pretty);
    let sim = StripeSim::start(StripeSimConfig {
        bind: args.bind,
        api_key: args.api_key,
        webhook_url: args.webhook_url,
        webhook_secrets: args.webhook_secrets,
        duplicate_deliveries: args.duplicate,
        ..StripeSimConfig::default()
    })
    .await?;
    println!("stripe simulator listening at {}", sim.base_url());
    crate::startup::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
