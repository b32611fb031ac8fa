//! The conventions every operator command keeps: it works on the created, migrated database (so an
//! operator can look and act while no instance is serving), prints JSON in the admin API's shapes
//! (`market_http::wire`, so the same `jq` filters work on both), and audits its changes as
//! `cli:$USER`.

use market_core::audit::Actor;
use serde::Serialize;
use sqlx::PgPool;

use super::migrate::migrate;
use crate::config::DbArgs;
use crate::settings::DbSettings;

/// A pool on the (created, migrated) database, for a command that runs and exits.
pub async fn connect(db: &DbArgs) -> anyhow::Result<PgPool> {
    let settings = DbSettings::from_args(db)?;
    migrate(&settings).await?;
    Ok(market_core::db::connect(settings.options, &market_core::db::DbConfig::default()).await?)
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
