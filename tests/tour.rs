//! The README's curl tour (`scripts/tour.sh`), run step by step against the real binary in sandbox
//! mode on a fresh database, started outside the repository: catalog, checkout, pay, purchase with
//! token, receipt mailed, portal, upgrade (the same token, the bigger tier's limit), rotation, refund,
//! token revoked.
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
async fn the_readme_tour_works_as_written_against_a_fresh_sandbox() {
    // Arrange: `market` with nothing configured but where its database and port are, started
    // from a directory that holds nothing of the repository (the demo catalog is built in).
    let db = testkit::TestDb::empty().await;
    let bind = format!("127.0.0.1:{}", free_port());
    let elsewhere = std::env::temp_dir().join(format!("market-tour-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let market = Market::start_in(
        &elsewhere,
        &[],
        &[("DATABASE_URL", &db.url()), ("MARKET_BIND", &bind)],
    );
    assert!(
        market.lines.iter().any(|l| l.contains("SANDBOX mode")),
        "the banner says sandbox mode: {:?}",
        market.lines
    );
    let admin = market
        .banner_value("admin token")
        .expect("a generated admin token in the banner");

    // Act
    let output = Command::new("bash")
        .arg("scripts/tour.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MARKET", &market.url)
        .env("ADMIN", &admin)
        .output()
        .expect("run scripts/tour.sh");

    // Assert
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tour failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Your install token for"),
        "the mailed receipt: {stdout}"
    );
    assert!(
        stdout.contains("\"portal\": ["),
        "the portal's list: {stdout}"
    );
    assert!(
        stdout.contains("\"upgraded\": {") && stdout.contains("\"same_token\": true"),
        "the upgraded purchase keeps its token: {stdout}"
    );
    assert!(
        stdout.contains("Your upgrade to"),
        "the upgrade's message: {stdout}"
    );
    assert!(
        stdout.contains("\"rotated\": {"),
        "the rotated token: {stdout}"
    );
    assert!(stdout.contains("\"status\": \"refunded\""), "{stdout}");
    assert!(stdout.contains("\"state\": \"revoked\""), "{stdout}");
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let revoked: Vec<i64> = sqlx::query_scalar(
        "select max_installs from install_token where state = 'revoked' order by install_token_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // The rotated-out token was at the upgraded limit. The refunded purchase's token was too,
    // unless the refund of the upgrade (the operator's refund takes it along) was applied before
    // the purchase's own: then its limit came back down to Solo's first.
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert_eq!(
        revoked[0], 50,
        "the rotated-out token, at Agency's limit: {revoked:?}"
    );
    assert!([5, 50].contains(&revoked[1]), "{revoked:?}");
    let (upgrades, applied, limit_changes): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from purchase where upgrade_of is not null),
                (select count(*) from purchase where upgrade_of is not null and fulfilled_at is not null),
                (select count(*) from audit_event where action = 'token.limit_changed')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((upgrades, applied), (1, 1), "one upgrade, applied once");
    assert!(
        (1..=2).contains(&limit_changes),
        "raised once, lowered at most once: {limit_changes}"
    );
    drop(market);
    std::fs::remove_dir_all(&elsewhere).unwrap();
}

#[test]
fn production_without_credentials_refuses_to_start_and_names_what_is_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_market"))
        .args(["serve"])
        .env("MARKET_ENV", "production")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("XANO_ACCESS_TOKEN")
        .env_remove("STRIPE_SECRET_KEY")
        .output()
        .expect("run market");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "XANO_ACCESS_TOKEN",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRETS",
        "MARKET_ADMIN_TOKENS",
        "MARKET_RECEIPT_SECRET",
        "MARKET_DATA_KEY",
    ] {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
}
