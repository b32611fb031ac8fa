//! The per-test database harness itself: isolation and clean-up.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use testkit::TestDb;

async fn database_exists(name: &str) -> bool {
    let admin = TestDb::empty().await;
    sqlx::query_scalar::<_, bool>("select exists (select 1 from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(admin.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_test_database_is_separate_and_is_dropped_with_its_handle() {
    let first = TestDb::empty().await;
    let second = TestDb::empty().await;
    assert_ne!(first.name(), second.name());

    sqlx::query("create table marker (id int)")
        .execute(first.pool())
        .await
        .unwrap();
    let in_second: Option<String> = sqlx::query_scalar("select to_regclass('marker')::text")
        .fetch_one(second.pool())
        .await
        .unwrap();
    assert_eq!(
        in_second, None,
        "a table made in one test database is invisible in another"
    );

    let name = first.name().to_owned();
    assert!(database_exists(&name).await);
    drop(first);
    assert!(
        !database_exists(&name).await,
        "dropping the handle drops the database"
    );
}
