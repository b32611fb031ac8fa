//! `market report sales`: an operator reads the sales report from the command line, as the admin
//! API gives it: JSON with each currency's totals, or the rows as CSV; one seller's alone; a bad
//! grouping refused, naming it.

use serde_json::json;

use crate::operator::json;
use crate::{Account, market};

/// A house listing with a tier, two sales paid on 10 November (one refunded) and one the day
/// before: the house's seller id.
async fn two_sales(account: &Account) -> String {
    sqlx::query(
        "with l as (insert into listing (canonical, title) values ('cli-snip', 'Snips, etc.')
                    returning listing_id),
              t as (insert into tier (listing_id, slug, name, price_amount, currency, max_installs)
                    select listing_id, 'solo', 'Solo', 1900, 'usd', 5 from l returning tier_id)
         insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash,
                               status, paid_at, fulfilled_at, closed_at, amount_refunded)
         select gen_random_uuid(), tier_id, 1900, 'usd', 5, decode(repeat('ab', 32), 'hex'),
                s.status::purchase_status, s.at, s.at, s.closed, s.refunded
         from t, (values ('fulfilled', timestamptz '2026-11-10 09:00Z', null::timestamptz, 0),
                         ('refunded', '2026-11-10 10:00Z', '2026-11-10 11:00Z', 1900),
                         ('fulfilled', '2026-11-09 10:00Z', null, 0)) as s(status, at, closed, refunded)",
    )
    .execute(account.db.pool())
    .await
    .unwrap();
    sqlx::query_scalar("select seller_id::text from seller where house")
        .fetch_one(account.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_the_sales_report_as_json_or_csv_from_the_command_line() {
    // Arrange
    let account = Account::new().await;
    let env = account.env();
    let house = two_sales(&account).await;
    let range = ["--from", "2026-11-10", "--to", "2026-11-11"];

    // Act
    let by_seller = json(
        &market(
            &[&["report", "sales", "--group-by", "seller"][..], &range].concat(),
            &env,
        )
        .await,
    );
    let house_only = json(
        &market(
            &[&["report", "sales", "--seller", &house][..], &range].concat(),
            &env,
        )
        .await,
    );
    let nobody = json(
        &market(
            &[
                &[
                    "report",
                    "sales",
                    "--seller",
                    &uuid::Uuid::new_v4().to_string(),
                ][..],
                &range,
            ]
            .concat(),
            &env,
        )
        .await,
    );
    let csv = market(
        &[&["report", "sales", "--format", "csv"][..], &range].concat(),
        &env,
    )
    .await;
    let bad = market(&["report", "sales", "--group-by", "week"], &env).await;

    // Assert: the day's two sales, one refunded; the day before is outside.
    let figures = json!({
        "currency": "usd", "sales": 2, "gross": 3800, "refunds": 1900, "refund_count": 1,
        "disputes": 0, "dispute_count": 0, "platform_fees": 0, "net": 1900,
    });
    assert_eq!(by_seller["totals"], json!([figures]));
    assert_eq!(by_seller["group_by"], json!(["seller"]));
    assert_eq!(by_seller["rows"][0]["seller_id"], house.as_str());
    assert_eq!(by_seller["rows"][0]["net"], 1900);
    assert_eq!(house_only["totals"], by_seller["totals"]);
    assert_eq!(house_only["rows"][0]["day"], "2026-11-10");
    assert_eq!(nobody["rows"], json!([]));
    assert!(csv.success, "{}", csv.stderr);
    assert!(csv.stdout.ends_with("\r\n"), "RFC 4180 line ends");
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.stdout);
    assert!(lines[0].starts_with("day,seller_id,seller_name,listing_id,"));
    assert!(
        lines[1].starts_with(&format!("2026-11-10,{house},House,"))
            && lines[1].contains(",\"Snips, etc.\",")
            && lines[1].ends_with(",usd,2,3800,1900,1,0,0,0,1900"),
        "{}",
        lines[1]
    );
    assert!(
        !bad.success && bad.stderr.contains("group_by"),
        "{}",
        bad.stderr
    );
}
