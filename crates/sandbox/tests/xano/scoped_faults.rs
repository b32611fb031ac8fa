//! Faults narrowed to one account: a 429 storm, a latency or a counted fault at one seller's Xano
//! account hits that account's calls and leaves every other account's alone, unspent.

use std::time::{Duration, Instant};

use sandbox::xano::{Fault, FaultRule, SimAccount};
use serde_json::json;

use crate::helpers::{TestSim, status_and_json};

/// A simulator with two more accounts, "101" (A) and "103" (C): their access tokens.
async fn two_sellers() -> (TestSim, String, String) {
    let app = TestSim::start().await;
    let [a, c] = ["101", "103"].map(|id| {
        app.sim.add_account(SimAccount {
            id: id.to_owned(),
            name: format!("Seller {id}"),
            email: format!("seller{id}@example.test"),
        })
    });
    (app, a, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_and_a_latency_scoped_to_one_account_leave_another_accounts_calls_untouched() {
    let (app, a, c) = two_sellers().await;
    // A delay far above any scheduling noise, so that "not delayed" cannot be confused with "fast".
    let latency = Duration::from_secs(3);
    app.sim.inject(
        Fault::RateLimitedRatio {
            ratio: 1.0,
            retry_after: Some(1),
            only: None,
        }
        .for_account("103"),
    );
    app.sim.inject(
        Fault::Latency {
            min: latency,
            max: latency,
            only: None,
        }
        .for_account("103"),
    );

    let started = Instant::now();
    let storm = app.get_as(&c, "/auth/me").await;
    let c_took = started.elapsed();
    let untouched = tokio::time::timeout(latency / 2, async {
        let mut statuses = Vec::new();
        for token in [&a, &app.token] {
            statuses.push(app.get_as(token, "/auth/me").await.status().as_u16());
        }
        statuses
    })
    .await;

    assert_eq!(storm.status(), 429);
    assert!(c_took >= latency, "C's call took {c_took:?}");
    assert_eq!(
        untouched.expect("A's and the default account's calls are not delayed"),
        [200, 200]
    );
    let statuses: Vec<(Option<String>, u16)> = app
        .sim
        .calls()
        .into_iter()
        .map(|c| (c.account, c.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (Some("103".to_owned()), 429),
            (Some("101".to_owned()), 200),
            (Some("1".to_owned()), 200)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_counted_fault_scoped_to_one_account_is_not_spent_by_another_accounts_calls() {
    let (app, a, c) = two_sellers().await;
    app.sim.inject(
        Fault::ServerError {
            count: 1,
            status: 503,
            only: None,
        }
        .for_account("103"),
    );

    for _ in 0..3 {
        assert_eq!(app.get_as(&a, "/auth/me").await.status(), 200);
    }
    let no_token = app.http.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(no_token.status(), 401, "no token: no account, out of scope");
    assert_eq!(app.sim.fault_rules().len(), 1, "still unspent");
    assert_eq!(app.get_as(&c, "/auth/me").await.status(), 503);
    assert_eq!(app.get_as(&c, "/auth/me").await.status(), 200);
    assert!(app.sim.fault_rules().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_takes_and_lists_a_rule_with_its_account() {
    let (app, a, c) = two_sellers().await;
    let scoped = json!({ "kind": "rate_limited", "count": 5, "account": "103" });

    let added = app.control_post("/faults", &scoped).await;
    let (_, listed) =
        status_and_json(app.http.get(app.control("/faults")).send().await.unwrap()).await;

    assert_eq!(added.status(), 204);
    let rules: Vec<FaultRule> = serde_json::from_value(listed.clone()).unwrap();
    assert_eq!(
        rules,
        [Fault::RateLimited {
            count: 5,
            retry_after: None,
            only: None
        }
        .for_account("103")]
    );
    assert_eq!(listed[0]["account"], "103", "{listed}");
    assert_eq!(app.get_as(&a, "/auth/me").await.status(), 200);
    assert_eq!(app.get_as(&c, "/auth/me").await.status(), 429);
}
