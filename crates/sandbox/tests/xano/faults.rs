use std::time::{Duration, Instant};

use sandbox::xano::{CallRecord, Endpoint, Fault};
use serde_json::json;

use crate::helpers::{TestSim, assert_xano_error, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_faults_answer_429_with_and_without_retry_after_then_stop() {
    let app = TestSim::start().await;
    app.sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(3),
        only: None,
    });
    app.sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: None,
        only: None,
    });

    let first = app.get("/auth/me").await;
    assert_eq!(first.headers()["retry-after"], "3");
    assert_xano_error(first, 429, "ERROR_CODE_TOO_MANY_REQUESTS").await;
    let second = app.get("/auth/me").await;
    assert!(second.headers().get("retry-after").is_none());
    assert_xano_error(second, 429, "ERROR_CODE_TOO_MANY_REQUESTS").await;

    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert!(app.sim.faults().is_empty(), "used-up rules are gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn ratio_faults_hit_the_given_share_of_requests_until_cleared() {
    let app = TestSim::start().await;
    app.sim.inject(Fault::RateLimitedRatio {
        ratio: 1.0,
        retry_after: Some(1),
        only: None,
    });
    for _ in 0..3 {
        assert_eq!(app.get("/auth/me").await.status(), 429);
    }
    app.sim.clear_faults();
    app.sim.inject(Fault::ServerErrorRatio {
        ratio: 0.0,
        status: 502,
        only: None,
    });
    assert_eq!(app.get("/auth/me").await.status(), 200);
    app.sim.clear_faults();

    app.sim.inject(Fault::ServerErrorRatio {
        ratio: 0.5,
        status: 502,
        only: None,
    });
    let mut failed = 0;
    for _ in 0..200 {
        if app.get("/auth/me").await.status() == 502 {
            failed += 1;
        }
    }
    assert!(
        (50..=150).contains(&failed),
        "{failed} of 200 failed at a 0.5 ratio"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_faults_answer_the_given_status_with_xanos_fatal_body() {
    let app = TestSim::start().await;
    app.sim.inject(Fault::ServerError {
        count: 2,
        status: 503,
        only: None,
    });

    assert_xano_error(app.get("/instance").await, 503, "ERROR_FATAL").await;
    assert_xano_error(app.get("/instance").await, 503, "ERROR_FATAL").await;
    assert_eq!(app.get("/instance").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_narrowed_to_an_endpoint_leave_other_endpoints_alone() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::ServerError {
        count: 1,
        status: 500,
        only: Some(Endpoint::CreateToken),
    });

    assert_eq!(app.get("/snippet/abc/token").await.status(), 200);
    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert_eq!(
        app.post("/snippet/abc/token", &json!({ "max_installs": 1 }))
            .await
            .status(),
        500
    );
    assert!(
        app.sim.tokens("abc").is_empty(),
        "a plain 5xx fault commits nothing"
    );
    assert_eq!(
        app.post("/snippet/abc/token", &json!({ "max_installs": 1 }))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_delays_matching_responses_by_at_least_the_minimum() {
    let app = TestSim::start().await;
    // A delay far above any scheduling noise, so that "not delayed" cannot be confused with "fast".
    let (min, max) = (Duration::from_secs(3), Duration::from_secs(3));
    app.sim.inject(Fault::Latency {
        min,
        max,
        only: Some(Endpoint::Me),
    });

    let started = Instant::now();
    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert!(started.elapsed() >= min, "{:?}", started.elapsed());

    let other = tokio::time::timeout(min / 2, app.get("/instance")).await;
    assert_eq!(
        other.expect("other endpoints are not delayed").status(),
        200
    );
    assert_eq!(app.sim.faults().len(), 1, "latency stays until cleared");
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_then_fail_creates_the_token_and_then_answers_500() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: None,
    });

    let response = app
        .post("/snippet/abc/token", &json!({ "max_installs": 3 }))
        .await;

    assert_xano_error(response, 500, "ERROR_FATAL").await;
    let tokens = app.sim.tokens("abc");
    assert_eq!(
        tokens.len(),
        1,
        "the token was committed before the failure"
    );
    assert_eq!(tokens[0].max_installs, 3);
    let (_, listed) = status_and_json(app.get("/snippet/abc/token").await).await;
    assert_eq!(
        listed[0]["token"],
        tokens[0].token.as_str(),
        "and a client that reconciles finds it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_then_fail_is_not_spent_on_a_creation_that_failed_validation() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: None,
    });

    assert_eq!(
        app.post("/snippet/abc/token", &json!({})).await.status(),
        400
    );
    assert_eq!(
        app.post("/snippet/abc/token", &json!({ "max_installs": 1 }))
            .await
            .status(),
        500
    );
    assert_eq!(
        app.post("/snippet/abc/token", &json!({ "max_installs": 1 }))
            .await
            .status(),
        200
    );
    assert_eq!(app.sim.tokens("abc").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_then_stall_outlasts_the_client_timeout_but_the_token_exists() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_secs(3)),
    });

    let outcome = app
        .http
        .post(app.url("/snippet/abc/token"))
        .bearer_auth(&app.token)
        .json(&json!({ "max_installs": 1 }))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    let error = outcome.expect_err("the client times out");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(app.sim.tokens("abc").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_is_a_transport_error_not_an_http_status() {
    let app = TestSim::start().await;
    // Warm the pool first: the drop must also be seen on a reused keep-alive connection.
    assert_eq!(app.get("/auth/me").await.status(), 200);
    app.sim.inject(Fault::DropConnection {
        count: 2,
        only: None,
    });

    for attempt in 0..2 {
        let outcome = app
            .http
            .get(app.url("/auth/me"))
            .bearer_auth(&app.token)
            .send()
            .await;
        let error = outcome.expect_err("no response arrives");
        assert!(error.status().is_none(), "attempt {attempt}: {error:?}");
        assert!(
            error.is_request() || error.is_connect(),
            "attempt {attempt}: {error:?}"
        );
        assert!(
            !error.is_timeout() && !error.is_decode() && !error.is_body(),
            "attempt {attempt}: {error:?}"
        );
    }

    assert_eq!(
        app.get("/auth/me").await.status(),
        200,
        "later requests are served"
    );
    let statuses: Vec<u16> = app.sim.calls().iter().map(|call| call.status).collect();
    assert_eq!(
        statuses,
        [200, CallRecord::NO_RESPONSE, CallRecord::NO_RESPONSE, 200]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_then_drop_creates_the_token_and_drops_the_connection() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::CommitThenDrop { count: 1 });

    let outcome = app
        .http
        .post(app.url("/snippet/abc/token"))
        .bearer_auth(&app.token)
        .json(&json!({ "max_installs": 1 }))
        .send()
        .await;

    let error = outcome.expect_err("no response arrives");
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(app.sim.tokens("abc").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_consulted_in_order_and_only_the_first_disruption_is_spent() {
    let app = TestSim::start().await;
    app.sim.inject(Fault::ServerError {
        count: 1,
        status: 500,
        only: None,
    });
    app.sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: None,
        only: None,
    });

    assert_eq!(app.get("/auth/me").await.status(), 500);
    assert_eq!(app.get("/auth/me").await.status(), 429);
    assert_eq!(app.get("/auth/me").await.status(), 200);
}
