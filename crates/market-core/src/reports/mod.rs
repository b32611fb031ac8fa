//! Sales reports: what was sold over a range of days, and what became of the money, by day,
//! seller, listing and tier, computed by PostgreSQL in one `group by` (migration 30's indexes read
//! only the range's sales).
//!
//! **A sale** is a purchase that was paid (`paid_at` set): bought outright or an upgrade (charged
//! the difference, a sale of its own). Pending, expired and failed checkouts are none, nor is a
//! payment refunded or lost before this service saw it paid (its "tombstone": the money came and
//! went at once, net nothing).
//!
//! **Dating.** Every figure of a sale is dated by the day (UTC) it was paid, and a row shows what
//! has happened to those sales *so far*: a refund or a dispute changes the row of the day of the
//! sale, not the day it happened. That is how Stripe's Dashboard lists payments (each charge once,
//! on its date, with its amount refunded and its dispute), so a seller reconciles a row with the
//! charges of that day, and a row's net is final once its sales can no longer be refunded or
//! disputed. (Dating each money movement by its own day would be Stripe's balance report; the
//! schema records when a purchase closed but not when each partial refund landed.) So a past
//! report can change: it is a view of the sales, not a ledger of movements.
//!
//! **Figures**, each in the minor unit of the row's currency (currencies are never added up: the
//! currency is part of every row's key):
//! - `sales`: how many; `gross`: what the buyers paid;
//! - `refunds`: what was refunded of them (`refund_count`: the sales with any refund);
//! - `disputes`: what is withdrawn by chargebacks that are open or lost (status `disputed` or
//!   `dispute_lost`: the amount left after refunds, as Stripe withdraws it); a dispute won
//!   (`reinstated`) gave the money back and counts for nothing; an inquiry withdraws nothing;
//! - `platform_fees`: the platform's application fees on sellers' sales, less what was refunded of
//!   them. A refund gives the seller back the fee's share of it (Stripe's `refund_application_fee`,
//!   in proportion, rounded half up): the operator's refunds are whole and give all of it back,
//!   and so does a whole refund made in Stripe's Dashboard, through `connect::take_back`. (A
//!   partial refund made in the Dashboard is counted as if it refunded its share of the fee; one
//!   that did not differs by that share. Several partial refunds of one sale are rounded once, on
//!   their sum, not each.) A dispute refunds no fee. The house pays none;
//! - `net`: `gross - refunds - disputes - platform_fees`, what the sales earned the seller once
//!   refunds, chargebacks and the platform's share are out. Stripe's own fees (processing, a
//!   dispute's fee) are the platform's and not in these figures. Where the platform bore a loss at
//!   Stripe instead of the seller, a connected seller's balance there is higher than `net` by it:
//!   a chargeback (Stripe debits the platform for a destination charge's dispute) and a partial
//!   refund made in the Dashboard without reversing the transfer (see `docs/MARKETPLACE.md`).
//!
//! Rows are grouped by any of day, seller, listing and tier ([`GroupBy`]); every report has the
//! totals of each currency as well, from the same statement.
//!
//! **Pages.** A platform's month is tens of thousands of rows (93 650 on 1 000 000 purchases), so
//! a query may ask for `limit` rows after a [`RowKey`] (keyset, in the rows' order, names before
//! ids so equal names still have an order); every page has the whole report's totals. The
//! platform's report grouped by day is read in windows of days from the page's first
//! (`by_days`): a page passes over its own days' sales, and the totals over the range's with no
//! grouping. Otherwise every page groups the range's sales again: that pass is the report's cost,
//! the page's size only what is sent.

mod model;
mod sql;

pub use model::{
    Figures, GroupBy, ListingRef, Range, RowKey, SalesQuery, SalesReport, SalesRow, SellerRef,
    TierRef,
};

use chrono::Days;
use sqlx::{PgConnection, PgPool};

use crate::Result;
use sql::{Row, bind, bind_range, sql, totals_sql};

/// The report `query` asks for: the rows of its page and every currency's totals.
pub async fn sales(pool: &PgPool, query: &SalesQuery) -> Result<SalesReport> {
    if let Some(after) = &query.after
        && !after.fits(query.group_by)
    {
        return Err(crate::Error::invalid(
            "cursor",
            "it is from a report grouped otherwise",
        ));
    }
    // Windows of days pay off on the platform's report (a month of every seller's sales); a
    // seller's or a listing's month is small, and its statements over windows cost PostgreSQL
    // twice the one statement's CPU (15.8-17.4 ms against 8.2-9.5 at 1 000 000 purchases).
    let platform = query.seller.is_none() && query.listing.is_none();
    let (mut rows, totals) = match query.limit {
        Some(limit) if query.group_by.day && platform => {
            by_days(&mut *pool.acquire().await?, query, limit).await?
        }
        _ => whole(pool, query).await?,
    };
    // The statement returns one row more than the page holds when another page follows.
    let more = query
        .limit
        .is_some_and(|limit| rows.len() > usize::try_from(limit).unwrap_or(usize::MAX));
    if more {
        rows.pop();
    }
    let next = if more {
        rows.last().map(SalesRow::key)
    } else {
        None
    };
    Ok(SalesReport {
        range: query.range,
        group_by: query.group_by,
        rows,
        totals,
        next,
    })
}

/// The page and the totals in one statement: one pass over the range's sales, whatever the page.
async fn whole(pool: &PgPool, query: &SalesQuery) -> Result<(Vec<SalesRow>, Vec<Figures>)> {
    let found = bind(sqlx::query_as::<_, Row>(&sql(query)), query)
        .fetch_all(pool)
        .await?;
    let mut rows = Vec::new();
    let mut totals = Vec::new();
    for row in found {
        if row.total {
            totals.push(row.figures()?);
        } else {
            rows.push(row.into_row()?);
        }
    }
    Ok((rows, totals))
}

/// A page of a report grouped by day, read in windows of days: rows are ordered by day first, so a
/// page is the rows of its first days. From the cursor's day, a window of 1 day, then longer ones
/// until the page (and the one row more that says another follows) is full or the range ends;
/// each window's statement passes over its own days' sales only. The totals are one pass over the
/// range with no grouping ([`totals_sql`]). A platform's first page of a month read one day of
/// 30 where it grouped all 30 (docs/PERFORMANCE.md, "sixth session"). The statements share no
/// snapshot (behind a pooler in transaction mode a connection's transaction is already open, too
/// late to ask for `repeatable read`): a sale paid meanwhile can be in the totals and not yet in
/// the rows, as it can between two pages.
async fn by_days(
    conn: &mut PgConnection,
    query: &SalesQuery,
    limit: u32,
) -> Result<(Vec<SalesRow>, Vec<Figures>)> {
    let wanted = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut after = query.after.clone();
    let mut from = after
        .as_ref()
        .and_then(|key| key.day)
        .map_or(query.range.from, |day| day.max(query.range.from));
    let mut days = 1;
    let mut rows = Vec::new();
    while rows.len() < wanted && from < query.range.to {
        let to = from
            .checked_add_days(Days::new(days))
            .map_or(query.range.to, |to| to.min(query.range.to));
        let left = wanted - rows.len();
        let window = SalesQuery {
            range: Range { from, to },
            // Only the first window holds days the cursor's key can be in.
            after: after.take(),
            // The statement reads one row more than its limit.
            limit: Some(u32::try_from(left - 1).unwrap_or(u32::MAX)),
            ..query.clone()
        };
        let found = bind(sqlx::query_as::<_, Row>(&sql(&window)), &window)
            .fetch_all(&mut *conn)
            .await?;
        let before = rows.len();
        for row in found.into_iter().filter(|row| !row.total) {
            rows.push(row.into_row()?);
        }
        // The next window: twice as long, or as long as this one's rows a day say the rest of
        // the page needs (and a quarter more), whichever is longer: a quiet month is read in
        // two windows, not in five.
        let got = u64::try_from(rows.len() - before).unwrap_or(u64::MAX);
        let still = u64::try_from(wanted.saturating_sub(rows.len())).unwrap_or(u64::MAX);
        let spanned = u64::try_from((to - from).num_days()).unwrap_or(1);
        let needed = spanned
            .saturating_mul(still)
            .saturating_mul(5)
            .checked_div(got.saturating_mul(4))
            .unwrap_or(0);
        days = days.saturating_mul(2).max(needed.saturating_add(1));
        from = to;
    }
    let totals = bind_range(sqlx::query_as::<_, Row>(&totals_sql(query)), query)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(Row::figures)
        .collect::<Result<Vec<_>>>()?;
    Ok((rows, totals))
}

/// The plan PostgreSQL chooses for `query`'s report (`explain`, not run): for an operator checking
/// that a report reads its range through migration 30's indexes, and for the test that does.
pub async fn explain(pool: &PgPool, query: &SalesQuery) -> Result<String> {
    let explain = format!("explain {}", sql(query));
    let lines = bind(sqlx::query_as::<_, (String,)>(&explain), query)
        .fetch_all(pool)
        .await?;
    let lines: Vec<String> = lines.into_iter().map(|(line,)| line).collect();
    Ok(lines.join("\n"))
}
