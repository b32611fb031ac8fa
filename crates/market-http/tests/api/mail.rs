//! Buyers' email against a real SMTP server (aiosmtpd in its own process, `testkit::smtp`): the
//! receipt arrives once with the token and how to install it, under the outbox row's Message-ID;
//! a redelivered payment writes no second message; a refund sends "access ended"; a message waits
//! out an SMTP outage and arrives once when the server is back; a purchase made without an email
//! is mailed at the address Stripe Checkout collected.

use std::time::Duration;

use market_core::postman::{Smtp, Transport};
use market_http::startup::MailSettings;
use secrecy::SecretString;
use testkit::smtp::{ReceivedMail, SmtpSink};
use uuid::Uuid;

use crate::admin_purchases::{buy, checkout, json_of};
use crate::helpers::{CANONICAL, Options, TestApp, spawn_app_with};

const FROM: &str = "Snippet Market <receipts@market.example>";

/// Mail through the SMTP server `sink`.
pub fn mailing_to(sink: &SmtpSink) -> MailSettings {
    MailSettings {
        transport: Transport::Smtp(Smtp::from_url(&SecretString::from(sink.url())).unwrap()),
        from: FROM.to_owned(),
    }
}

pub async fn app_mailing_to(sink: &SmtpSink) -> TestApp {
    spawn_app_with(Options {
        mail: Some(mailing_to(sink)),
        ..Options::default()
    })
    .await
}

/// The outbox rows of `purchase`: `(mail_id, kind, state, attempts)`, oldest first.
async fn outbox(app: &TestApp, purchase: &str) -> Vec<(Uuid, String, String, i32)> {
    sqlx::query_as(
        "select mail_id, kind, state, attempts from mail_message
         where purchase_id = $1::uuid order by created_at",
    )
    .bind(purchase)
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

async fn sent(app: &TestApp, purchase: &str, kind: &str) -> Uuid {
    app.eventually(
        &format!("the {kind} of {purchase} is sent"),
        Duration::from_secs(20),
        || async {
            outbox(app, purchase)
                .await
                .into_iter()
                .find(|(_, k, state, _)| k == kind && state == "sent")
                .map(|(id, ..)| id)
        },
    )
    .await
}

fn to_of(mail: &ReceivedMail) -> Vec<String> {
    mail.rcpt_tos.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_arrives_once_with_the_token_install_steps_and_a_stable_message_id() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;

    // Act: a purchase, then its payment event delivered again (a duplicate from Stripe).
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    let mail_id = sent(&app, &bought.id, "receipt").await;
    let completed = app
        .stripe
        .events()
        .into_iter()
        .find(|e| e.type_ == "checkout.session.completed")
        .unwrap();
    app.stripe.redeliver(&completed.id).unwrap();
    assert!(
        app.stripe
            .wait_delivered(&completed.id, Duration::from_secs(10))
            .await
    );

    // Assert: one message, to the buyer, with the token and the steps, as text and HTML.
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "one receipt, however often paid");
    let mail = &received[0];
    assert_eq!(to_of(mail), vec!["ada@example.com".to_owned()]);
    assert_eq!(
        mail.message_id(),
        Some(format!("<{mail_id}@market.example>").as_str())
    );
    let subject = mail.subject().unwrap();
    assert!(
        subject.contains(CANONICAL) && subject.contains("Solo"),
        "{subject}"
    );
    let text = mail.text_parts();
    assert!(text.contains(&bought.token), "the token is in the message");
    assert!(text.contains("Enter your install access token when asked for it."));
    assert!(text.contains("<code"), "the HTML part is there too");
    assert!(!mail.raw.contains(&bought.receipt_key), "no receipt key");
    assert_eq!(outbox(&app, &bought.id).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_mails_that_access_ended_without_the_token() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    sent(&app, &bought.id, "receipt").await;

    // Act
    let shown = json_of(
        app.admin_get(&format!("/v1/admin/purchases/{}", bought.id))
            .await,
        200,
    )
    .await;
    let payment_intent = shown["purchase"]["payment_intent_id"].as_str().unwrap();
    app.stripe.refund(payment_intent, None).unwrap();
    sent(&app, &bought.id, "access_ended").await;

    // Assert
    let received = sink.wait_for(2, Duration::from_secs(10)).await;
    let ended = &received[1];
    assert!(ended.subject().unwrap().contains("has ended"));
    let text = ended.text_parts();
    assert!(text.contains("refunded"), "{text}");
    assert!(!text.contains(&bought.token), "a dead token is not mailed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_waits_out_an_smtp_outage_and_arrives_once() {
    // Arrange: the mail server is down when the purchase is paid.
    let mut sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    sink.stop().await;

    // Act
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    app.eventually(
        "the receipt failed twice against the stopped server",
        Duration::from_secs(20),
        || async {
            outbox(&app, &bought.id)
                .await
                .first()
                .filter(|(_, _, state, attempts)| state == "queued" && *attempts >= 2)
                .map(|_| ())
        },
    )
    .await;
    sink.restart().await;

    // Assert
    sent(&app, &bought.id, "receipt").await;
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
    assert!(received[0].text_parts().contains(&bought.token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_made_without_an_email_is_mailed_where_checkout_collected_one() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;

    // Act: no email at checkout; the simulator's hosted page collects buyer@example.com.
    let (id, session, receipt_key) = checkout(&app, &solo, None).await;
    app.stripe.pay(&session).unwrap();
    let token = app.token_of(&id, &receipt_key).await;

    // Assert
    sent(&app, &id, "receipt").await;
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(to_of(&received[0]), vec!["buyer@example.com".to_owned()]);
    assert!(received[0].text_parts().contains(&token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_run_shows_the_mail_it_kept_at_its_sandbox_page() {
    // Arrange: mail kept in-process, as in sandbox mode without a server.
    let app = spawn_app_with(Options {
        mail: Some(MailSettings {
            transport: Transport::Capture(market_core::postman::Capture::new()),
            from: FROM.to_owned(),
        }),
        ..Options::default()
    })
    .await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let before = app.get("/sandbox/mail").await.text().await.unwrap();

    // Act
    let bought = buy(&app, &solo, Some("ada@example.com")).await;
    sent(&app, &bought.id, "receipt").await;
    let page = app.get("/sandbox/mail").await;

    // Assert
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(before.contains("No mail yet"), "{before}");
    assert!(page.contains("Your install token for"), "{page}");
    assert!(page.contains(&bought.token));
    assert!(page.contains("To ada@example.com"));
    app.stop().await;
}
