//! The report's one statement, and its rows as PostgreSQL returns them.

use chrono::NaiveDate;
use uuid::Uuid;

use super::model::{
    Figures, GroupBy, ListingRef, RowKey, SalesQuery, SalesRow, SellerRef, TierRef,
};
use crate::{Currency, Error, ListingId, Result, TierId};

/// Binds the query's values to the statement's `$1`–`$6` (the text never carries a value): the
/// range, the filters, the key the page starts after (as JSON, one parameter whatever the
/// grouping) and the page's size plus one (the extra row says whether another page follows).
pub(super) fn bind<'q, O>(
    statement: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    query: &SalesQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    bind_range(statement, query)
        .bind(query.after.as_ref().map(key_json))
        .bind(query.limit.map(|limit| i64::from(limit) + 1))
}

fn key_json(key: &RowKey) -> serde_json::Value {
    serde_json::json!({
        "day": key.day,
        "seller_name": key.seller_name,
        "seller_id": key.seller_id,
        "listing_canonical": key.listing_canonical,
        "listing_id": key.listing_id,
        "tier_slug": key.tier_slug,
        "tier_version": key.tier_version,
        "tier_id": key.tier_id,
        "currency": key.currency,
    })
}

/// One dimension of the statement: the columns a row shows, the columns of its key in the
/// report's order (each with its value read from the cursor, `$5`), and the columns shown when
/// the report is not grouped by it.
struct Dimension {
    on: bool,
    shown: &'static str,
    key: &'static [(&'static str, &'static str)],
    absent: &'static str,
}

/// The four dimensions, each on where the report is grouped by it.
fn dimensions(by: GroupBy) -> [Dimension; 4] {
    [
        Dimension {
            on: by.day,
            shown: "k.day",
            key: &[("k.day", "($5->>'day')::date")],
            absent: "null::date as day",
        },
        Dimension {
            on: by.seller,
            shown: "k.seller_id, k.seller_name",
            key: &[
                ("k.seller_name", "$5->>'seller_name'"),
                ("k.seller_id", "($5->>'seller_id')::uuid"),
            ],
            absent: "null::uuid as seller_id, null::text as seller_name",
        },
        Dimension {
            on: by.listing,
            shown: "k.listing_id, k.listing_canonical, k.listing_title",
            key: &[
                ("k.listing_canonical", "$5->>'listing_canonical'"),
                ("k.listing_id", "($5->>'listing_id')::uuid"),
            ],
            absent: "null::uuid as listing_id, null::text as listing_canonical, \
                     null::text as listing_title",
        },
        Dimension {
            on: by.tier,
            shown: "k.tier_id, k.tier_slug, k.tier_version, k.tier_name",
            key: &[
                ("k.tier_slug", "$5->>'tier_slug'"),
                ("k.tier_version", "($5->>'tier_version')::integer"),
                ("k.tier_id", "($5->>'tier_id')::uuid"),
            ],
            absent: "null::uuid as tier_id, null::text as tier_slug, \
                     null::integer as tier_version, null::text as tier_name",
        },
    ]
}

/// The figures of a group of sales `p`, summed from each sale's.
const SUMS: &str = "count(*) as sales,
                    sum(p.amount) as gross,
                    sum(p.amount_refunded) as refunds,
                    count(*) filter (where p.amount_refunded > 0) as refund_count,
                    sum(case when p.status in ('disputed', 'dispute_lost')
                             then p.amount - p.amount_refunded else 0 end) as disputes,
                    count(*) filter (where p.status in ('disputed', 'dispute_lost')) as dispute_count,
                    sum(coalesce(p.application_fee_amount
                                     - div(2 * p.application_fee_amount::numeric * p.amount_refunded + p.amount,
                                           2 * p.amount), 0)) as platform_fees";

/// The filters' conditions on the sales `p`: `$3` the seller, `$4` the listing (each a no-op
/// when not asked for, so the text says which apply and PostgreSQL plans each case apart).
fn filters(query: &SalesQuery) -> (&'static str, &'static str) {
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
    (seller, listing)
}

/// Each currency's totals over `query`'s range and filters, in one pass over the sales and no
/// grouping by key: the totals of a report read in windows of days ([`super::sales`]). The same
/// [`SUMS`] as [`sql`]'s, so they add up to its rows. Binds `$1`–`$4` ([`bind_range`]).
pub(super) fn totals_sql(query: &SalesQuery) -> String {
    let (seller, listing) = filters(query);
    let absent: Vec<&str> = dimensions(query.group_by)
        .iter()
        .map(|d| d.absent)
        .collect();
    format!(
        "select {absent}, k.currency, {KEYED_FIGURES}, true as total
         from (select p.currency, {SUMS}
               from purchase p
               where p.paid_at >= $1 and p.paid_at < $2 {seller} {listing}
               group by p.currency) k
         order by k.currency",
        absent = absent.join(", "),
    )
}

/// Binds [`totals_sql`]'s `$1`–`$4`: the range and the filters.
pub(super) fn bind_range<'q, O>(
    statement: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    query: &SalesQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    statement
        .bind(query.range.start())
        .bind(query.range.end())
        .bind(query.seller)
        .bind(query.listing)
}

/// A row's figures, summed from `keyed`.
const FIGURES: &str = "sum(k.sales)::bigint as sales,
            sum(k.gross)::bigint as gross,
            sum(k.refunds)::bigint as refunds,
            sum(k.refund_count)::bigint as refund_count,
            sum(k.disputes)::bigint as disputes,
            sum(k.dispute_count)::bigint as dispute_count,
            sum(k.platform_fees)::bigint as platform_fees,
            sum(k.gross - k.refunds - k.disputes - k.platform_fees)::bigint as net";

/// A row's figures as `keyed` has them: grouped by every dimension, a row is one key of `keyed`
/// (a tier belongs to one listing), so there is nothing to sum again.
const KEYED_FIGURES: &str = "k.sales::bigint as sales,
            k.gross::bigint as gross,
            k.refunds::bigint as refunds,
            k.refund_count::bigint as refund_count,
            k.disputes::bigint as disputes,
            k.dispute_count::bigint as dispute_count,
            k.platform_fees::bigint as platform_fees,
            (k.gross - k.refunds - k.disputes - k.platform_fees)::bigint as net";

/// The report's statement. Its text varies only by which filters apply (so a seller's report is
/// planned on `purchase_sales_by_seller`, the platform's on `purchase_sales_by_day`, never on a
/// generic plan that must serve both) and by which columns are grouped.
///
/// `sales` sums each (seller, tier, currency, day) over the range's purchases (the only pass over
/// them); `keyed` names those keys. The rows are `keyed` summed as asked, from the key after `$5`
/// in the report's order, at most `$6` of them; each currency's total is summed from all of
/// `keyed`, whatever the page (`keyed` is read twice, so PostgreSQL computes it once).
pub(super) fn sql(query: &SalesQuery) -> String {
    let (seller, listing) = filters(query);
    let dimensions = dimensions(query.group_by);
    let columns: Vec<&str> = dimensions
        .iter()
        .map(|d| if d.on { d.shown } else { d.absent })
        .collect();
    let absent: Vec<&str> = dimensions.iter().map(|d| d.absent).collect();
    let mut grouped: Vec<&str> = dimensions
        .iter()
        .filter(|d| d.on)
        .map(|d| d.shown)
        .collect();
    grouped.push("k.currency");
    let mut key: Vec<(&str, &str)> = dimensions
        .iter()
        .filter(|d| d.on)
        .flat_map(|d| d.key.iter().copied())
        .collect();
    key.push(("k.currency", "$5->>'currency'"));
    let (columns_of_key, values_of_cursor): (Vec<&str>, Vec<&str>) = key.into_iter().unzip();
    // Summing `keyed` again by all its columns was a third of the platform report's time
    // (docs/PERFORMANCE.md: a hash aggregate of 94 846 groups spilling to disk).
    let (figures, grouping) = if query.group_by == GroupBy::ALL {
        (KEYED_FIGURES, String::new())
    } else {
        (FIGURES, format!("group by {}", grouped.join(", ")))
    };
    format!(
        "with sales as (
             select p.seller_id, p.tier_id, p.currency, (p.paid_at at time zone 'UTC')::date as day,
                    {SUMS}
             from purchase p
             where p.paid_at >= $1 and p.paid_at < $2 {seller} {listing}
             group by p.seller_id, p.tier_id, p.currency, day
         ),
         keyed as (
             select s.*, se.name as seller_name, l.listing_id, l.canonical as listing_canonical,
                    l.title as listing_title, t.slug as tier_slug, t.version as tier_version,
                    t.name as tier_name
             from sales s
                  join tier t on t.tier_id = s.tier_id
                  join listing l on l.listing_id = t.listing_id
                  join seller se on se.seller_id = s.seller_id
         )
         (select {columns}, k.currency, {figures}, false as total
          from keyed k
          where $5::jsonb is null or ({key}) > ({cursor})
          {grouping}
          order by {key}
          limit $6)
         union all
         (select {absent}, k.currency, {FIGURES}, true as total
          from keyed k
          group by k.currency)
         order by total, day, seller_name, seller_id, listing_canonical, listing_id, tier_slug,
                  tier_version, tier_id, currency",
        columns = columns.join(", "),
        absent = absent.join(", "),
        key = columns_of_key.join(", "),
        cursor = values_of_cursor.join(", "),
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
