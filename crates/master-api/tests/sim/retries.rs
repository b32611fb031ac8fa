//! Retries of idempotent calls: what is retried, how long the client waits, and that a spent
//! budget ends in an error rather than a hang.

use std::time::{Duration, Instant};

use master_api::{Error, InstallAccess, RetryPolicy, StatusCode};
use sandbox::xano::{Endpoint, Fault};

use crate::common::{CANONICAL, client_for, existing_token, fast_retry, start_sim, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_1_is_waited_out_for_at_least_a_second_then_succeeds() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(1),
        only: None,
    });
    let started = Instant::now();

    // Act
    let result = within(client.snippet(CANONICAL)).await;

    // Assert
    let elapsed = started.elapsed();
    assert!(result.is_ok(), "{result:?}");
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    let calls = sim.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let gap = calls[1].started_at.duration_since(calls[0].at);
    assert!(
        gap >= Duration::from_millis(990),
        "second attempt came {gap:?} after the 429"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_500s_then_success_is_a_success() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::ServerError {
        count: 5,
        status: 500,
        only: None,
    });

    // Act
    let result = within(client.tokens(CANONICAL)).await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    let statuses: Vec<u16> = sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 500, 500, 500, 500, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_ends_in_a_server_error_once_attempts_run_out() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::ServerError {
        count: 1000,
        status: 502,
        only: None,
    });

    // Act
    let result = within(client.me()).await;

    // Assert
    assert!(
        matches!(
            result,
            Err(Error::Server {
                status: StatusCode::BAD_GATEWAY,
                outcome_unknown: false
            })
        ),
        "{result:?}"
    );
    assert_eq!(sim.calls().len(), fast_retry().max_attempts as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_429s_end_in_rate_limited_when_the_time_budget_is_spent() {
    // Arrange
    let sim = start_sim().await;
    let budget = Duration::from_millis(600);
    let client = client_for(&sim)
        .retry(RetryPolicy {
            max_attempts: 1000,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            max_elapsed: budget,
        })
        .build()
        .unwrap();
    sim.inject(Fault::RateLimitedRatio {
        ratio: 1.0,
        retry_after: None,
        only: None,
    });
    let started = Instant::now();

    // Act
    let result = within(client.me()).await;

    // Assert
    assert!(
        matches!(result, Err(Error::RateLimited { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < budget + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(sim.calls().len() > 1, "it did retry within the budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_budget_is_returned_at_once_instead_of_waited_for() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(3600),
        only: None,
    });
    let started = Instant::now();

    // Act
    let result = within(client.me()).await;

    // Assert
    assert!(
        matches!(result, Err(Error::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(3600)),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_are_retried_through_timeouts_and_dropped_connections() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let token = existing_token(&client).await;
    sim.clear_calls();
    sim.inject(Fault::DropConnection {
        count: 1,
        only: Some(Endpoint::UpdateSnippet),
    });
    sim.inject(Fault::Latency {
        min: Duration::from_secs(1),
        max: Duration::from_secs(1),
        only: Some(Endpoint::UpdateToken),
    });

    // Act
    let snippet = within(client.update_snippet_access(CANONICAL, InstallAccess::Token, "d")).await;
    let update = within(client.update_token(CANONICAL, &token, 5, 0)).await;

    // Assert
    assert!(snippet.is_ok(), "retried after the drop: {snippet:?}");
    assert!(
        matches!(
            update,
            Err(Error::Timeout {
                outcome_unknown: false
            })
        ),
        "every attempt timed out: {update:?}"
    );
    let update_attempts = sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::UpdateToken))
        .count();
    assert!(
        update_attempts > 1,
        "the update was retried ({update_attempts} attempts)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_is_retried_through_a_gateway_timeout_and_a_dropped_connection() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    let token = existing_token(&client).await;
    sim.clear_calls();
    sim.inject(Fault::ServerError {
        count: 1,
        status: 504,
        only: Some(Endpoint::DeleteToken),
    });
    sim.inject(Fault::DropConnection {
        count: 1,
        only: Some(Endpoint::DeleteToken),
    });

    // Act
    let result = within(client.delete_token(CANONICAL, &token)).await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert!(sim.tokens(CANONICAL).is_empty());
}
