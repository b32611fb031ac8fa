//! Sales reports at the query's level, on purchases made by hand in every state a sale can end in:
//! a refund, a partial refund (its share of the platform's fee given back), a dispute lost and one
//! open (the money withdrawn), a dispute won (nothing lost), an upgrade (a sale of the
//! difference), two currencies, the house and two sellers, and purchases just outside the range
//! or never paid. Each sale is dated by the UTC day it was paid. And the report reads its range
//! through migration 30's indexes, not the whole table.

use chrono::NaiveDate;
use market_core::reports::{self, Figures, GroupBy, Range, SalesQuery, SalesReport};
use market_core::{Currency, ListingId};
use sqlx::PgPool;
use testkit::TestDb;
use uuid::Uuid;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// A seller (`None`: the house) and its listing.
pub(crate) struct Shop {
    pub(crate) seller: Uuid,
    pub(crate) listing: Uuid,
}

pub(crate) async fn shop(pool: &PgPool, name: Option<&str>, canonical: &str) -> Shop {
    let (seller, listing) = sqlx::query_as(
        "with made as (insert into seller (name, contact_email)
                       select $1, lower(regexp_replace($1, '[^A-Za-z]', '', 'g')) || '@example.com'
                       where $1 is not null returning seller_id),
              owner as (select seller_id from made union all select seller_id from seller
                        where house and $1 is null)
         insert into listing (canonical, title, seller_id)
         select $2, $2 || ', the title', seller_id from owner returning seller_id, listing_id",
    )
    .bind(name)
    .bind(canonical)
    .fetch_one(pool)
    .await
    .unwrap();
    Shop { seller, listing }
}

pub(crate) async fn tier(
    pool: &PgPool,
    shop: &Shop,
    slug: &str,
    price: i64,
    currency: &str,
) -> Uuid {
    sqlx::query_scalar(
        "insert into tier (listing_id, slug, name, price_amount, currency, max_installs)
         values ($1, $2, initcap($2), $3, $4, 5) returning tier_id",
    )
    .bind(shop.listing)
    .bind(slug)
    .bind(price)
    .bind(currency)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A purchase as it ends: `status`, paid at `paid_at` (none: never paid), `refunded` of it, the
/// platform's `fee` (a seller's sale), the purchase it upgrades.
pub(crate) struct Sale<'a> {
    tier: Uuid,
    amount: i64,
    currency: &'a str,
    status: &'a str,
    paid_at: Option<&'a str>,
    refunded: i64,
    fee: Option<i64>,
    upgrade_of: Option<Uuid>,
}

impl<'a> Sale<'a> {
    pub(crate) fn paid(tier: Uuid, amount: i64, currency: &'a str, paid_at: &'a str) -> Self {
        Self {
            tier,
            amount,
            currency,
            status: "fulfilled",
            paid_at: Some(paid_at),
            refunded: 0,
            fee: None,
            upgrade_of: None,
        }
    }

    fn fee(self, fee: i64) -> Self {
        Self {
            fee: Some(fee),
            ..self
        }
    }

    fn ended(self, status: &'a str, refunded: i64) -> Self {
        Self {
            status,
            refunded,
            ..self
        }
    }
}

pub(crate) async fn sell(pool: &PgPool, sale: Sale<'_>) -> Uuid {
    sqlx::query_scalar(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash,
                               status, paid_at, fulfilled_at, closed_at, amount_refunded,
                               connect_destination, application_fee_amount, upgrade_of)
         values (gen_random_uuid(), $1, $2, $3, 5, decode(repeat('ab', 32), 'hex'),
                 $4::purchase_status, $5::timestamptz,
                 case when $4 = 'fulfilled' then $5::timestamptz end,
                 case when $4 in ('refunded', 'disputed', 'dispute_lost') then $5::timestamptz end,
                 $6, case when $7::bigint is not null then 'acct_1test' end, $7, $8)
         returning purchase_id",
    )
    .bind(sale.tier)
    .bind(sale.amount)
    .bind(sale.currency)
    .bind(sale.status)
    .bind(sale.paid_at)
    .bind(sale.refunded)
    .bind(sale.fee)
    .bind(sale.upgrade_of)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The house (a usd listing with two tiers and an eur tier), Ada (usd, 10 % fee) and Bob (eur,
/// 10 %), their sales on 10 and 11 November, and some just outside. The sellers' ids.
pub(crate) async fn seeded(pool: &PgPool) -> (Shop, Shop, Shop) {
    let house = shop(pool, None, "house-snip").await;
    let solo = tier(pool, &house, "solo", 1900, "usd").await;
    let agency = tier(pool, &house, "agency", 9900, "usd").await;
    let euro = tier(pool, &house, "euro", 1700, "eur").await;
    let ada = shop(pool, Some("Ada"), "ada-snip").await;
    let ada_solo = tier(pool, &ada, "solo", 1500, "usd").await;
    let bob = shop(pool, Some("Bob, Ltd"), "bob-snip").await;
    let bob_solo = tier(pool, &bob, "solo", 2000, "eur").await;

    let base = sell(pool, Sale::paid(solo, 1900, "usd", "2026-11-10 10:00Z")).await;
    let refunded = Sale::paid(solo, 1900, "usd", "2026-11-10 11:00Z").ended("refunded", 1900);
    sell(pool, refunded).await;
    let partly = Sale::paid(agency, 9900, "usd", "2026-11-11 09:00Z").ended("fulfilled", 2900);
    sell(pool, partly).await;
    // 00:30 in UTC+2 is still the 10th in UTC.
    let lost = Sale::paid(solo, 1900, "usd", "2026-11-11 00:30+02").ended("dispute_lost", 0);
    sell(pool, lost).await;
    let upgrade = Sale {
        upgrade_of: Some(base),
        ..Sale::paid(agency, 8000, "usd", "2026-11-11 10:00Z")
    };
    sell(pool, upgrade).await;
    sell(pool, Sale::paid(euro, 1700, "eur", "2026-11-10 12:00Z")).await;
    // Outside: paid a second before the range, and never paid.
    sell(pool, Sale::paid(solo, 1900, "usd", "2026-11-09 23:59:59Z")).await;
    let pending = Sale {
        paid_at: None,
        ..Sale::paid(solo, 1900, "usd", "").ended("pending", 0)
    };
    sell(pool, pending).await;

    let ada_sale = |at| Sale::paid(ada_solo, 1500, "usd", at).fee(150);
    sell(pool, ada_sale("2026-11-10 08:00Z")).await;
    sell(pool, ada_sale("2026-11-10 09:00Z").ended("refunded", 1500)).await;
    // A third refunded: a third of the fee goes back (150 × 500 / 1500 = 50).
    sell(pool, ada_sale("2026-11-11 08:00Z").ended("fulfilled", 500)).await;
    // A dispute won: the money came back.
    sell(pool, ada_sale("2026-11-11 09:00Z").ended("reinstated", 0)).await;
    // The first instant after the range.
    sell(pool, ada_sale("2026-11-12 00:00Z")).await;

    let bob_sale = |at| Sale::paid(bob_solo, 2000, "eur", at).fee(200);
    // A dispute open: the money is withdrawn, the fee is not given back.
    sell(pool, bob_sale("2026-11-10 14:00Z").ended("disputed", 0)).await;
    sell(pool, bob_sale("2026-11-10 15:00Z")).await;
    (house, ada, bob)
}

pub(crate) fn query(group_by: &str) -> SalesQuery {
    SalesQuery {
        range: Range {
            from: day(10),
            to: day(12),
        },
        seller: None,
        listing: None,
        group_by: GroupBy::parse(group_by).unwrap(),
        after: None,
        limit: None,
    }
}

/// `currency sales gross refunds refund_count disputes dispute_count platform_fees net`.
fn figures(currency: &str, n: [i64; 8]) -> Figures {
    Figures {
        currency: Currency::parse(currency).unwrap(),
        sales: n[0],
        gross: n[1],
        refunds: n[2],
        refund_count: n[3],
        disputes: n[4],
        dispute_count: n[5],
        platform_fees: n[6],
        net: n[7],
    }
}

/// Each row's seller id and figures.
fn by_seller(report: &SalesReport) -> Vec<(Uuid, Figures)> {
    report
        .rows
        .iter()
        .map(|r| (r.seller.as_ref().unwrap().seller_id, r.figures.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sellers_figures_count_refunds_partial_refunds_disputes_fees_and_upgrades_per_currency()
 {
    // Arrange
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let (house, ada, bob) = seeded(db.pool()).await;

    // Act
    let report = reports::sales(db.pool(), &query("seller")).await.unwrap();

    // Assert: rows by seller name (Ada, Bob, House), then currency.
    let mut expected = vec![
        (
            ada.seller,
            figures("usd", [4, 6000, 2000, 2, 0, 0, 400, 3600]),
        ),
        (
            bob.seller,
            figures("eur", [2, 4000, 0, 0, 2000, 1, 400, 1600]),
        ),
        (house.seller, figures("eur", [1, 1700, 0, 0, 0, 0, 0, 1700])),
        (
            house.seller,
            figures("usd", [5, 23600, 4800, 2, 1900, 1, 0, 16900]),
        ),
    ];
    assert_eq!(by_seller(&report), expected);
    assert_eq!(
        report.totals,
        [
            figures("eur", [3, 5700, 0, 0, 2000, 1, 400, 3300]),
            figures("usd", [9, 29600, 6800, 4, 1900, 1, 400, 20500]),
        ]
    );
    let names: Vec<_> = report
        .rows
        .iter()
        .map(|r| r.seller.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["Ada", "Bob, Ltd", "House", "House"]);
    assert!(
        report
            .rows
            .iter()
            .all(|r| r.day.is_none() && r.tier.is_none())
    );

    // One seller's report is that seller's rows, and its totals are the seller's.
    let adas = SalesQuery {
        seller: Some(ada.seller),
        ..query("seller")
    };
    let adas = reports::sales(db.pool(), &adas).await.unwrap();
    expected.truncate(1);
    assert_eq!(by_seller(&adas), expected);
    assert_eq!(adas.totals, [expected[0].1.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_is_dated_by_the_utc_day_it_was_paid_and_rows_key_by_any_dimensions_asked() {
    // Arrange
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let (house, _, _) = seeded(db.pool()).await;

    // Act
    let by_day = reports::sales(db.pool(), &query("day")).await.unwrap();
    let all = reports::sales(db.pool(), &query("day,seller,listing,tier"))
        .await
        .unwrap();
    let house_tiers = SalesQuery {
        listing: Some(ListingId(house.listing)),
        ..query("tier")
    };
    let house_tiers = reports::sales(db.pool(), &house_tiers).await.unwrap();
    let empty = SalesQuery {
        range: Range {
            from: day(12),
            to: day(10),
        },
        ..query("day")
    };
    let empty = reports::sales(db.pool(), &empty).await.unwrap();

    // Assert: the 10th and the 11th in each currency (the dispute paid at 00:30 in UTC+2 is the
    // 10th's).
    let days: Vec<_> = by_day
        .rows
        .iter()
        .map(|r| (r.day.unwrap(), r.figures.clone()))
        .collect();
    assert_eq!(
        days,
        [
            (day(10), figures("eur", [3, 5700, 0, 0, 2000, 1, 400, 3300])),
            (
                day(10),
                figures("usd", [5, 8700, 3400, 2, 1900, 1, 150, 3250])
            ),
            (
                day(11),
                figures("usd", [4, 20900, 3400, 2, 0, 0, 250, 17250])
            ),
        ]
    );
    // Every dimension: the rows sum to the same totals, and each names its tier and listing.
    assert_eq!(all.totals, by_day.totals);
    assert_eq!(all.rows.len(), 6, "{:#?}", all.rows);
    let agency_upgrade = all
        .rows
        .iter()
        .find(|r| r.day == Some(day(11)) && r.tier.as_ref().unwrap().slug == "agency")
        .unwrap();
    assert_eq!(
        agency_upgrade.figures,
        figures("usd", [2, 17900, 2900, 1, 0, 0, 0, 15000])
    );
    let listing = agency_upgrade.listing.as_ref().unwrap();
    assert_eq!(
        (listing.canonical.as_str(), listing.title.as_str()),
        ("house-snip", "house-snip, the title")
    );
    // One listing's tiers: the house's three, nobody else's.
    let tiers: Vec<_> = house_tiers
        .rows
        .iter()
        .map(|r| {
            let tier = r.tier.as_ref().unwrap();
            (tier.slug.as_str(), tier.version, r.figures.sales)
        })
        .collect();
    assert_eq!(tiers, [("agency", 1, 2), ("euro", 1, 1), ("solo", 1, 3)]);
    assert!(house_tiers.rows.iter().all(|r| r.seller.is_none()));
    // A range that ends before it starts holds nothing.
    assert!(empty.rows.is_empty() && empty.totals.is_empty());
}

/// `n` purchases of the three shops' tiers, paid one a day over `days` days (a few a day), and the
/// statistics PostgreSQL plans with.
async fn many(pool: &PgPool, n: i64, days: i64) {
    sqlx::query(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash,
                               status, paid_at, fulfilled_at)
         select gen_random_uuid(), t.tier_id, t.price_amount, t.currency, 5,
                decode(repeat('ab', 32), 'hex'), 'fulfilled', at, at
         from generate_series(1, $1) as i
              cross join lateral (select timestamptz '2024-01-01' + (i % $2) * interval '1 day'
                                         + (i % 24) * interval '1 hour' as at) paid
              join lateral (select * from tier order by tier_id offset (i % 5) limit 1) t on true",
    )
    .bind(n)
    .bind(days)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("vacuum analyze purchase")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_its_range_through_the_sales_indexes_and_never_scans_every_purchase() {
    // Arrange: 6 000 purchases over 600 days.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let (_, ada, _) = seeded(db.pool()).await;
    many(db.pool(), 6000, 600).await;
    let month = Range {
        from: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
    };
    let platform = SalesQuery {
        range: month,
        ..query("day,seller,listing,tier")
    };
    let sellers = SalesQuery {
        seller: Some(ada.seller),
        ..platform.clone()
    };

    // Act
    let platform_plan = reports::explain(db.pool(), &platform).await.unwrap();
    let seller_plan = reports::explain(db.pool(), &sellers).await.unwrap();
    println!("the platform's report:\n{platform_plan}\n\na seller's report:\n{seller_plan}");

    // Assert
    assert!(
        platform_plan.contains("purchase_sales_by_day"),
        "{platform_plan}"
    );
    assert!(
        seller_plan.contains("purchase_sales_by_seller"),
        "{seller_plan}"
    );
    for plan in [&platform_plan, &seller_plan] {
        assert!(!plan.contains("Seq Scan on purchase"), "{plan}");
    }
    // And the figures are still right: a month holds 30 of the 600 days' purchases.
    let report = reports::sales(db.pool(), &platform).await.unwrap();
    let sold: i64 = report.totals.iter().map(|t| t.sales).sum();
    assert_eq!(sold, 300);
}
