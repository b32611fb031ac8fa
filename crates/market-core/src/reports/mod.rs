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
//! ids so equal names still have an order); every page has the whole report's totals. Each page
//! sums the range's sales again: the pass over the purchases is the report's cost, the page's
//! size only what is sent.

mod model;
mod sql;

pub use model::{
    Figures, GroupBy, ListingRef, Range, RowKey, SalesQuery, SalesReport, SalesRow, SellerRef,
    TierRef,
};

use sqlx::PgPool;

use crate::Result;
use sql::{Row, bind, sql};

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
