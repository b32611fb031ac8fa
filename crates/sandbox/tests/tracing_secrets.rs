//! The simulator must never put an access token or an install token value into `tracing`
//! output. This binary captures everything (all targets, TRACE, `log` records included) for a
//! whole run that touches every endpoint, error path and fault, then searches it for secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sandbox::xano::{Endpoint, Fault, XanoSim, XanoSimConfig};
use serde_json::{Value, json};
use testkit::LogCapture;

struct Driver {
    sim: XanoSim,
    http: reqwest::Client,
    access_token: String,
}

impl Driver {
    async fn send(&self, method: &str, path: &str, body: &Value) {
        let url = format!("{}{path}", self.sim.base_url());
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.access_token);
        if !body.is_null() {
            request = request.json(body);
        }
        // Faults make some of these fail on purpose; only the log output matters here.
        let _ = request.send().await;
    }

    async fn create_token(&self, max_installs: i64) -> String {
        let url = format!("{}/snippet/abc/token", self.sim.base_url());
        let response = self.http.post(url).bearer_auth(&self.access_token);
        let created: Value =
            testkit::http::json(response.json(&json!({ "max_installs": max_installs }))).await;
        created["token"].as_str().unwrap().to_owned()
    }
}

/// Every endpoint, success and error paths, with token values in paths, under every fault type.
async fn exercise_everything(driver: &Driver) -> Vec<String> {
    let sim = &driver.sim;
    sim.add_snippet("abc", "Snippet");
    let first = driver.create_token(1).await;
    let second = driver.create_token(2).await;
    sim.install("abc", &first).unwrap();
    sim.install("abc", &first).unwrap_err();
    sim.inject(Fault::Latency {
        min: Duration::ZERO,
        max: Duration::from_millis(5),
        only: None,
    });
    sim.inject(Fault::ServerError {
        count: 1,
        status: 502,
        only: Some(Endpoint::DeleteToken),
    });
    sim.inject(Fault::DropConnection {
        count: 1,
        only: Some(Endpoint::UpdateToken),
    });
    sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(1),
        only: Some(Endpoint::Tokens),
    });
    sim.inject(Fault::CommitThenDrop { count: 1 });
    let calls = [
        ("GET", "/auth/me".to_owned(), json!(null)),
        ("GET", "/instance".to_owned(), json!(null)),
        ("GET", "/instance/none".to_owned(), json!(null)),
        ("GET", "/snippet?page=1".to_owned(), json!(null)),
        ("GET", "/snippet/abc".to_owned(), json!(null)),
        (
            "POST",
            "/snippet/abc".to_owned(),
            json!({ "install_access": "token", "install_access_description": "d" }),
        ),
        (
            "POST",
            "/snippet/abc".to_owned(),
            json!({ "install_access": "nope" }),
        ),
        ("GET", "/snippet/abc/token".to_owned(), json!(null)),
        (
            "POST",
            format!("/snippet/abc/token/{first}"),
            json!({ "max_installs": 3, "current_installs": 1 }),
        ),
        (
            "POST",
            format!("/snippet/abc/token/{first}"),
            json!({ "max_installs": -3 }),
        ),
        (
            "DELETE",
            format!("/snippet/abc/token/{second}"),
            json!(null),
        ),
        (
            "DELETE",
            format!("/snippet/abc/token/{second}"),
            json!(null),
        ),
        ("GET", format!("/nowhere/{second}"), json!(null)),
        (
            "POST",
            "/snippet/abc/token".to_owned(),
            json!({ "max_installs": 1 }),
        ),
    ];
    for (method, path, body) in &calls {
        driver.send(method, path, body).await;
    }
    let mut tokens = vec![first, second];
    tokens.extend(sim.tokens("abc").into_iter().map(|token| token.token));
    tokens.sort();
    tokens.dedup();
    tokens
}

#[tokio::test(flavor = "multi_thread")]
async fn no_access_token_or_install_token_reaches_tracing_output_in_a_whole_run() {
    let capture = LogCapture::install();
    let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let driver = Driver {
        access_token: sim.access_token(),
        sim,
        http,
    };

    let install_tokens = exercise_everything(&driver).await;
    let unknown = driver
        .http
        .get(format!("{}/auth/me", driver.sim.base_url()));
    let _ = unknown.bearer_auth("some-unknown-token-value").send().await;
    let Driver {
        sim, access_token, ..
    } = driver;
    sim.stop().await;

    let output = capture.contents();
    assert!(
        output.contains("xano sim answered"),
        "the capture works and saw the simulator:\n{output}"
    );
    capture.assert_absent("the access token", &access_token);
    capture.assert_absent("a presented bearer token", "some-unknown-token-value");
    assert_eq!(
        install_tokens.len(),
        3,
        "two created plainly, one by commit-then-drop"
    );
    for token in &install_tokens {
        capture.assert_absent("an install token", token);
    }
}
