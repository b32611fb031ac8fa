//! `market migrate`, and the first step of every command that uses the database.

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase;

use crate::settings::DbSettings;

/// Creates the database when it does not exist, then applies pending migrations. Safe to run from
/// several instances at once: creating tolerates another instance creating the same database at the
/// same moment, and sqlx serializes migrators with an advisory lock. Each failure says which step
/// failed before PostgreSQL's own words.
pub async fn migrate(db: &DbSettings) -> anyhow::Result<()> {
    let exists = sqlx::Postgres::database_exists(&db.url)
        .await
        .context("cannot reach PostgreSQL at DATABASE_URL")?;
    if !exists {
        match sqlx::Postgres::create_database(&db.url).await {
            Ok(()) => tracing::info!("database created"),
            Err(e) if created_by_another(&e) => {
                tracing::info!("database created by another instance at the same moment");
            }
            Err(e) => {
                return Err(e).context("cannot create the database named in DATABASE_URL");
            }
        }
    }
    let pool = market_core::db::connect(db.options.clone(), &market_core::db::DbConfig::default())
        .await
        .context("cannot connect to the database named in DATABASE_URL")?;
    market_core::MIGRATOR
        .run(&pool)
        .await
        .context("cannot apply the database migrations")?;
    pool.close().await;
    Ok(())
}

/// Whether `CREATE DATABASE` lost a race to another instance: PostgreSQL reports the loser as
/// `duplicate_database` (42P04) once the winner has committed, or, while the two are still in
/// flight, as a unique violation (23505) on its catalog's `pg_database_datname_index`.
fn created_by_another(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match db.code().as_deref() {
        Some("42P04") => true,
        Some("23505") => db.message().contains("pg_database_datname_index"),
        _ => false,
    }
}
