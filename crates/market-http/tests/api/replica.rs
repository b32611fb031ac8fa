//! Reads on a streaming replica (`DATABASE_READ_URL`): what the replica is for. With its replay
//! paused a sale still completes, because everything that decides one reads the primary, and the
//! sales report (read on the replica) shows the past until replay resumes.
//!
//! Needs the primary and replica of `scripts/ensure-test-topology` (`DATABASE_URL` the primary,
//! `MARKET_TEST_READ_REPLICA` the replica), and pauses the replica for every database on it, so it
//! is ignored in ordinary runs and run alone: `cargo test -p market-http --test api replica --
//! --ignored --test-threads=1` (`scripts/test` does).

use std::time::Duration;

use serde_json::Value;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::helpers::{TestApp, spawn_app};

/// The primary commits without waiting for the paused replica while it lives (its commits wait
/// for the replica's apply otherwise: `synchronous_commit = remote_apply`), and the replica
/// replays again when it is dropped, even if the test failed.
struct PausedReplica {
    primary: sqlx::postgres::PgConnectOptions,
    replica: sqlx::postgres::PgConnectOptions,
}

impl PausedReplica {
    async fn pause(app: &TestApp) -> Self {
        let replica = testkit::read_replica()
            .expect("MARKET_TEST_READ_REPLICA names the replica (scripts/ensure-test-topology)");
        let primary = app.db.connect_options().database("postgres");
        let mut conn = primary.connect().await.unwrap();
        sqlx::query("alter system set synchronous_commit = local")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("select pg_reload_conf()")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut standby = PgConnection::connect_with(&replica).await.unwrap();
        sqlx::query("select pg_wal_replay_pause()")
            .execute(&mut standby)
            .await
            .unwrap();
        app.eventually(
            "the replica's replay to pause",
            Duration::from_secs(10),
            || {
                let replica = replica.clone();
                async move {
                    let mut conn = PgConnection::connect_with(&replica).await.ok()?;
                    let state: String =
                        sqlx::query_scalar("select pg_get_wal_replay_pause_state()")
                            .fetch_one(&mut conn)
                            .await
                            .ok()?;
                    (state == "paused").then_some(())
                }
            },
        )
        .await;
        Self { primary, replica }
    }

    async fn resume(&self) {
        restore(&self.primary, &self.replica).await;
    }
}

impl Drop for PausedReplica {
    fn drop(&mut self) {
        let (primary, replica) = (self.primary.clone(), self.replica.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(restore(&primary, &replica));
        })
        .join();
    }
}

async fn restore(
    primary: &sqlx::postgres::PgConnectOptions,
    replica: &sqlx::postgres::PgConnectOptions,
) {
    if let Ok(mut standby) = PgConnection::connect_with(replica).await {
        let _ = sqlx::query("select pg_wal_replay_resume()")
            .execute(&mut standby)
            .await;
    }
    if let Ok(mut conn) = PgConnection::connect_with(primary).await {
        let _ = sqlx::query("alter system reset synchronous_commit")
            .execute(&mut conn)
            .await;
        let _ = sqlx::query("select pg_reload_conf()")
            .execute(&mut conn)
            .await;
    }
}

/// Sales in the platform's report (every currency), as the replica shows them.
async fn reported_sales(app: &TestApp) -> i64 {
    let report: Value = app
        .admin_get("/v1/admin/reports/sales?group_by=seller")
        .await
        .json()
        .await
        .unwrap();
    report["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sales"].as_i64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "pauses the replica's replay: run alone with the replica topology (scripts/test)"]
async fn with_the_replica_paused_a_sale_completes_and_the_report_shows_it_only_after_replay_resumes()
 {
    // Arrange: an instance reading reports on the replica, which has replayed the seeded catalog.
    let app = spawn_app().await;
    assert_eq!(reported_sales(&app).await, 0);
    let paused = PausedReplica::pause(&app).await;

    // Act: a whole sale (checkout, payment, webhook, token) while the replica stands still.
    let (purchase, checkout_url, receipt_key) = app.start_purchase().await;
    app.stripe.pay(&TestApp::session_of(&checkout_url)).unwrap();
    let token = app.token_of(&purchase, &receipt_key).await;

    // Assert: the buyer has their token; the report is the replica's past until replay resumes.
    assert!(app.xano_tokens().contains(&token));
    assert_eq!(
        reported_sales(&app).await,
        0,
        "the paused replica still shows no sale"
    );
    paused.resume().await;
    app.eventually(
        "the report to show the sale",
        Duration::from_secs(10),
        || async { (reported_sales(&app).await == 1).then_some(()) },
    )
    .await;
}
