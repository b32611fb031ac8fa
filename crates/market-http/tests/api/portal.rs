//! The buyer portal: a sign-in link mailed (to a real SMTP server) and redeemed once for a session
//! that lists every purchase of its email and nobody else's; asking for a link answers the same for
//! an address that never bought (which is mailed nothing); links expire; sessions end; asking is
//! rate limited per client and per address.

use std::num::NonZeroU32;
use std::time::Duration;

use market_http::limits::{Limit, RateLimits};
use reqwest::Response;
use serde_json::{Value, json};
use testkit::smtp::SmtpSink;

use crate::admin_purchases::{buy, json_of};
use crate::helpers::{CANONICAL, Options, TestApp, spawn_app_with};
use crate::mail::{app_mailing_to, mailing_to};

async fn ask_link(app: &TestApp, email: &str) -> Response {
    app.client
        .post(app.url("/v1/portal/links"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

async fn redeem(app: &TestApp, link: &str) -> Response {
    app.client
        .post(app.url("/v1/portal/sessions"))
        .json(&json!({ "link": link }))
        .send()
        .await
        .unwrap()
}

async fn purchases_with(app: &TestApp, token: &str) -> Response {
    app.client
        .get(app.url("/v1/portal/purchases"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The `<id>.<key>` of the newest sign-in link that reached `to` at the SMTP server.
async fn mailed_link(sink: &SmtpSink, to: &str, count: usize) -> String {
    let received = sink.wait_for(count, Duration::from_secs(20)).await;
    let mail = received
        .iter()
        .rev()
        .find(|m| m.rcpt_tos == [to.to_owned()] && m.subject().unwrap().contains("sign-in"))
        .unwrap_or_else(|| panic!("no sign-in link to {to}"));
    let text = mail.text_parts();
    let start = text.find("#portal=").unwrap() + "#portal=".len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// The session token redeemed from a freshly mailed link for `email`.
pub async fn signed_in(app: &TestApp, sink: &SmtpSink, email: &str, count: usize) -> String {
    assert_eq!(ask_link(app, email).await.status(), 202);
    let link = mailed_link(sink, email, count).await;
    let session = json_of(redeem(app, &link).await, 201).await;
    session["token"].as_str().unwrap().to_owned()
}

fn ids(body: &Value) -> Vec<String> {
    body["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purchase_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_link_opens_a_session_that_lists_every_purchase_of_its_email_and_no_other() {
    // Arrange: two purchases by Ada, one by Bob (whose receipts are mailed too).
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let first = buy(&app, &solo, Some("ada@example.com")).await;
    let second = buy(&app, &solo, Some("Ada@Example.com")).await;
    let bob = buy(&app, &solo, Some("bob@example.com")).await;
    sink.wait_for(3, Duration::from_secs(20)).await;

    // Act
    assert_eq!(ask_link(&app, "ada@example.com").await.status(), 202);
    let link = mailed_link(&sink, "ada@example.com", 4).await;
    let response = redeem(&app, &link).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let session = json_of(response, 201).await;
    let token = session["token"].as_str().unwrap();
    let listed = json_of(purchases_with(&app, token).await, 200).await;

    // Assert: both of Ada's (newest first), with tokens and usage; none of Bob's.
    assert_eq!(ids(&listed), vec![second.id.clone(), first.id.clone()]);
    assert_eq!(listed["purchases"][0]["token"]["value"], second.token);
    assert_eq!(listed["purchases"][1]["token"]["value"], first.token);
    assert_eq!(listed["purchases"][0]["token"]["current_installs"], 0);
    assert!(!listed.to_string().contains(&bob.token));
    for attribute in [
        "market_portal=ps_",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/v1/portal",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // The cookie alone opens the same list.
    let by_cookie = app
        .client
        .get(app.url("/v1/portal/purchases"))
        .header("cookie", format!("market_portal={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&json_of(by_cookie, 200).await), ids(&listed));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_works_once_and_never_after_it_expires() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    buy(&app, &solo, Some("ada@example.com")).await;
    sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(ask_link(&app, "ada@example.com").await.status(), 202);
    let used = mailed_link(&sink, "ada@example.com", 2).await;
    assert_eq!(ask_link(&app, "ada@example.com").await.status(), 202);
    let expired = mailed_link(&sink, "ada@example.com", 3).await;
    sqlx::query(
        "update portal_link set created_at = now() - interval '20 minutes',
                                expires_at = now() - interval '5 minutes'
         where portal_link_id = $1::uuid",
    )
    .bind(expired.split_once('.').unwrap().0)
    .execute(app.db.pool())
    .await
    .unwrap();

    // Act
    let first = redeem(&app, &used).await.status();
    let again = redeem(&app, &used).await;
    let late = redeem(&app, &expired).await;
    let (id, key) = used.split_once('.').unwrap();
    let forged = redeem(&app, &format!("{id}.pl_{}", "0".repeat(64))).await;
    let garbage = redeem(&app, &format!("{key}.{id}")).await;

    // Assert
    assert_eq!(first, 201);
    for response in [again, late, forged, garbage] {
        assert_eq!(
            json_of(response, 401).await["error"]["code"],
            "invalid_portal_link"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_link_answers_alike_for_an_address_that_never_bought_and_mails_it_nothing() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    buy(&app, &solo, Some("ada@example.com")).await;
    sink.wait_for(1, Duration::from_secs(20)).await;

    // Act
    let buyer = ask_link(&app, "ada@example.com").await;
    let stranger = ask_link(&app, "nobody@example.com").await;

    // Assert: the same status, headers that matter and body.
    assert_eq!(buyer.status(), stranger.status());
    for header in ["content-type", "cache-control", "content-length"] {
        assert_eq!(
            buyer.headers().get(header),
            stranger.headers().get(header),
            "{header}"
        );
    }
    assert_eq!(buyer.text().await.unwrap(), stranger.text().await.unwrap());
    // The same rows were written for both; only the sender told them apart.
    let states = || async {
        sqlx::query_as::<_, (String, String)>(
            "select recipient, state from mail_message where kind = 'portal_link' order by recipient",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap()
    };
    let settled = app
        .eventually(
            "both link messages handled",
            Duration::from_secs(20),
            || async {
                let rows = states().await;
                rows.iter().all(|(_, s)| s != "queued").then_some(rows)
            },
        )
        .await;
    assert_eq!(
        settled,
        vec![
            ("ada@example.com".to_owned(), "sent".to_owned()),
            ("nobody@example.com".to_owned(), "not_sent".to_owned()),
        ]
    );
    let received = sink.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 2, "the receipt and Ada's link only");
    assert!(
        received
            .iter()
            .all(|m| m.rcpt_tos != ["nobody@example.com".to_owned()])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sees_only_its_email_and_nothing_once_signed_out() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let ada = buy(&app, &solo, Some("ada@example.com")).await;
    let bob = buy(&app, &solo, Some("bob@example.com")).await;
    sink.wait_for(2, Duration::from_secs(20)).await;
    let bobs = signed_in(&app, &sink, "bob@example.com", 3).await;

    // Act
    let listed = json_of(purchases_with(&app, &bobs).await, 200).await;
    let with_a_receipt_key = purchases_with(&app, &ada.receipt_key).await;
    let with_nothing = app.get("/v1/portal/purchases").await;
    let signed_out = app
        .client
        .delete(app.url("/v1/portal/session"))
        .bearer_auth(&bobs)
        .send()
        .await
        .unwrap();
    let after = purchases_with(&app, &bobs).await;

    // Assert
    assert_eq!(ids(&listed), vec![bob.id.clone()]);
    assert!(!listed.to_string().contains(&ada.id));
    assert_eq!(signed_out.status(), 204);
    for response in [with_a_receipt_key, with_nothing, after] {
        assert_eq!(
            json_of(response, 401).await["error"]["code"],
            "unauthorized"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_rate_limited_per_client_and_an_address_gets_at_most_three_in_a_window() {
    // Arrange: five link requests a minute per client.
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        mail: Some(mailing_to(&sink)),
        rate_limits: RateLimits {
            portal: Some(Limit {
                requests: NonZeroU32::new(5).unwrap(),
                period: Duration::from_secs(60),
            }),
            ..RateLimits::NONE
        },
        ..Options::default()
    })
    .await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    buy(&app, &solo, Some("ada@example.com")).await;
    sink.wait_for(1, Duration::from_secs(20)).await;

    // Act: one at a time, so the sender sees each sent before the next.
    let mut statuses = Vec::new();
    for n in 1..=6 {
        statuses.push(ask_link(&app, "ada@example.com").await.status().as_u16());
        if n <= 4 {
            app.eventually("the link message handled", Duration::from_secs(20), || async {
                let open: i64 = sqlx::query_scalar(
                    "select count(*) from mail_message where kind = 'portal_link' and state = 'queued'",
                )
                .fetch_one(app.db.pool())
                .await
                .unwrap();
                (open == 0).then_some(())
            })
            .await;
        }
    }

    // Assert
    assert_eq!(statuses, vec![202, 202, 202, 202, 202, 429]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let links = sink
        .messages()
        .iter()
        .filter(|m| m.subject().unwrap().contains("sign-in"))
        .count();
    assert_eq!(
        links, 3,
        "three links to one address in the window, however many asked"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_redemptions_of_one_link_open_exactly_one_session() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    buy(&app, &solo, Some("ada@example.com")).await;
    sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(ask_link(&app, "ada@example.com").await.status(), 202);
    let link = mailed_link(&sink, "ada@example.com", 2).await;

    // Act
    let attempts = (0..20).map(|_| redeem(&app, &link));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    // Assert
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 401),
        "{statuses:?}"
    );
    let sessions: i64 = sqlx::query_scalar("select count(*) from portal_session")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    app.stop().await;
}
