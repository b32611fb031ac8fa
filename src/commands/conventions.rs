//! The conventions every operator command keeps: it works on the created, migrated database (so an
//! operator can look and act while no instance is serving), prints JSON in the admin API's shapes
//! (`market_http::wire`, so the same `jq` filters work on both), and audits its changes as
//! `cli:$USER`.

use std::sync::Arc;

use market_core::audit::Actor;
use market_core::envelope::Envelope;
use market_core::keys;
use serde::Serialize;
use sqlx::PgPool;

use super::migrate::migrate;
use crate::config::DbArgs;
use crate::settings::DbSettings;

/// A pool on the (created, migrated) database, for a command that runs and exits.
pub async fn connect(db: &DbArgs) -> anyhow::Result<PgPool> {
    Ok(connect_sealed(db).await?.0)
}

/// [`connect`], and the envelope install tokens are sealed with in that database, for a command
/// that reads or writes them.
pub async fn connect_sealed(db: &DbArgs) -> anyhow::Result<(PgPool, Arc<Envelope>)> {
    let settings = DbSettings::from_args(db)?;
    migrate(&settings).await?;
    let pool =
        market_core::db::connect(settings.options, &market_core::db::DbConfig::default()).await?;
    let envelope = keys::open(&pool, settings.data_keys).await?;
    Ok((pool, Arc::new(envelope)))
}

/// The operator running a command, for the audit log: `cli:$USER`.
pub fn operator() -> Actor {
    let name = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{u}"));
    Actor::Admin(name)
}

pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
