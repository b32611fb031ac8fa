//! Install counts where the buyer sees them: a receipt whose counts are over a minute old reads
//! them from Xano first (one list call for the listing, not again within the minute); when Xano
//! fails, the receipt still answers, with the last count and its age.

use sandbox::xano::{Endpoint, Fault};

use crate::admin_purchases::{buy, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};

/// Makes the listing's counts look two minutes old.
async fn age_counts(app: &TestApp) {
    sqlx::query(
        "update listing set installs_as_of = now() - interval '2 minutes',
                            installs_refresh_claimed_at = null
         where canonical = $1",
    )
    .bind(CANONICAL)
    .execute(app.db.pool())
    .await
    .unwrap();
}

fn list_calls(app: &TestApp) -> usize {
    app.xano
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::Tokens))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_with_stale_counts_reads_them_from_xano_once_a_minute() {
    // Arrange: two installs at Xano that the database has not seen.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, None).await;
    app.xano.install(CANONICAL, &bought.token).unwrap();
    app.xano.install(CANONICAL, &bought.token).unwrap();
    age_counts(&app).await;
    let before = list_calls(&app);

    // Act
    let first = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;
    let second = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;

    // Assert
    assert_eq!(first["token"]["current_installs"], 2);
    assert_eq!(second["token"]["current_installs"], 2);
    assert!(first["token"]["usage_as_of"].is_string());
    assert_eq!(list_calls(&app) - before, 1, "one list call for both reads");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_xano_cannot_be_asked_the_receipt_shows_the_last_count_and_its_age() {
    // Arrange
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, None).await;
    app.xano.install(CANONICAL, &bought.token).unwrap();
    age_counts(&app).await;
    app.xano.inject(Fault::ServerErrorRatio {
        ratio: 1.0,
        status: 503,
        only: Some(Endpoint::Tokens),
    });

    // Act
    let shown = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;

    // Assert: the last count (0) and its age (two minutes), not an error.
    assert_eq!(shown["token"]["current_installs"], 0);
    let as_of: chrono::DateTime<chrono::Utc> = shown["token"]["usage_as_of"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(chrono::Utc::now() - as_of > chrono::Duration::seconds(100));
    app.xano.clear_faults();
    app.stop().await;
}
