//! The served API document is the API: schemathesis (PyPI), driven only by `/openapi.json`, sends
//! every operation examples, boundary cases, fuzzed inputs and stateful sequences, with the admin
//! token, against a fresh sandbox instance of the real binary, and checks every answer against the
//! document (statuses, schemas, headers, `Allow` on 405, …). Any finding fails this test, printing
//! schemathesis' report with a `curl` reproduction of each. Configuration: `tests/schemathesis.toml`.
//!
//! Needs `schemathesis` on `PATH` (`scripts/test` installs the pinned version); without it this test
//! fails saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod support;

use std::process::Command;

use support::{Market, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_api_document_does_not_say() {
    // Arrange: the tool first, so a machine without it fails at once and says what to do.
    let version = Command::new("schemathesis").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|v| v.status.success()),
        "schemathesis is not installed: run scripts/test, which installs it from PyPI"
    );
    let db = testkit::TestDb::empty().await;
    let bind = format!("127.0.0.1:{}", free_port());
    let market = Market::start(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url()),
            ("MARKET_BIND", &bind),
            // The fuzzer sends thousands of requests from one address.
            ("MARKET_RATE_LIMITS", "none"),
        ],
    );
    let admin = market.banner_value("admin token").expect("an admin token");

    // Act
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let run = Command::new("schemathesis")
        .args(["--config-file", config, "run"])
        .arg(format!("{}/openapi.json", market.url))
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--no-color", "--seed", "20261202"])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run schemathesis");

    // Assert
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found what the document does not say:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(report.contains("passed"), "no test case ran:\n{report}");
}
