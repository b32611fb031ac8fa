//! Token creation is not idempotent: an ambiguous failure must be reported as "outcome unknown"
//! and must never be "fixed" by minting a second token.

use std::time::Duration;

use master_api::{Error, RetryPolicy};
use sandbox::xano::{Endpoint, Fault};

use crate::common::{CANONICAL, client_for, start_sim, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_committed_then_answered_with_a_500_is_outcome_unknown_and_not_retried() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: None,
    });

    // Act
    let result = within(client.create_token(CANONICAL, 1)).await;

    // Assert
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Server { .. }), "{err:?}");
    assert!(err.is_outcome_unknown());
    assert!(!err.is_retryable());
    assert_eq!(
        sim.tokens(CANONICAL).len(),
        1,
        "exactly one token was minted"
    );
    assert_eq!(sim.calls().len(), 1, "no second POST");
    let reconciled = within(client.tokens(CANONICAL)).await.unwrap();
    assert_eq!(reconciled.len(), 1, "the caller can find it by listing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_committed_then_stalled_past_the_timeout_is_outcome_unknown_and_not_retried() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_secs(1)),
    });

    // Act
    let result = within(client.create_token(CANONICAL, 1)).await;

    // Assert
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                outcome_unknown: true
            }
        ),
        "{err:?}"
    );
    assert!(err.is_outcome_unknown());
    assert_eq!(
        sim.tokens(CANONICAL).len(),
        1,
        "exactly one token was minted"
    );
    // The simulator logs a stalled call once the stall ends; wait for that, then count POSTs.
    let calls = within(async {
        loop {
            let calls = sim.calls();
            if !calls.is_empty() {
                break calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posts = sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::CreateToken))
        .count();
    assert_eq!((calls.len(), posts), (1, 1), "no second POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_connection_drops_after_commit_is_outcome_unknown() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::CommitThenDrop { count: 1 });

    // Act
    let result = within(client.create_token(CANONICAL, 1)).await;

    // Assert
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                outcome_unknown: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.tokens(CANONICAL).len(), 1);
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_refused_with_a_429_is_retried_because_nothing_was_created() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    sim.inject(Fault::RateLimited {
        count: 2,
        retry_after: None,
        only: Some(Endpoint::CreateToken),
    });

    // Act
    let result = within(client.create_token(CANONICAL, 2)).await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(sim.tokens(CANONICAL).len(), 1);
    let statuses: Vec<u16> = sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_500_on_create_is_also_outcome_unknown_since_the_client_cannot_tell() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim)
        .retry(RetryPolicy::default())
        .build()
        .unwrap();
    sim.inject(Fault::ServerError {
        count: 1,
        status: 500,
        only: Some(Endpoint::CreateToken),
    });

    // Act
    let result = within(client.create_token(CANONICAL, 1)).await;

    // Assert
    let err = result.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(
        sim.tokens(CANONICAL).is_empty(),
        "here nothing was created; reconciling shows it"
    );
    assert_eq!(sim.calls().len(), 1, "still not retried");
}
