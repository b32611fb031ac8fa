//! A sales report read page by page: the pages, put end to end, are the whole report in its
//! order, whatever the page size and grouping; every page carries the whole report's totals; the
//! last page says no more follow. Two sellers of one name, and tiers of one slug in several
//! listings, still have an order (ids after names), so no row is skipped or repeated at a page's
//! edge. A cursor of a report grouped otherwise is refused.

use market_core::reports::{self, SalesQuery, SalesReport};
use testkit::TestDb;

use crate::reports::{Sale, query, seeded, sell, shop, tier};

/// Reads `asked` in pages of `limit` rows; returns them and checks each page's totals and cursor.
async fn paged(pool: &sqlx::PgPool, asked: &SalesQuery, limit: u32) -> (Vec<SalesReport>, usize) {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = reports::sales(
            pool,
            &SalesQuery {
                after: after.clone(),
                limit: Some(limit),
                ..asked.clone()
            },
        )
        .await
        .unwrap();
        assert!(page.rows.len() <= limit as usize);
        after.clone_from(&page.next);
        pages.push(page);
        if after.is_none() {
            break;
        }
        assert!(pages.len() < 100, "pages never end");
    }
    let rows = pages.iter().map(|p| p.rows.len()).sum();
    (pages, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_read_page_by_page_is_the_whole_report_in_order_with_its_totals_on_every_page() {
    // Arrange: the usual sales, and a second seller named Ada whose tier is "solo" too.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    seeded(db.pool()).await;
    let other_ada = shop(db.pool(), Some("Ada"), "ada-two").await;
    let other_solo = tier(db.pool(), &other_ada, "solo", 1500, "usd").await;
    for at in ["2026-11-10 09:00Z", "2026-11-11 09:00Z"] {
        sell(db.pool(), Sale::paid(other_solo, 1500, "usd", at)).await;
    }

    for group_by in [
        "day,seller,listing,tier",
        "seller",
        "tier",
        "day",
        "listing,tier",
    ] {
        let asked = query(group_by);
        let whole = reports::sales(db.pool(), &asked).await.unwrap();
        assert!(whole.next.is_none());
        for limit in [1, 2, 3, 1000] {
            // Act
            let (pages, count) = paged(db.pool(), &asked, limit).await;

            // Assert
            let rows: Vec<_> = pages.iter().flat_map(|p| p.rows.clone()).collect();
            assert_eq!(rows, whole.rows, "{group_by}, pages of {limit}");
            assert_eq!(count, whole.rows.len());
            for page in &pages {
                assert_eq!(page.totals, whole.totals, "{group_by}, pages of {limit}");
            }
            let full_pages = whole.rows.len().div_ceil(limit as usize).max(1);
            assert!(
                pages.len() == full_pages || pages.len() == full_pages + 1,
                "{group_by}: {} pages of {limit} for {} rows",
                pages.len(),
                whole.rows.len()
            );
        }
    }
    // The two Adas are two rows of the report by seller, in the order of their ids.
    let by_seller = reports::sales(db.pool(), &query("seller")).await.unwrap();
    let adas: Vec<_> = by_seller
        .rows
        .iter()
        .filter_map(|r| r.seller.as_ref())
        .filter(|s| s.name == "Ada")
        .map(|s| s.seller_id)
        .collect();
    assert_eq!(adas.len(), 2);
    assert!(adas[0] < adas[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_a_report_grouped_otherwise_is_refused() {
    // Arrange
    let db = TestDb::new(&market_core::MIGRATOR).await;
    seeded(db.pool()).await;
    let first = reports::sales(
        db.pool(),
        &SalesQuery {
            limit: Some(1),
            ..query("day,seller")
        },
    )
    .await
    .unwrap();
    let cursor = first.next.expect("more than one row");

    // Act
    let otherwise = reports::sales(
        db.pool(),
        &SalesQuery {
            after: Some(cursor),
            limit: Some(1),
            ..query("day")
        },
    )
    .await;

    // Assert
    let error = otherwise.unwrap_err();
    assert!(
        matches!(error, market_core::Error::Invalid { field, .. } if field == "cursor"),
        "{error:?}"
    );
}
