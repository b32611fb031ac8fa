use std::time::Duration;

use sandbox::xano::{CallRecord, Endpoint, Fault};
use serde_json::json;

use crate::helpers::TestSim;

#[tokio::test(flavor = "multi_thread")]
async fn every_api_request_is_logged_with_method_path_status_and_times() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    app.get("/snippet?page=1").await;
    app.post("/snippet/abc/token", &json!({})).await;
    app.get("/nowhere").await;
    app.http.get(app.control("/health")).send().await.unwrap();

    let calls = app.sim.calls();
    let summary: Vec<(&str, &str, &str, Option<Endpoint>, u16)> = calls
        .iter()
        .map(|c| {
            (
                c.method.as_str(),
                c.path.as_str(),
                c.query.as_str(),
                c.endpoint,
                c.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "GET",
                "/api:meta/snippet",
                "page=1",
                Some(Endpoint::Snippets),
                200
            ),
            (
                "POST",
                "/api:meta/snippet/abc/token",
                "",
                Some(Endpoint::CreateToken),
                400
            ),
            ("GET", "/api:meta/nowhere", "", None, 404),
        ],
        "control requests are not API calls"
    );
    assert!(calls.iter().all(|c| c.started_at <= c.at));
    assert!(
        calls
            .windows(2)
            .all(|pair| pair[0].at <= pair[1].started_at)
    );

    app.sim.clear_calls();
    assert!(app.sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_client_abandons_during_a_stall_is_still_logged_once() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_millis(600)),
    });

    let outcome = app
        .http
        .post(app.url("/snippet/abc/token"))
        .bearer_auth(&app.token)
        .json(&json!({ "max_installs": 1 }))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(outcome.is_err());
    tokio::time::sleep(Duration::from_millis(900)).await;

    let calls = app.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].endpoint, Some(Endpoint::CreateToken));
    // Depending on whether the server notices the hang-up, the stalled answer was sent into the
    // void (200) or abandoned (no response); either way the call reached "Xano" once.
    assert!(
        [200, CallRecord::NO_RESPONSE].contains(&calls[0].status),
        "{:?}",
        calls[0].status
    );
}
