//! Token rotation: the buyer replaces a leaked token; the new one carries the installs used, the
//! old one is deleted at Xano, the purchase holds one live token throughout, and the buyer is
//! mailed the new token; asking twice while one runs is one rotation; a refund meanwhile cancels it
//! and leaves no live token; only the purchase's owner (receipt key, or a portal session of its
//! email) may ask, and an operator.

use std::time::Duration;

use reqwest::Response;
use sandbox::xano::{Endpoint, Fault};
use serde_json::Value;
use testkit::smtp::SmtpSink;

use crate::admin_purchases::{buy, checkout, json_of};
use crate::helpers::{ADMIN_TOKEN, CANONICAL, TestApp, spawn_app};
use crate::mail::app_mailing_to;

async fn rotate(app: &TestApp, purchase: &str, proof: &str) -> Response {
    app.client
        .post(app.url(&format!("/v1/purchases/{purchase}/rotate")))
        .bearer_auth(proof)
        .send()
        .await
        .unwrap()
}

async fn rotation_state(app: &TestApp, rotation: &str) -> (String, Option<i64>) {
    sqlx::query_as(
        "select state, installs_carried from token_rotation where rotation_id = $1::uuid",
    )
    .bind(rotation)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

async fn finished(app: &TestApp, rotation: &str) -> (String, Option<i64>) {
    app.eventually("the rotation finishes", Duration::from_secs(20), || async {
        let (state, carried) = rotation_state(app, rotation).await;
        (state != "pending").then_some((state, carried))
    })
    .await
}

/// Live (`assigned`/`revoking`) tokens of the purchase in the database.
async fn live_tokens(app: &TestApp, purchase: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from install_token
         where purchase_id = $1::uuid and state in ('assigned', 'revoking')",
    )
    .bind(purchase)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

fn at_xano(app: &TestApp, token: &str) -> Option<(i64, i64)> {
    app.xano
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token)
        .map(|t| (t.max_installs, t.current_installs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_carries_the_installs_used_and_the_old_one_stops_working() {
    // Arrange: a purchase of 5 installs with 2 used.
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    app.xano.install(CANONICAL, &bought.token).unwrap();
    app.xano.install(CANONICAL, &bought.token).unwrap();

    // Act
    let rotation = json_of(rotate(&app, &bought.id, &bought.receipt_key).await, 202).await;
    let id = rotation["rotation_id"].as_str().unwrap().to_owned();
    let (state, carried) = finished(&app, &id).await;

    // Assert
    assert_eq!((state.as_str(), carried), ("done", Some(2)));
    let receipt = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;
    let new = receipt["token"]["value"].as_str().unwrap().to_owned();
    assert_ne!(new, bought.token);
    assert_eq!(
        at_xano(&app, &new),
        Some((5, 2)),
        "the entitlement, the installs used"
    );
    assert_eq!(
        at_xano(&app, &bought.token),
        None,
        "the old token is deleted at Xano"
    );
    assert!(app.xano.install(CANONICAL, &bought.token).is_err());
    assert_eq!(live_tokens(&app, &bought.id).await, 1);
    let mails = app
        .eventually(
            "the rotation's message",
            Duration::from_secs(20),
            || async {
                let all = sink.messages();
                all.iter()
                    .any(|m| m.subject().unwrap().contains("new install token"))
                    .then_some(all)
            },
        )
        .await;
    let rotated = mails
        .iter()
        .find(|m| m.subject().unwrap().contains("new install token"))
        .unwrap();
    assert!(rotated.text_parts().contains(&new));
    assert!(!rotated.text_parts().contains(&bought.token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_again_while_a_rotation_runs_returns_it_and_the_purchase_rotates_once() {
    // Arrange: Xano's update fails for now, so the rotation stays pending.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, None).await;
    app.xano.inject(Fault::ServerErrorRatio {
        ratio: 1.0,
        status: 503,
        only: Some(Endpoint::UpdateToken),
    });

    // Act
    let first = json_of(rotate(&app, &bought.id, &bought.receipt_key).await, 202).await;
    let second = json_of(rotate(&app, &bought.id, &bought.receipt_key).await, 202).await;
    app.xano.clear_faults();
    let (state, _) = finished(&app, first["rotation_id"].as_str().unwrap()).await;

    // Assert
    assert_eq!(first["rotation_id"], second["rotation_id"]);
    assert_eq!(state, "done");
    let rotations: i64 = sqlx::query_scalar("select count(*) from token_rotation")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(rotations, 1);
    assert_eq!(live_tokens(&app, &bought.id).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_during_a_rotation_cancels_it_and_leaves_no_live_token_anywhere() {
    // Arrange: a rotation held before its Xano update.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, None).await;
    app.xano.inject(Fault::ServerErrorRatio {
        ratio: 1.0,
        status: 503,
        only: Some(Endpoint::UpdateToken),
    });
    let rotation = json_of(rotate(&app, &bought.id, &bought.receipt_key).await, 202).await;
    let id = rotation["rotation_id"].as_str().unwrap().to_owned();
    let reserved: i64 = app
        .eventually("a token reserved", Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, Option<i64>>(
                "select new_token_id from token_rotation where rotation_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(app.db.pool())
            .await
            .unwrap()
        })
        .await;

    // Act: the buyer is refunded, then Xano recovers.
    let shown: Value = json_of(
        app.admin_get(&format!("/v1/admin/purchases/{}", bought.id))
            .await,
        200,
    )
    .await;
    let payment_intent = shown["purchase"]["payment_intent_id"].as_str().unwrap();
    app.stripe.refund(payment_intent, None).unwrap();
    app.eventually("the old token revoked", Duration::from_secs(20), || async {
        (at_xano(&app, &bought.token).is_none() && live_tokens(&app, &bought.id).await == 0)
            .then_some(())
    })
    .await;
    app.xano.clear_faults();
    let (state, _) = finished(&app, &id).await;

    // Assert
    assert_eq!(state, "cancelled");
    let reserved_state: String = app
        .eventually(
            "the reserved token retired",
            Duration::from_secs(20),
            || async {
                let state: String = sqlx::query_scalar(
                    "select state::text from install_token where install_token_id = $1",
                )
                .bind(reserved)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
                (state == "retired").then_some(state)
            },
        )
        .await;
    assert_eq!(reserved_state, "retired");
    assert_eq!(live_tokens(&app, &bought.id).await, 0);
    let receipt = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;
    assert_eq!(receipt["status"], "refunded");
    assert!(receipt["token"]["value"].is_null());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_or_an_operator_may_rotate_and_an_unpaid_purchase_cannot() {
    // Arrange
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let ada = buy(&app, &solo, None).await;
    let bob = buy(&app, &solo, None).await;
    let (pending, _, pending_key) = checkout(&app, &solo, None).await;

    // Act
    let with_bobs_key = rotate(&app, &ada.id, &bob.receipt_key).await;
    let with_an_admin_token = rotate(&app, &ada.id, ADMIN_TOKEN).await;
    let unpaid = rotate(&app, &pending, &pending_key).await;
    let by_operator = app
        .admin_post(&format!("/v1/admin/purchases/{}/rotate", bob.id))
        .await;

    // Assert
    for response in [with_bobs_key, with_an_admin_token] {
        assert_eq!(json_of(response, 404).await["error"]["code"], "not_found");
    }
    assert_eq!(json_of(unpaid, 409).await["error"]["code"], "not_rotatable");
    let by_operator = json_of(by_operator, 202).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("select purchase_id::text, requested_by from token_rotation")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert_eq!(rows, vec![(bob.id.clone(), "admin:tester".to_owned())]);
    finished(&app, by_operator["rotation_id"].as_str().unwrap()).await;
    app.stop().await;
}
