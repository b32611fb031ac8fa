//! The client-side rate limit holds across clones and concurrent tasks, measured where it
//! matters: on the arrival times the simulator logged.

use std::time::{Duration, Instant};

use master_api::{RateLimit, RetryPolicy};

use crate::common::{client_for, start_sim, within};

const LIMIT: usize = 5;
const WINDOW: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_sharing_one_client_never_exceed_the_configured_rate() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim)
        .rate_limit(RateLimit::new(5, WINDOW))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let started = Instant::now();

    // Act: 8 tasks × 2 calls, each task on its own clone.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    client.me().await.unwrap();
                }
            })
        })
        .collect();
    within(async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;

    // Assert
    let mut arrivals: Vec<Instant> = sim.calls().iter().map(|call| call.started_at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 16);
    for (i, start) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .filter(|at| **at < *start + WINDOW)
            .count();
        assert!(
            in_window <= LIMIT,
            "{in_window} calls within 1 s of call {i}"
        );
    }
    // 16 calls at 5 per second need at least three full windows after the first burst.
    assert!(started.elapsed() >= 3 * WINDOW, "{:?}", started.elapsed());
}
