//! One database per test on a real PostgreSQL server.
//!
//! Databases are named `market_test_<unix seconds>_<random>`. Each is dropped when its [`TestDb`]
//! is dropped; a test process that dies (or a test that leaks its handle) leaves one behind, so the
//! first database created by a process also sweeps those older than [`STALE_AFTER_SECS`]. That keeps a
//! long-lived CI machine's server from filling up without ever touching a database a concurrently
//! running test binary still uses.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::route::AppRoute;

const PREFIX: &str = "market_test_";
const STALE_AFTER_SECS: u64 = 3 * 60 * 60;

const HOW_TO_PROVIDE: &str = "\
No PostgreSQL server for the tests. Provide one of:
  - DATABASE_URL pointing at a server where the user may CREATE DATABASE, e.g.
      DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --workspace
    (`scripts/test` sets this up on a Debian machine, installing and starting PostgreSQL if needed);
  - a running Docker engine, so that testcontainers can start postgres:16 by itself.";

/// A database of its own for one test, migrated, with a small pool.
#[derive(Debug)]
pub struct TestDb {
    pool: PgPool,
    name: String,
    options: PgConnectOptions,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates a fresh database and applies `migrator`'s migrations to it.
    pub async fn new(migrator: &Migrator) -> Self {
        let db = Self::empty().await;
        migrator
            .run(&db.pool)
            .await
            .expect("apply migrations to the test database");
        db
    }

    /// Creates a fresh database with nothing in it (for testing migrations themselves).
    pub async fn empty() -> Self {
        let admin = admin_options().await;
        sweep_stale_databases_once(&admin).await;

        let name = format!("{PREFIX}{}_{}", unix_now(), uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to the PostgreSQL server");
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();

        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .expect("connect to the test database");
        Self {
            pool,
            name,
            options,
            admin,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Options for opening more connections (or another pool, or a child process) on this database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// Where the application under test connects to this database: directly, or through the
    /// pooler and with the read replica the environment names (`crate::route`).
    pub fn app_route(&self) -> AppRoute {
        AppRoute::for_database(self.options.clone(), &self.name)
    }

    /// A `postgres://` URL for this database, for child processes.
    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, where blocking on async work is not allowed, so the
        // database is dropped from a thread with a runtime of its own, and waited for, so the process
        // cannot exit halfway.
        // The pool is not closed first: closing needs the test's runtime, which this join blocks.
        // `with (force)` ends its connections instead.
        let admin = self.admin.clone();
        let name = std::mem::take(&mut self.name);
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(drop_database(&admin, &name));
        });
        let _ = dropper.join();
    }
}

/// The server's URL, as the tests see it (from `DATABASE_URL` or the container).
pub async fn server_url() -> String {
    admin_options().await.to_url_lossy().to_string()
}

async fn admin_options() -> PgConnectOptions {
    static ADMIN: OnceCell<PgConnectOptions> = OnceCell::const_new();
    ADMIN
        .get_or_init(|| async {
            let options = match std::env::var("DATABASE_URL") {
                Ok(url) if !url.trim().is_empty() => url
                    .parse::<PgConnectOptions>()
                    .unwrap_or_else(|e| panic!("DATABASE_URL is not a valid PostgreSQL URL: {e}")),
                _ => container_options().await,
            };
            // Migrations and per-test chatter are noise in test logs.
            options.log_statements(tracing::log::LevelFilter::Trace)
        })
        .await
        .clone()
}

async fn container_options() -> PgConnectOptions {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};

    // The container must outlive every test of the process; testcontainers' reaper removes it when the
    // process exits.
    static CONTAINER: OnceLock<ContainerAsync<Postgres>> = OnceLock::new();
    let container = match Postgres::default()
        .with_host_auth()
        .with_tag("16-alpine")
        .start()
        .await
    {
        Ok(container) => container,
        Err(e) => panic!("{HOW_TO_PROVIDE}\n(testcontainers could not start PostgreSQL: {e})"),
    };
    let host = container.get_host().await.expect("container host");
    let port = container
        .get_host_port_ipv4(5432)
        .await
        .expect("container port");
    let _ = CONTAINER.set(container);
    PgConnectOptions::new()
        .host(&host.to_string())
        .port(port)
        .username("postgres")
        .database("postgres")
}

async fn sweep_stale_databases_once(admin: &PgConnectOptions) {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let mut conn = match PgConnection::connect_with(admin).await {
                Ok(conn) => conn,
                Err(e) => panic!("{HOW_TO_PROVIDE}\n(connecting failed: {e})"),
            };
            let names: Vec<String> = sqlx::query_scalar(
                "select datname from pg_database where datname like 'market\\_test\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list test databases");
            conn.close().await.ok();
            let cutoff = unix_now().saturating_sub(STALE_AFTER_SECS);
            for name in names {
                let created = name
                    .strip_prefix(PREFIX)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|secs| secs.parse::<u64>().ok());
                if created.is_some_and(|secs| secs < cutoff) {
                    drop_database(admin, &name).await;
                }
            }
        })
        .await;
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    if let Ok(mut conn) = PgConnection::connect_with(admin).await {
        // `with (force)` ends connections a leaked pool or a killed child process left open.
        let _ = sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
            .execute(&mut conn)
            .await;
        conn.close().await.ok();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
