//! `market migrate`: the database created when missing (and said so in the log), then migrated.

use sqlx::ConnectOptions as _;
use testkit::TestDb;

use crate::market;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_a_missing_database_says_so_and_applies_every_migration() {
    // Arrange: a server, and the name of a database it does not have yet.
    let server = TestDb::empty().await;
    let name = format!("{}_m", server.name());
    let url = server
        .connect_options()
        .database(&name)
        .to_url_lossy()
        .to_string();

    // Act
    let first = market(
        &["migrate"],
        &[("DATABASE_URL", &url), ("RUST_LOG", "info")],
    )
    .await;
    let again = market(
        &["migrate"],
        &[("DATABASE_URL", &url), ("RUST_LOG", "info")],
    )
    .await;

    // Assert
    let created = sqlx::PgPool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&created)
        .await
        .unwrap();
    created.close().await;
    sqlx::query(&format!(r#"drop database "{name}" with (force)"#))
        .execute(server.pool())
        .await
        .unwrap();
    assert!(first.success, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("database created") && first.stdout.contains("migrations applied"),
        "{}",
        first.stdout
    );
    assert_eq!(
        usize::try_from(applied).unwrap(),
        market_core::MIGRATOR.iter().count()
    );
    assert!(again.success, "{}\n{}", again.stdout, again.stderr);
    assert!(
        !again.stdout.contains("database created") && again.stdout.contains("migrations applied"),
        "{}",
        again.stdout
    );
}
