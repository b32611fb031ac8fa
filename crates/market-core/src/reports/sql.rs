//! The report's one statement, and its rows as PostgreSQL returns them.

use chrono::NaiveDate;
use uuid::Uuid;

use super::model::{Figures, ListingRef, SalesQuery, SalesRow, SellerRef, TierRef};
use crate::{Currency, Error, ListingId, Result, TierId};

/// Binds the query's values to the statement's `$1`–`$4` (the text never carries a value).
pub(super) fn bind<'q, O>(
    statement: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    query: &SalesQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    statement
        .bind(query.range.start())
        .bind(query.range.end())
        .bind(query.seller)
        .bind(query.listing)
}

/// The report's statement. Its text varies only by which filters apply (so a seller's report is
/// planned on `purchase_sales_by_seller`, the platform's on `purchase_sales_by_day`, never on a
/// generic plan that must serve both) and by which columns are grouped.
///
/// The inner query sums each (seller, tier, currency, day) over the range's purchases (the only
/// pass over them); the outer one names those keys and sums them as asked, with each currency's
/// total (`grouping sets`).
pub(super) fn sql(query: &SalesQuery) -> String {
    let seller = if query.seller.is_some() {
        "and p.seller_id = $3"
    } else {
        "and $3::uuid is null"
    };
    let listing = if query.listing.is_some() {
        "and p.tier_id in (select tier_id from tier where listing_id = $4)"
    } else {
        "and $4::uuid is null"
    };
    let by = query.group_by;
    let dimensions = [
        (by.day, "s.day", "s.day", "null::date as day"),
        (
            by.seller,
            "se.seller_id, se.name as seller_name",
            "se.seller_id, se.name",
            "null::uuid as seller_id, null::text as seller_name",
        ),
        (
            by.listing,
            "l.listing_id, l.canonical as listing_canonical, l.title as listing_title",
            "l.listing_id, l.canonical, l.title",
            "null::uuid as listing_id, null::text as listing_canonical, null::text as listing_title",
        ),
        (
            by.tier,
            "t.tier_id, t.slug as tier_slug, t.version as tier_version, t.name as tier_name",
            "t.tier_id, t.slug, t.version, t.name",
            "null::uuid as tier_id, null::text as tier_slug, null::integer as tier_version, \
             null::text as tier_name",
        ),
    ];
    let columns: Vec<&str> = dimensions
        .iter()
        .map(|(on, grouped, _, absent)| if *on { grouped } else { absent })
        .copied()
        .collect();
    let keys: Vec<&str> = dimensions
        .iter()
        .filter(|(on, ..)| *on)
        .map(|(_, _, key, _)| *key)
        .collect();
    // A total row is one whose first grouped column is summed over. With nothing grouped, every
    // row is a currency's total.
    let (total, grouping) = match keys.first() {
        Some(first) => (
            format!("grouping({}) = 1", first.split(',').next().unwrap_or(first)),
            format!(
                "grouping sets ((s.currency, {}), (s.currency))",
                keys.join(", ")
            ),
        ),
        None => ("true".to_owned(), "s.currency".to_owned()),
    };
    format!(
        "with sales as (
             select p.seller_id, p.tier_id, p.currency, (p.paid_at at time zone 'UTC')::date as day,
                    count(*) as sales,
                    sum(p.amount) as gross,
                    sum(p.amount_refunded) as refunds,
                    count(*) filter (where p.amount_refunded > 0) as refund_count,
                    sum(case when p.status in ('disputed', 'dispute_lost')
                             then p.amount - p.amount_refunded else 0 end) as disputes,
                    count(*) filter (where p.status in ('disputed', 'dispute_lost')) as dispute_count,
                    sum(coalesce(p.application_fee_amount
                                     - div(2 * p.application_fee_amount::numeric * p.amount_refunded + p.amount,
                                           2 * p.amount), 0)) as platform_fees
             from purchase p
             where p.paid_at >= $1 and p.paid_at < $2 {seller} {listing}
             group by p.seller_id, p.tier_id, p.currency, day
         )
         select {columns}, s.currency,
                sum(s.sales)::bigint as sales,
                sum(s.gross)::bigint as gross,
                sum(s.refunds)::bigint as refunds,
                sum(s.refund_count)::bigint as refund_count,
                sum(s.disputes)::bigint as disputes,
                sum(s.dispute_count)::bigint as dispute_count,
                sum(s.platform_fees)::bigint as platform_fees,
                sum(s.gross - s.refunds - s.disputes - s.platform_fees)::bigint as net,
                {total} as total
         from sales s
                  join tier t on t.tier_id = s.tier_id
                  join listing l on l.listing_id = t.listing_id
                  join seller se on se.seller_id = s.seller_id
         group by {grouping}
         order by total, day, seller_name, listing_canonical, tier_slug, tier_version, currency",
        columns = columns.join(", "),
    )
}

/// A row as the statement returns it.
#[derive(sqlx::FromRow)]
pub(super) struct Row {
    day: Option<NaiveDate>,
    seller_id: Option<Uuid>,
    seller_name: Option<String>,
    listing_id: Option<ListingId>,
    listing_canonical: Option<String>,
    listing_title: Option<String>,
    tier_id: Option<TierId>,
    tier_slug: Option<String>,
    tier_version: Option<i32>,
    tier_name: Option<String>,
    currency: String,
    sales: i64,
    gross: i64,
    refunds: i64,
    refund_count: i64,
    disputes: i64,
    dispute_count: i64,
    platform_fees: i64,
    net: i64,
    pub(super) total: bool,
}

impl Row {
    pub(super) fn figures(&self) -> Result<Figures> {
        // The column is checked by the schema: a bad one is a database error, not the caller's.
        let currency = Currency::parse(&self.currency)
            .map_err(|e| Error::Database(sqlx::Error::Decode(e.into())))?;
        Ok(Figures {
            currency,
            sales: self.sales,
            gross: self.gross,
            refunds: self.refunds,
            refund_count: self.refund_count,
            disputes: self.disputes,
            dispute_count: self.dispute_count,
            platform_fees: self.platform_fees,
            net: self.net,
        })
    }

    pub(super) fn into_row(self) -> Result<SalesRow> {
        let figures = self.figures()?;
        Ok(SalesRow {
            day: self.day,
            seller: self
                .seller_id
                .zip(self.seller_name)
                .map(|(seller_id, name)| SellerRef { seller_id, name }),
            listing: match (self.listing_id, self.listing_canonical, self.listing_title) {
                (Some(listing_id), Some(canonical), Some(title)) => Some(ListingRef {
                    listing_id,
                    canonical,
                    title,
                }),
                _ => None,
            },
            tier: match (
                self.tier_id,
                self.tier_slug,
                self.tier_version,
                self.tier_name,
            ) {
                (Some(tier_id), Some(slug), Some(version), Some(name)) => Some(TierRef {
                    tier_id,
                    slug,
                    version,
                    name,
                }),
                _ => None,
            },
            figures,
        })
    }
}
