//! Sales reports over HTTP, against the books: a seeded run through the real flow (checkouts paid
//! at the Stripe simulator, sellers paid through Connect, an upgrade, the operator's refunds,
//! partial refunds made in Stripe's Dashboard, disputes open, won and lost) whose report figures
//! equal a reference computed from the simulator alone: its ledger (charges, refunds, transfers,
//! application fees and their refunds), its disputes and what each Checkout Session sold. The
//! platform's report, each seller's own, one seller's through the admin API, and the CSV form all
//! say the same. Bad parameters are the error envelope's 400.

use std::collections::BTreeMap;
use std::time::Duration;

use sandbox::stripe::{DisputeOutcome, DisputeStatus, SimLedgerEntry};
use sandbox::xano::SimAccount;
use serde_json::{Value, json};

use crate::admin_purchases::{Bought, buy, json_of};
use crate::errors::assert_envelope;
use crate::helpers::{CANONICAL, TestApp, spawn_app};
use crate::seller_work::{ada_selling, get_as, put, set_credential};
use crate::sellers::invite;

/// A row's figures, in the order the API lists them.
const FIGURES: [&str; 8] = [
    "sales",
    "gross",
    "refunds",
    "refund_count",
    "disputes",
    "dispute_count",
    "platform_fees",
    "net",
];

type Books = BTreeMap<String, BTreeMap<&'static str, i64>>;

/// Bob: a seller with his own Xano snippet, selling a tier at €20.00, onboarded at Stripe. His key
/// and the tier's id.
async fn bob_selling(app: &TestApp) -> (String, String) {
    let key = invite(app, "Bob", "bob@example.com").await;
    let xano = app.xano.add_account(SimAccount {
        id: "88".into(),
        name: "Bob".into(),
        email: "bob@example.test".into(),
    });
    assert!(app.xano.add_snippet_for(&xano, "bob-snip_02", "Bob's"));
    set_credential(app, &key, &xano).await;
    let path = "/v1/seller/listings/bob-snip_02";
    let listing = json!({ "title": "Bob's snippet", "description": "" });
    json_of(put(app, &key, path, &listing).await, 200).await;
    let tier = json!({
        "name": "Solo", "price": { "amount": 2000, "currency": "eur" }, "max_installs": 3,
        "pool_low_water": 1, "pool_target": 2,
    });
    let saved = json_of(
        put(app, &key, &format!("{path}/tiers/solo"), &tier).await,
        200,
    )
    .await;
    crate::connect::onboard(app, &key).await;
    let tier = saved["listing"]["tiers"][0]["id"].as_str().unwrap();
    (key, tier.to_owned())
}

async fn payment_intent(app: &TestApp, bought: &Bought) -> String {
    let path = format!("/v1/admin/purchases/{}", bought.id);
    let admin = json_of(app.admin_get(&path).await, 200).await;
    admin["purchase"]["payment_intent_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sales by the house (one upgraded, one refunded by the operator, one partly in Stripe's
/// Dashboard, one lost to a chargeback), by Ada (usd: one refunded by the operator, one partly in
/// the Dashboard with her transfer and the fee in proportion, one under a chargeback still open)
/// and by Bob (eur: one partly refunded like Ada's, one whose chargeback he won, one untouched).
/// The disputes' ids.
async fn seeded_run(app: &TestApp, ada_tier: &str, bob_tier: &str) -> Vec<String> {
    let solo = app.tier_id(CANONICAL, "solo").await;
    let billing = app.tier_id("stripe-billing_02", "solo").await;
    let mut house = Vec::new();
    for tier in [&solo, &solo, &solo, &billing] {
        house.push(buy(app, tier, None).await);
    }
    let (mut ada, mut bob) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ada.push(buy(app, ada_tier, None).await);
        bob.push(buy(app, bob_tier, None).await);
    }
    let agency = json!({ "tier_id": app.tier_id(CANONICAL, "agency").await });
    let upgrade = app
        .client
        .post(app.url(&format!("/v1/purchases/{}/upgrade", house[0].id)))
        .bearer_auth(&house[0].receipt_key)
        .json(&agency)
        .send()
        .await
        .unwrap();
    let upgrade = json_of(upgrade, 201).await;
    let session = TestApp::session_of(upgrade["checkout_url"].as_str().unwrap());
    app.stripe.pay(&session).unwrap();
    for refunded in [&house[1], &ada[0]] {
        let path = format!("/v1/admin/purchases/{}/refund", refunded.id);
        json_of(app.admin_post(&path).await, 202).await;
    }
    let stripe = &app.stripe;
    let ada_partly = payment_intent(app, &ada[1]).await;
    stripe
        .refund_reversing(&ada_partly, Some(500), true, true)
        .unwrap();
    let bob_partly = payment_intent(app, &bob[0]).await;
    stripe
        .refund_reversing(&bob_partly, Some(700), true, true)
        .unwrap();
    let house_partly = payment_intent(app, &house[2]).await;
    stripe.refund(&house_partly, Some(400)).unwrap();
    let open = stripe.dispute(&payment_intent(app, &ada[2]).await).unwrap();
    let won = stripe.dispute(&payment_intent(app, &bob[1]).await).unwrap();
    stripe.close_dispute(&won.id, DisputeOutcome::Won).unwrap();
    let lost = stripe
        .dispute(&payment_intent(app, &house[3]).await)
        .unwrap();
    stripe
        .close_dispute(&lost.id, DisputeOutcome::Lost)
        .unwrap();
    vec![open.id, won.id, lost.id]
}

/// The simulator's books, summed the way a report sums them, by `key` (charge → key). A charge is a
/// sale: `gross` its amount, `refunds` its refunds, `disputes` what a chargeback (of `disputes`,
/// as the simulator says they stand now) still open or lost withdrew, `platform_fees` the
/// application fee less its refunds.
fn reference(app: &TestApp, disputes: &[String], key: impl Fn(&SimLedgerEntry) -> String) -> Books {
    let disputes: BTreeMap<String, (i64, DisputeStatus)> = disputes
        .iter()
        .map(|id| app.stripe.dispute_by_id(id).unwrap())
        .map(|d| (d.charge, (d.amount, d.status)))
        .collect();
    let mut books = Books::new();
    for entry in app.stripe.ledger() {
        let withdrawn = match disputes.get(&entry.charge) {
            Some((amount, DisputeStatus::NeedsResponse | DisputeStatus::Lost)) => *amount,
            _ => 0,
        };
        let fee = entry
            .application_fee
            .as_ref()
            .map_or(0, |fee| fee.amount - fee.amount_refunded);
        let net = entry.amount - entry.amount_refunded - withdrawn - fee;
        let sale = [
            1,
            entry.amount,
            entry.amount_refunded,
            i64::from(entry.amount_refunded > 0),
            withdrawn,
            i64::from(withdrawn > 0),
            fee,
            net,
        ];
        let row = books.entry(key(&entry)).or_default();
        for (name, value) in FIGURES.into_iter().zip(sale) {
            *row.entry(name).or_default() += value;
        }
    }
    books
}

/// What Stripe moved to a connected account: its transfers less their reversals, less the
/// application fees (after their refunds) the platform kept.
fn moved_to(app: &TestApp, account: &str) -> i64 {
    let ledger = app.stripe.ledger();
    let theirs = ledger
        .iter()
        .filter(|e| e.destination.as_deref() == Some(account));
    theirs
        .map(|e| {
            let (transfer, fee) = (e.transfer.as_ref().unwrap(), e.application_fee.as_ref());
            let kept = fee.map_or(0, |f| f.amount - f.amount_refunded);
            transfer.amount - transfer.amount_reversed - kept
        })
        .sum()
}

/// A report's rows by `key` (row → key), with their figures (numbers, or numbers as text).
fn rows_by(rows: &[Value], key: impl Fn(&Value) -> String) -> Books {
    let number = |v: &Value| v.as_i64().or_else(|| v.as_str()?.parse().ok()).unwrap();
    rows.iter()
        .map(|row| (key(row), FIGURES.map(|f| (f, number(&row[f]))).into()))
        .collect()
}

fn text(row: &Value, field: &str) -> String {
    row[field].as_str().unwrap_or_default().to_owned()
}

/// `<seller id> <currency>`.
fn seller_key(row: &Value) -> String {
    format!("{} {}", text(row, "seller_id"), text(row, "currency"))
}

async fn report(app: &TestApp, query: &str) -> Value {
    let path = format!("/v1/admin/reports/sales{query}");
    json_of(app.admin_get(&path).await, 200).await
}

fn rows(report: &Value) -> &[Value] {
    report["rows"].as_array().unwrap()
}

/// A CSV body's records as JSON objects keyed by the header's names (RFC 4180: quoted fields,
/// doubled quotes, CRLF line ends).
fn parse_csv(body: &str) -> Vec<Value> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, body.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => record.push(std::mem::take(&mut field)),
            '\n' if !quoted => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            c => field.push(c),
        }
    }
    let header = records.remove(0);
    let named = |r: Vec<String>| header.iter().cloned().zip(r.into_iter().map(Value::from));
    records.into_iter().map(|r| named(r).collect()).collect()
}

/// The CSV form (asked by parameter, or by `Accept`) holds the JSON rows' figures; a seller's
/// (`api_key`) only their own.
async fn csv_holds_the_json_figures(app: &TestApp, api_key: &str) {
    let every = report(app, "").await;
    let csv = app.admin_get("/v1/admin/reports/sales?format=csv").await;
    let content_type = csv.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let records = parse_csv(&csv.text().await.unwrap());
    let key = |row: &Value| {
        let (tier, day) = (text(row, "tier_id"), text(row, "day"));
        format!("{} {tier} {day}", seller_key(row))
    };
    assert_eq!(records.len(), rows(&every).len());
    assert_eq!(rows_by(&records, key), rows_by(rows(&every), key));
    let accepted = app
        .client
        .get(app.url("/v1/seller/reports/sales"))
        .bearer_auth(api_key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let own = parse_csv(&accepted.text().await.unwrap());
    let seller = text(&get_as(app, "/v1/seller/me", api_key).await, "seller_id");
    assert!(!own.is_empty() && own.iter().all(|r| r["seller_id"] == seller.as_str()));
}

/// The JSON form read with `limit=1`, following `next_cursor`, is the whole report's rows in its
/// order, each page with the whole report's totals.
async fn pages_put_end_to_end_are_the_whole_report(app: &TestApp) {
    let whole = report(app, "").await;
    assert_eq!(whole["next_cursor"], Value::Null);
    let mut paged = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = report(app, &query).await;
        assert_eq!(page["totals"], whole["totals"]);
        assert!(rows(&page).len() <= 1);
        paged.extend(rows(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(paged.len() <= rows(&whole).len(), "pages never end");
    }
    assert_eq!(paged, rows(&whole));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_figures_equal_a_reference_computed_from_the_stripe_simulators_ledger() {
    // Arrange: the house, Ada (usd) and Bob (eur), onboarded; who owns which Stripe account.
    let app = spawn_app().await;
    let (ada, _, ada_tier) = ada_selling(&app).await;
    let (bob, bob_tier) = bob_selling(&app).await;
    let mut owners = BTreeMap::new();
    for key in [&ada, &bob] {
        let me = get_as(&app, "/v1/seller/me", key).await;
        owners.insert(text(&me["stripe"], "account_id"), text(&me, "seller_id"));
    }
    let sellers = json_of(app.admin_get("/v1/admin/sellers").await, 200).await;
    let sellers = sellers.as_array().unwrap();
    let house = text(
        sellers.iter().find(|s| s["house"] == true).unwrap(),
        "seller_id",
    );

    // Act
    let disputes = seeded_run(&app, &ada_tier, &bob_tier).await;

    // The reference: the simulator's books by seller (the charge's destination account, or the
    // house's for a charge without one) and currency, and by what each Checkout Session sold (an
    // upgrade is sold as "<listing> — <tier> (upgrade)": a sale of that tier).
    let by_seller = reference(&app, &disputes, |entry| {
        let seller = entry.destination.as_ref().map_or(&house, |a| &owners[a]);
        format!("{seller} {}", entry.currency)
    });
    let sessions = app.stripe.sessions();
    let products: BTreeMap<_, _> = sessions
        .iter()
        .filter_map(|s| Some((s.payment_intent.clone()?, s.product_names.first()?)))
        .collect();
    let by_product = reference(&app, &disputes, |entry| {
        let product = products[&entry.payment_intent];
        let tier = product.strip_suffix(" (upgrade)").unwrap_or(product);
        format!("{tier} {}", entry.currency)
    });
    assert_eq!(by_seller.len(), 3, "{by_seller:#?}");

    // Assert: the platform's report, once the service has heard every event.
    let platform = app
        .eventually(
            "the report to match the books",
            Duration::from_secs(30),
            || async {
                let report = report(&app, "?group_by=seller").await;
                (rows_by(rows(&report), seller_key) == by_seller).then_some(report)
            },
        )
        .await;
    assert_eq!(rows_by(rows(&platform), seller_key), by_seller);
    let by_listing = report(&app, "?group_by=listing,tier").await;
    let named = |row: &Value| {
        let listing = text(row, "listing_canonical");
        format!(
            "{listing} — {} {}",
            text(row, "tier_name"),
            text(row, "currency")
        )
    };
    assert_eq!(rows_by(rows(&by_listing), named), by_product);
    // A connected seller's net is what Stripe moved to their account, but for a chargeback,
    // which Stripe took from the platform's.
    for (account, seller) in &owners {
        let (_, row) = by_seller
            .iter()
            .find(|(k, _)| k.starts_with(seller))
            .unwrap();
        assert_eq!(
            row["net"] + row["disputes"],
            moved_to(&app, account),
            "{seller}"
        );
    }

    // Each seller's own report is their row of the books, and the admin's for one seller too.
    for key in [&ada, &bob] {
        let own = get_as(&app, "/v1/seller/reports/sales?group_by=seller", key).await;
        let mine = rows_by(rows(&own), seller_key);
        let (seller_currency, figures) = mine.iter().next().unwrap();
        assert_eq!((mine.len(), figures), (1, &by_seller[seller_currency]));
        let seller = seller_currency.split(' ').next().unwrap();
        let one = report(&app, &format!("?group_by=seller&seller_id={seller}")).await;
        assert_eq!(rows_by(rows(&one), seller_key), mine);
        assert_eq!(own["totals"], one["totals"]);
    }

    csv_holds_the_json_figures(&app, &ada).await;
    pages_put_end_to_end_are_the_whole_report(&app).await;
    // A seller's key does not open the platform's report.
    let refused = app
        .client
        .get(app.url("/v1/admin/reports/sales"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_envelope(refused, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_asked_with_a_bad_parameter_is_a_400_in_the_error_envelope() {
    // Arrange
    let app = spawn_app().await;
    let ada = invite(&app, "Ada", "ada@example.com").await;
    let bad = [
        "group_by=week",
        "group_by=",
        "from=yesterday",
        "to=2026-02-30",
        "seller_id=ada",
        "format=xlsx",
        "page=2",
        "limit=0",
        "limit=10001",
        "limit=ten",
        "format=csv&limit=5",
        "format=csv&cursor=e30",
    ];

    // A cursor this API did not hand out, or handed out for a report grouped otherwise.
    let day_cursor = "eyJkYXkiOiIyMDI2LTExLTEwIiwiY3VycmVuY3kiOiJ1c2QifQ"; // {day, currency}
    let other_grouping = format!("group_by=seller&cursor={day_cursor}");
    let foreign_cursors = ["cursor=e30", "cursor=%21", other_grouping.as_str()];
    let refusals = bad.iter().map(|query| (*query, "invalid_request")).chain(
        foreign_cursors
            .iter()
            .map(|query| (*query, "invalid_cursor")),
    );

    for (query, code) in refusals {
        // Act
        let response = app
            .admin_get(&format!("/v1/admin/reports/sales?{query}"))
            .await;
        // Assert
        assert_envelope(response, 400, code).await;
    }
    let fits = app
        .admin_get(&format!(
            "/v1/admin/reports/sales?group_by=day&cursor={day_cursor}"
        ))
        .await;
    assert_eq!(fits.status(), 200);
    // A seller names no seller: its report is its own.
    let other = uuid::Uuid::new_v4();
    let theirs = app
        .client
        .get(app.url(&format!("/v1/seller/reports/sales?seller_id={other}")))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_envelope(theirs, 400, "invalid_request").await;
    // An empty range (`to` before `from`) is an empty report, not an error.
    let empty = report(&app, "?from=2026-12-01&to=2026-11-01").await;
    assert_eq!((&empty["rows"], &empty["totals"]), (&json!([]), &json!([])));
    app.stop().await;
}
