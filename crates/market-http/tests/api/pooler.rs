//! Behind PgBouncer in transaction mode (`MARKET_DB_POOLER=transaction`): the failure the switch
//! exists for, reproduced with sqlx's defaults and gone with the switch. Two clients take turns on
//! one database's server connections; with named prepared statements the second finds the first's
//! `sqlx_s_1` already on the server (PgBouncer 1.18 does not track them). Needs
//! `MARKET_TEST_POOLER_URL` (scripts/ensure-test-topology); without it there is no pooler to test
//! and the test says so and passes.

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
