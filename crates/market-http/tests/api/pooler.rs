//! Behind PgBouncer in transaction mode (`MARKET_DB_POOLER=transaction`): the failure the switch
//! exists for, reproduced with sqlx's defaults and gone with the switch. Two clients take turns on
//! one database's server connections; with named prepared statements the second finds the first's
//! `sqlx_s_1` already on the server (PgBouncer 1.18 does not track them). Needs
//! `MARKET_TEST_POOLER_URL` (scripts/ensure-test-topology); without it there is no pooler to test
//! and the test says so and passes. The second test is what a request's answer waits for there
//! (`market_core::db::commits_landed_since`, the HTTP layer's `answer_after_commits`).

use market_core::db::{self, DbConfig, Pooler};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestDb;

/// The test database through the pooler, when the tests run with one.
fn through_pooler(db: &TestDb) -> Option<PgConnectOptions> {
    let route = db.app_route();
    if !route.transaction_pooler {
        eprintln!("no MARKET_TEST_POOLER_URL: nothing to test here");
        return None;
    }
    Some(route.options)
}

/// Each client runs two statements of its own in turn with the other, `rounds` times; the errors
/// they met, and the answers that were not theirs.
async fn take_turns(clients: [&PgPool; 2], rounds: i64) -> (Vec<String>, usize) {
    let (mut errors, mut wrong) = (Vec::new(), 0);
    for round in 0..rounds {
        for (n, pool) in (0_i64..).zip(clients) {
            let value = round * 10 + n;
            let sql = if n == 0 {
                "select $1::int8 + 0"
            } else {
                "select $1::int8 + 1000"
            };
            match sqlx::query_scalar::<_, i64>(sql)
                .bind(value)
                .fetch_one(pool)
                .await
            {
                Ok(answer) if answer == value + n * 1000 => {}
                Ok(_) => wrong += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    (errors, wrong)
}

#[tokio::test]
async fn named_prepared_statements_collide_behind_the_pooler_and_the_switch_ends_it() {
    // Arrange: two single-connection clients of one database through the pooler.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let Some(options) = through_pooler(&db) else {
        return;
    };
    let plain = |options: PgConnectOptions| async move {
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.extra_float_digits(None))
            .await
            .unwrap()
    };
    let switched = |options: PgConnectOptions| async move {
        let config = DbConfig {
            max_connections: 1,
            pooler: Pooler::Transaction,
            ..DbConfig::default()
        };
        db::connect(options, &config).await.unwrap()
    };

    // Act: sqlx's defaults (a statement cache); the cache off, as PgBouncer's FAQ advises; the switch.
    let (a, b) = (plain(options.clone()).await, plain(options.clone()).await);
    let (cached, _) = take_turns([&a, &b], 20).await;
    let no_cache = options.clone().statement_cache_capacity(0);
    let (a, b) = (plain(no_cache.clone()).await, plain(no_cache).await);
    let (uncached, _) = take_turns([&a, &b], 20).await;
    let (a, b) = (switched(options.clone()).await, switched(options).await);
    let (with_switch, wrong) = take_turns([&a, &b], 200).await;

    // Assert: the classic failure twice (the cache off still names every statement), then none.
    for (what, errors) in [("cached", &cached), ("uncached", &uncached)] {
        assert!(
            errors.iter().any(|e| e.contains("already exists")),
            "{what}: expected `prepared statement \"sqlx_s_1\" already exists`, got {errors:?}"
        );
    }
    assert!(with_switch.is_empty(), "{with_switch:?}");
    assert_eq!(wrong, 0, "an answer of another client's statement");
}

#[tokio::test]
async fn a_write_at_pool_level_is_committed_before_the_wait_ends_and_one_that_fails_at_its_commit_is_reported()
 {
    // Arrange: the switched pool through the pooler, and a table whose uniqueness is checked at
    // commit (a deferred constraint, as the schema's own triggers are).
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let Some(options) = through_pooler(&db) else {
        return;
    };
    let config = DbConfig {
        pooler: Pooler::Transaction,
        ..DbConfig::default()
    };
    let pool = db::connect(options, &config).await.unwrap();
    let direct = db.pool();
    sqlx::query(
        "create table at_commit (x int, constraint one_x unique (x) deferrable initially deferred)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(db::commits_landed_since(&db::commit_mark(&pool)).await);

    // Act 1: a write at pool level, then the wait an answer makes.
    let mark = db::commit_mark(&pool);
    sqlx::query("insert into at_commit values (1)")
        .execute(&pool)
        .await
        .unwrap();
    let landed = db::commits_landed_since(&mark).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from at_commit")
        .fetch_one(direct)
        .await
        .unwrap();

    // Assert 1: committed before the wait ended, seen by another connection at once.
    assert!(landed);
    assert_eq!(seen, 1, "the write was not committed when the wait ended");

    // Act 2: a write the statement accepts and its commit refuses (a second 1).
    let mark = db::commit_mark(&pool);
    sqlx::query("insert into at_commit values (1)")
        .execute(&pool)
        .await
        .expect("a deferred constraint lets the statement through");
    let landed = db::commits_landed_since(&mark).await;

    // Assert 2: the wait says so, and nothing was written.
    assert!(!landed, "a commit that failed was reported as landed");
    let rows: i64 = sqlx::query_scalar("select count(*) from at_commit")
        .fetch_one(direct)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
