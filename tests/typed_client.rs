//! A storefront developer's view of the API document: a typed client generated from the served
//! `/openapi.json` by openapi-typescript (npm), used through openapi-fetch by a small storefront
//! (`tests/client/storefront.ts`), must compile under `tsc --strict` and then buy a tier from a
//! sandbox instance of the real binary: catalog → checkout → pay on the sandbox's checkout page →
//! the purchase with its token. Duplicate operation ids or untyped bodies in the document break the
//! compile; a document that lies about a shape breaks the run.
//!
//! Needs Node.js with npm, and `npm ci` run in `tests/client` (`scripts/test` does both checks and
//! the install); without them this test fails saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{Market, free_port};

fn run(dir: &Path, what: &str, args: &[&str]) -> String {
    let output = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{what}: node did not run ({e}); install Node.js"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_served_document_compiles_strictly_and_buys_a_tier() {
    // Arrange: the tools first, so a machine without them fails at once and says what to do.
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client");
    assert!(
        client.join("node_modules/.bin/tsc").exists(),
        "tests/client has no node_modules: run scripts/test (it runs `npm ci` there)"
    );
    let db = testkit::TestDb::empty().await;
    let bind = format!("127.0.0.1:{}", free_port());
    let market = Market::start(
        &["serve"],
        &[("DATABASE_URL", &db.url()), ("MARKET_BIND", &bind)],
    );
    let document = format!("{}/openapi.json", market.url);

    // Act
    run(
        &client,
        "openapi-typescript",
        &[
            "node_modules/.bin/openapi-typescript",
            &document,
            "-o",
            "api.d.ts",
        ],
    );
    run(
        &client,
        "tsc --strict",
        &["node_modules/.bin/tsc", "-p", "."],
    );
    let bought = run(
        &client,
        "the storefront",
        &["dist/storefront.js", &market.url],
    );

    // Assert
    assert!(
        bought.contains("purchase fulfilled, token assigned"),
        "{bought}"
    );
}
