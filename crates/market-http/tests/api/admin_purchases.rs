//! Admin purchases: the list (newest first, filtered by status, tier, listing and e-mail, cursor pages that
//! neither repeat nor skip while new purchases arrive), one purchase with its receipt and its audit
//! trail in order, revoking (the token is deleted at Xano, the buyer's receipt shows it revoked, a
//! second revoke changes nothing) and refunding through Stripe (one refund keyed `refund:<id>`,
//! `charge.refunded` revokes the token; an unpaid purchase cannot be refunded). Every admin action
//! is audited under the admin's name.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Response;
use sandbox::xano::Endpoint;
use serde_json::{Value, json};

use crate::admin_ops::settled;
use crate::helpers::{CANONICAL, TestApp, WEBHOOK_SECRET, spawn_app};

/// A purchase paid through the Stripe simulator and holding its token.
pub struct Bought {
    pub id: String,
    pub receipt_key: String,
    pub token: String,
}

/// Checks out `tier` (with `email`): `(purchase_id, session_id, receipt_key)`.
pub async fn checkout(app: &TestApp, tier: &str, email: Option<&str>) -> (String, String, String) {
    let mut request = json!({ "tier_id": tier });
    if let Some(email) = email {
        request["email"] = json!(email);
    }
    let body = json_of(app.checkout(&request).await, 201).await;
    (
        body["purchase_id"].as_str().unwrap().to_owned(),
        TestApp::session_of(body["checkout_url"].as_str().unwrap()),
        body["receipt_key"].as_str().unwrap().to_owned(),
    )
}

/// Checks out `tier`, pays at the Stripe simulator and waits for the token.
pub async fn buy(app: &TestApp, tier: &str, email: Option<&str>) -> Bought {
    let (id, session, receipt_key) = checkout(app, tier, email).await;
    app.stripe.pay(&session).unwrap();
    let token = app.token_of(&id, &receipt_key).await;
    Bought {
        id,
        receipt_key,
        token,
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json_of(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The newest audit entry's id: a mark to read later entries from.
pub async fn audit_mark(app: &TestApp) -> i64 {
    sqlx::query_scalar("select coalesce(max(audit_event_id), 0) from audit_event")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// The actors of the audit entries with `action` written after `mark`, oldest first.
pub async fn actors(app: &TestApp, mark: i64, action: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select actor from audit_event where action = $1 and audit_event_id > $2
         order by audit_event_id",
    )
    .bind(action)
    .bind(mark)
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

/// `POST /v1/admin/purchases/{id}/{action}` as the admin.
async fn act(app: &TestApp, id: &str, action: &str) -> Response {
    app.admin_post(&format!("/v1/admin/purchases/{id}/{action}"))
        .await
}

/// `GET /v1/admin/purchases/{id}`.
pub async fn admin_view(app: &TestApp, id: &str) -> Value {
    json_of(
        app.admin_get(&format!("/v1/admin/purchases/{id}")).await,
        200,
    )
    .await
}

/// Waits until the Xano simulator no longer lists `token`.
async fn gone_at_xano(app: &TestApp, token: &str) {
    app.eventually(
        "the token deleted at Xano",
        Duration::from_secs(20),
        || async { (!app.xano_tokens().iter().any(|t| t == token)).then_some(()) },
    )
    .await;
}

fn ids(page: &Value) -> Vec<String> {
    page["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purchase_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(app: &TestApp, query: &str) -> Vec<String> {
    ids(&json_of(
        app.admin_get(&format!("/v1/admin/purchases?{query}")).await,
        200,
    )
    .await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_are_filtered_by_status_tier_listing_and_email_and_bad_filters_are_400() {
    // Arrange: two paid and two pending purchases over three tiers.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;
    let billing = app.tier_id("stripe-billing_02", "solo").await;
    let paid_a = buy(&app, &solo, Some("Alice@Example.com")).await;
    let (b, ..) = checkout(&app, &agency, Some("bob@example.com")).await;
    let (c, ..) = checkout(&app, &solo, None).await;
    let d = buy(&app, &billing, Some("alice@example.com")).await.id;
    let a = paid_a.id.as_str();
    let (b, c, d) = (b.as_str(), c.as_str(), d.as_str());
    let listing: uuid::Uuid =
        sqlx::query_scalar("select listing_id from listing where canonical = $1")
            .bind(CANONICAL)
            .fetch_one(app.db.pool())
            .await
            .unwrap();

    // Act + Assert: newest first under every filter.
    let cases = [
        (String::new(), vec![d, c, b, a]),
        ("status=fulfilled".into(), vec![d, a]),
        ("status=pending".into(), vec![c, b]),
        ("status=refunded".into(), vec![]),
        (format!("tier_id={solo}"), vec![c, a]),
        ("email=ALICE%40example.com".into(), vec![d, a]),
        (format!("status=pending&tier_id={agency}"), vec![b]),
        (format!("listing_id={listing}"), vec![c, b, a]),
        (format!("listing_id={listing}&status=pending"), vec![c, b]),
        (
            format!("listing_id={listing}&email=bob%40example.com"),
            vec![b],
        ),
        (format!("listing_id={}", uuid::Uuid::new_v4()), vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(list(&app, &query).await, expected, "{query}");
    }
    let by_listing = format!("listing_id={listing}&limit=2");
    let first = app.admin_get(&format!("/v1/admin/purchases?{by_listing}"));
    let first = json_of(first.await, 200).await;
    assert_eq!(ids(&first), vec![c, b]);
    let next = first["next_cursor"].as_str().unwrap();
    let rest = list(&app, &format!("{by_listing}&cursor={next}")).await;
    assert_eq!(rest, vec![a], "the listing's next page");
    let page = app.admin_get("/v1/admin/purchases").await.text().await;
    assert!(
        !page.unwrap().contains(&paid_a.token),
        "lists carry no tokens"
    );
    for bad in [
        "status=bogus",
        "limit=0",
        "limit=201",
        "cursor=nonsense",
        "listing_id=auth-flow_01",
        "colour=red",
    ] {
        let response = app.admin_get(&format!("/v1/admin/purchases?{bad}")).await;
        assert!(
            json_of(response, 400).await["error"]["code"].is_string(),
            "{bad}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pages_walk_every_purchase_once_even_while_new_ones_arrive() {
    // Arrange: seven purchases.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(checkout(&app, &solo, None).await.0);
    }

    // Act: page by three; two purchases arrive after the first page.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor
            .as_ref()
            .map_or("limit=3".to_owned(), |c| format!("limit=3&cursor={c}"));
        let page = json_of(
            app.admin_get(&format!("/v1/admin/purchases?{query}")).await,
            200,
        )
        .await;
        sizes.push(ids(&page).len());
        seen.extend(ids(&page));
        if cursor.is_none() {
            checkout(&app, &solo, None).await;
            checkout(&app, &solo, None).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }

    // Assert: newest first, no duplicates, no gaps, newcomers only on a fresh walk.
    assert_eq!(sizes, vec![3, 3, 1]);
    created.reverse();
    assert_eq!(seen, created);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    let fresh = list(&app, "limit=200").await;
    assert_eq!(fresh.len(), 9);
    assert_eq!(&fresh[2..], &seen[..]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_deletes_the_token_at_xano_and_is_in_the_audit_trail_once() {
    // Arrange
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    // A full pool, so the purchase is served from it (not by the mint job) and its trail is known.
    settled(&app).await;
    let bought = buy(&app, &solo, None).await;
    let shown = admin_view(&app, &bought.id).await;
    assert_eq!(shown["purchase"]["status"], "fulfilled");
    assert_eq!(shown["purchase"]["amount"], 1900);
    assert_eq!(shown["receipt"]["token"]["value"], bought.token.as_str());

    // Act
    let revoked = act(&app, &bought.id, "revoke").await;

    // Assert
    let revoked = json_of(revoked, 200).await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["outcome"], "revoking");
    gone_at_xano(&app, &bought.token).await;
    let receipt = app
        .eventually(
            "the receipt to show the token revoked",
            Duration::from_secs(20),
            || async {
                let body: Value = app
                    .purchase(&bought.id, &bought.receipt_key)
                    .await
                    .json()
                    .await
                    .ok()?;
                (body["token"]["state"] == "revoked").then_some(body)
            },
        )
        .await;
    assert_eq!(receipt["status"], "revoked");
    assert!(receipt["token"]["value"].is_null());
    assert!(!receipt.to_string().contains(&bought.token));

    let shown = admin_view(&app, &bought.id).await;
    let trail: Vec<(&str, &str)> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let expected = [
        ("purchase.created", "buyer"),
        ("purchase.paid", "stripe"),
        ("purchase.fulfilled", "stripe"),
        ("token.assigned", "stripe"),
        ("purchase.revoked", "admin:tester"),
        ("token.revoking", "admin:tester"),
        ("xano.token_revoked", "system"),
    ];
    let positions: Vec<usize> = expected
        .iter()
        .map(|(action, actor)| {
            trail
                .iter()
                .position(|entry| entry == &(*action, *actor))
                .unwrap_or_else(|| panic!("{action} by {actor} missing from {trail:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {trail:?}"
    );
    let audit_ids: Vec<i64> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["audit_event_id"].as_i64().unwrap())
        .collect();
    assert!(audit_ids.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // A second revoke changes nothing, at Xano or in the log.
    let (mark, deletes_before) = (audit_mark(&app).await, deletes(&app, &bought.token));
    assert_eq!(deletes_before, 1, "the token was deleted once");
    let again = json_of(act(&app, &bought.id, "revoke").await, 200).await;
    assert_eq!(again["status"], "revoked");
    assert_eq!(again["outcome"], "no_change");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (Background pool refills may log meanwhile; nothing about this purchase or by the admin.)
    let extra: Vec<(String, String)> = sqlx::query_as(
        "select action, actor from audit_event
         where audit_event_id > $1 and (purchase_id = $2::uuid or actor <> 'system')",
    )
    .bind(mark)
    .bind(&bought.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert!(extra.is_empty(), "{extra:?}");
    assert_eq!(deletes(&app, &bought.token), deletes_before);

    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(act(&app, &unknown, "revoke").await.status(), 404);
    assert_eq!(act(&app, &unknown, "refund").await.status(), 404);
    let missing = app
        .admin_get(&format!("/v1/admin/purchases/{unknown}"))
        .await;
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

/// `DELETE` calls for `token` the Xano simulator received.
fn deletes(app: &TestApp, token: &str) -> usize {
    app.xano
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::DeleteToken) && c.path.ends_with(token))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_through_stripe_is_made_once_its_charge_refunded_revokes_the_token_and_a_late_retry_succeeds()
 {
    // Arrange: a paid purchase; Stripe's events are held back so both refund requests come first.
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let bought = buy(&app, &solo, None).await;
    app.stripe.clear_webhook();

    // Act: the operator asks twice.
    let first = json_of(act(&app, &bought.id, "refund").await, 202).await;
    let second = json_of(act(&app, &bought.id, "refund").await, 202).await;

    // Assert: one refund at Stripe, under the purchase's idempotency key.
    assert_eq!(first["outcome"], "refund_requested");
    assert_eq!(second["outcome"], "refund_requested");
    let refund_calls: Vec<_> = app
        .stripe
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == "/v1/refunds")
        .collect();
    assert_eq!(refund_calls.len(), 2);
    let key = format!("refund:{}", bought.id);
    assert!(
        refund_calls
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some(key.as_str()))
    );
    assert_eq!(
        refund_calls.iter().filter(|c| !c.replayed).count(),
        1,
        "refunded once"
    );
    let refunded_events: Vec<_> = app
        .stripe
        .events()
        .into_iter()
        .filter(|e| e.type_ == "charge.refunded")
        .collect();
    assert_eq!(refunded_events.len(), 1);

    // Stripe delivers charge.refunded: the purchase is refunded and its token deleted at Xano.
    app.stripe.set_webhook(
        url::Url::parse(&app.url("/v1/webhooks/stripe")).unwrap(),
        vec![WEBHOOK_SECRET.to_owned()],
    );
    app.stripe.redeliver(&refunded_events[0].id).unwrap();
    assert!(
        app.stripe
            .wait_delivered(&refunded_events[0].id, Duration::from_secs(10))
            .await
    );
    gone_at_xano(&app, &bought.token).await;
    let receipt = json_of(app.purchase(&bought.id, &bought.receipt_key).await, 200).await;
    assert_eq!(receipt["status"], "refunded");
    assert!(receipt["token"]["value"].is_null());
    let shown = admin_view(&app, &bought.id).await;
    assert_eq!(shown["purchase"]["amount_refunded"], 1900);
    assert_eq!(
        actors(&app, 0, "purchase.refund_requested").await,
        vec!["admin:tester", "admin:tester"]
    );
    assert_eq!(actors(&app, 0, "purchase.refunded").await, vec!["stripe"]);

    // Once refunded, asking again (a retry whose first answer was lost) succeeds without asking
    // Stripe again.
    let third = json_of(act(&app, &bought.id, "refund").await, 200).await;
    assert_eq!(third["outcome"], "already_refunded");
    assert_eq!(third["status"], "refunded");
    let asked = app
        .stripe
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/v1/refunds")
        .count();
    assert_eq!(asked, 2, "no third call to Stripe");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunding_an_unpaid_purchase_is_a_409_and_never_reaches_stripe() {
    // Arrange
    let app = spawn_app().await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let (pending, ..) = checkout(&app, &solo, None).await;

    // Act
    let response = act(&app, &pending, "refund").await;

    // Assert
    assert_eq!(
        json_of(response, 409).await["error"]["code"],
        "not_refundable"
    );
    assert!(!app.stripe.calls().iter().any(|c| c.path == "/v1/refunds"));
    assert!(
        actors(&app, 0, "purchase.refund_requested")
            .await
            .is_empty()
    );
    app.stop().await;
}
