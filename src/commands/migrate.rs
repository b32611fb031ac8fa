//! `market migrate`, and the first step of every command that uses the database.
//!
//! Migrating needs a session of its own on PostgreSQL: sqlx's migrator holds a session advisory
//! lock from the first migration to the last, and some migrations run outside a transaction.
//! Through a pooler in transaction mode each statement may run on another server connection (the
//! lock would be taken on one, released on another, and stay held), so with
//! `MARKET_DB_POOLER=transaction` it refuses and says where to point instead.

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase;

use market_core::db::Pooler;

use crate::settings::DbSettings;

/// Creates the database when it does not exist, then applies pending migrations. Safe to run from
/// several instances at once: creating tolerates another instance creating the same database at the
/// same moment, and sqlx serializes migrators with an advisory lock. Each failure says which step
/// failed before PostgreSQL's own words.
pub async fn migrate(db: &DbSettings) -> anyhow::Result<()> {
    if db.pooler == Pooler::Transaction {
        anyhow::bail!(
            "MARKET_DB_POOLER=transaction: migrations need a session of their own (sqlx holds an \
             advisory lock across them), which a pooler in transaction mode does not give. Run \
             `market migrate` with DATABASE_URL pointing at PostgreSQL itself (not the pooler) \
             and MARKET_DB_POOLER unset; `market serve` behind the pooler then finds the schema \
             current (docs/OPERATIONS.md, \"Behind PgBouncer\")"
        );
    }
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

/// `market serve`'s first step: [`migrate`], except behind a pooler in transaction mode, where
/// migrating needs PostgreSQL directly (`market migrate`); an instance started before that is not
/// ready (`/readyz`: migrations pending) and says so.
pub async fn migrate_before_serving(db: &DbSettings) -> anyhow::Result<()> {
    if db.pooler == Pooler::Transaction {
        tracing::info!(
            "MARKET_DB_POOLER=transaction: not migrating at start; run `market migrate` against PostgreSQL directly"
        );
        return Ok(());
    }
    migrate(db).await
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
