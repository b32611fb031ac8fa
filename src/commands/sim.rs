//! `market sim xano` and `market sim stripe`: the simulators as standalone processes, for local
//! stacks and for tests that run several `market` instances against one shared simulator.

use market_http::startup::shutdown_signal;
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};

use crate::cli::{SimCommand, StripeSimArgs, XanoSimArgs};

/// `market sim xano` or `market sim stripe`, until SIGTERM or Ctrl-C.
pub async fn run(which: SimCommand) -> anyhow::Result<()> {
    match which {
        SimCommand::Xano(args) => xano(args).await,
        SimCommand::Stripe(args) => stripe(args).await,
    }
}

async fn xano(args: XanoSimArgs) -> anyhow::Result<()> {
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
    shutdown_signal().await;
    sim.stop().await;
    Ok(())
}

async fn stripe(args: StripeSimArgs) -> anyhow::Result<()> {
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
    shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
