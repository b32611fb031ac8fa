//! The whole purchase: checkout → payment on Stripe's page → signed webhook → token.

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_gives_the_buyer_the_token_the_xano_simulator_holds() {
    // Arrange
    let app = spawn_app().await;
    let (purchase, checkout_url, receipt_key) = app.start_purchase().await;

    // Act: the buyer pays on the hosted page; Stripe delivers checkout.session.completed.
    let session = TestApp::session_of(&checkout_url);
    app.stripe.pay(&session).unwrap();
    let token = app.token_of(&purchase, &receipt_key).await;

    // Assert
    assert!(
        app.xano_tokens().contains(&token),
        "the token is live at Xano"
    );
    let body: Value = app
        .purchase(&purchase, &receipt_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "fulfilled");
    assert_eq!(body["token"]["max_installs"], 5);
    assert_eq!(
        body["install"]["snippet_url"],
        "https://www.xano.com/snippet/auth-flow_01/"
    );
    let purchase = uuid::Uuid::parse_str(&purchase).unwrap();
    let in_db = app
        .tokens_where(&format!(
            "purchase_id = '{purchase}' and state = 'assigned'"
        ))
        .await;
    assert_eq!(in_db, [token]);
    app.stop().await;
}
