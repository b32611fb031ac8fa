//! `market migrate`, and the first step of every command that uses the database.

use sqlx::migrate::MigrateDatabase;

use crate::settings::DbSettings;

/// Creates the database when it does not exist, then applies pending migrations. Safe to run from
/// several instances at once: sqlx serializes migrators with an advisory lock.
pub async fn migrate(db: &DbSettings) -> anyhow::Result<()> {
    if !sqlx::Postgres::database_exists(&db.url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach PostgreSQL at DATABASE_URL: {e}"))?
    {
        sqlx::Postgres::create_database(&db.url).await?;
        tracing::info!("database created");
    }
    let pool =
        market_core::db::connect(db.options.clone(), &market_core::db::DbConfig::default()).await?;
    market_core::MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}
