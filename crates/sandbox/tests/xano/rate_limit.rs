use std::time::Duration;

use sandbox::xano::{FreePlanPolicy, SimAccount, XanoSimConfig};

use crate::helpers::{TestSim, assert_xano_error};

const WHOA: &str = "Whoa there! Your plan only supports 10 requests per 20 seconds.";

#[tokio::test(flavor = "multi_thread")]
async fn the_free_plan_serves_ten_requests_per_twenty_seconds_then_429s_without_retry_after() {
    let app = TestSim::start().await;
    app.sim.set_free_plan_rate_limit(true);

    for i in 0..10 {
        assert_eq!(app.get("/auth/me").await.status(), 200, "request {i}");
    }
    let refused = app.get("/snippet").await;

    assert!(refused.headers().get("retry-after").is_none());
    let body = assert_xano_error(refused, 429, "ERROR_CODE_TOO_MANY_REQUESTS").await;
    assert_eq!(body["message"], WHOA);
    let log = app.sim.calls();
    assert_eq!(log.len(), 11);
    assert_eq!(log.iter().filter(|call| call.status == 429).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_free_plan_limit_counts_each_access_token_separately() {
    let app = TestSim::start().await;
    let other = app.sim.add_account(SimAccount {
        id: "2".into(),
        name: "B".into(),
        email: "b@example.test".into(),
    });
    app.sim.set_free_plan_rate_limit(true);
    for _ in 0..10 {
        assert_eq!(app.get("/auth/me").await.status(), 200);
    }
    assert_eq!(app.get("/auth/me").await.status(), 429);

    assert_eq!(app.get_as(&other, "/auth/me").await.status(), 200);

    app.sim.set_free_plan_rate_limit(false);
    assert_eq!(app.get("/auth/me").await.status(), 200, "off means off");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_free_plan_window_slides_so_a_client_that_waits_is_served_again() {
    let policy = FreePlanPolicy {
        requests: 2,
        window: Duration::from_millis(400),
    };
    let app = TestSim::with(XanoSimConfig {
        free_plan_rate_limit: true,
        free_plan_policy: policy,
        ..Default::default()
    })
    .await;

    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert_eq!(app.get("/auth/me").await.status(), 429);
    tokio::time::sleep(Duration::from_millis(450)).await;

    assert_eq!(app.get("/auth/me").await.status(), 200);
}
