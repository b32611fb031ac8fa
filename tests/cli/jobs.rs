//! `market jobs` and `market events status`: an operator lists the dead jobs and requeues one, and
//! sees where the Stripe events backfill stands, from the command line.

use serde_json::Value;

use crate::operator::json;
use crate::{Account, market};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_dead_jobs_and_requeues_one_once() {
    // Arrange: one dead job and one done, as the runner leaves them.
    let account = Account::new().await;
    let env = account.env();
    let dead: i64 = sqlx::query_scalar(
        "insert into job (kind, subject, state, attempt, last_error, finished_at)
         values ('delete_token', '4242', 'dead', 12, 'gave up after 12 attempts: Xano 503', now()),
                ('replenish_pool', 'x', 'done', 1, null, now())
         returning job_id",
    )
    .fetch_one(account.db.pool())
    .await
    .unwrap();

    // Act
    let listed = json(&market(&["jobs", "list", "--state", "dead"], &env).await);
    let requeued = market(&["jobs", "requeue", &dead.to_string()], &env).await;
    let again = market(&["jobs", "requeue", &dead.to_string()], &env).await;
    let bad_state = market(&["jobs", "list", "--state", "failed"], &env).await;

    // Assert: only the dead job listed, with its error; requeued once; the second refused, saying
    // why; an unknown state refused by name.
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["job_id"], dead);
    assert_eq!(
        listed[0]["last_error"],
        "gave up after 12 attempts: Xano 503"
    );
    assert!(requeued.success, "{}", requeued.stderr);
    let body: Value = serde_json::from_str(&requeued.stdout).unwrap();
    assert_eq!(body["state"], "queued");
    assert!(!again.success);
    assert!(
        again.stderr.contains("only a dead job can be requeued"),
        "{}",
        again.stderr
    );
    assert!(
        !bad_state.success && bad_state.stderr.contains("failed"),
        "{}",
        bad_state.stderr
    );
    let state: String = sqlx::query_scalar("select state::text from job where job_id = $1")
        .bind(dead)
        .fetch_one(account.db.pool())
        .await
        .unwrap();
    assert_eq!(state, "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_where_the_stripe_events_backfill_stands() {
    // Arrange: a round that failed after applying two events, and one event kept unreadable.
    let account = Account::new().await;
    let env = account.env();
    sqlx::query(
        "update stripe_backfill set created_through = '2026-12-01T10:00:00Z', events_applied = 2,
                last_run_at = now(), last_error = 'Stripe answered 500'",
    )
    .execute(account.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "insert into stripe_event_unreadable (stripe_event_id, type, payload, reason)
         values ('evt_1', 'charge.refunded', '{}', 'the charge object: missing field')",
    )
    .execute(account.db.pool())
    .await
    .unwrap();

    // Act
    let status = json(&market(&["events", "status"], &env).await);

    // Assert
    assert_eq!(status["backfill"]["events_applied"], 2);
    assert_eq!(status["backfill"]["last_error"], "Stripe answered 500");
    assert!(
        status["backfill"]["created_through"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-12-01T10:00:00")),
        "{status}"
    );
    assert_eq!(status["unreadable_waiting"], 1);
}
