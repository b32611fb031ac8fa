//! The instance's pools: the primary's, and a read replica's when there is one. Their settings
//! come in two parts: [`DbSettings`] (where the primary is), which every caller gives, and
//! [`DbRoutes`] (a pooler's mode, a replica), which a caller gives only when it has them, so
//! settings written before replicas existed still build an instance that behaves as before.

use market_core::db::{self, DbConfig, Pooler};
use market_core::envelope::DataKeys;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

#[derive(Debug)]
pub struct DbSettings {
    /// A migrated database.
    pub options: PgConnectOptions,
    pub max_connections: u32,
    /// The keys install tokens are sealed with in this database (`MARKET_DATA_KEY`).
    pub data_keys: DataKeys,
}

/// How the instance reaches PostgreSQL beyond [`DbSettings`]; the default is directly, with no
/// replica.
#[derive(Debug, Default)]
pub struct DbRoutes {
    /// Whether the URLs lead to a pooler in transaction mode (`MARKET_DB_POOLER`); it applies to
    /// both pools.
    pub pooler: Pooler,
    /// A streaming replica of the same database (`DATABASE_READ_URL`), for the reads that tolerate
    /// lag; `None` sends them to the primary.
    pub read_options: Option<PgConnectOptions>,
}

/// The primary's pool, and the replica's when `routes` names one. Each is refused when its server
/// connections lack the session settings (`db::check_session`).
pub async fn open(db: &DbSettings, routes: &DbRoutes) -> anyhow::Result<(PgPool, Option<PgPool>)> {
    let config = DbConfig {
        max_connections: db.max_connections,
        pooler: routes.pooler,
        ..DbConfig::default()
    };
    let primary = db::connect(db.options.clone(), &config)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let replica = match &routes.read_options {
        Some(options) => Some(
            db::connect(options.clone(), &config)
                .await
                .map_err(|e| anyhow::anyhow!("DATABASE_READ_URL: {e}"))?,
        ),
        None => None,
    };
    Ok((primary, replica))
}
