//! What a report asks for ([`SalesQuery`]: a [`Range`] of days, filters, a [`GroupBy`]) and what
//! it answers ([`SalesReport`]: rows of [`Figures`] under their keys, and each currency's totals).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::{Currency, Error, ListingId, Result, TierId};

/// The days a report covers: from `from` (included) to `to` (excluded), UTC. A range whose `to`
/// is not after its `from` is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Range {
    /// How many days a report covers when only its end is given, or nothing.
    pub const DEFAULT_DAYS: u64 = 30;

    /// The range asked for, with what is missing filled in: `to` is tomorrow (today included),
    /// `from` is [`Self::DEFAULT_DAYS`] before `to`.
    pub fn or_default(from: Option<NaiveDate>, to: Option<NaiveDate>, today: NaiveDate) -> Self {
        let to = to.unwrap_or_else(|| today.checked_add_days(Days::new(1)).unwrap_or(today));
        let from = from.unwrap_or_else(|| {
            to.checked_sub_days(Days::new(Self::DEFAULT_DAYS))
                .unwrap_or(NaiveDate::MIN)
        });
        Self { from, to }
    }

    pub(super) fn start(self) -> DateTime<Utc> {
        self.from.and_time(NaiveTime::MIN).and_utc()
    }

    pub(super) fn end(self) -> DateTime<Utc> {
        self.to.and_time(NaiveTime::MIN).and_utc()
    }
}

/// What a report's rows are keyed by (with the currency, always). Each left out is summed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one independent switch per dimension, any combination allowed"
)]
pub struct GroupBy {
    pub day: bool,
    pub seller: bool,
    pub listing: bool,
    pub tier: bool,
}

impl GroupBy {
    /// By day, seller, listing and tier: the default.
    pub const ALL: Self = Self {
        day: true,
        seller: true,
        listing: true,
        tier: true,
    };

    /// A comma-separated list of `day`, `seller`, `listing`, `tier` (at least one; in any order,
    /// repeats change nothing).
    pub fn parse(list: &str) -> Result<Self> {
        let mut by = Self {
            day: false,
            seller: false,
            listing: false,
            tier: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "day" => by.day = true,
                "seller" => by.seller = true,
                "listing" => by.listing = true,
                "tier" => by.tier = true,
                _ => {
                    return Err(Error::invalid(
                        "group_by",
                        "a comma-separated list of day, seller, listing and tier",
                    ));
                }
            }
        }
        Ok(by)
    }

    /// The dimensions grouped by, in the rows' order: `["day", "seller", …]`.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.day, "day"),
            (self.seller, "seller"),
            (self.listing, "listing"),
            (self.tier, "tier"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Which sales a report sums, and which of its rows to return.
#[derive(Clone, Debug)]
pub struct SalesQuery {
    pub range: Range,
    /// One seller's sales only (the seller API always sets its own).
    pub seller: Option<Uuid>,
    /// One listing's sales only.
    pub listing: Option<ListingId>,
    pub group_by: GroupBy,
    /// The rows after this key (the last row of the previous page), in the report's order.
    pub after: Option<RowKey>,
    /// At most this many rows; `None`: all of them.
    pub limit: Option<u32>,
}

/// Where a row stands in a report's order: its grouped dimensions (`None` where the report is
/// not grouped by one) and its currency. Names come first and ids after them, so rows are in the
/// order a reader expects and two sellers of one name (or two listings' tiers of one slug) still
/// have an order. A page ends at a key; the next page starts after it ([`SalesQuery::after`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowKey {
    pub day: Option<NaiveDate>,
    pub seller_name: Option<String>,
    pub seller_id: Option<Uuid>,
    pub listing_canonical: Option<String>,
    pub listing_id: Option<Uuid>,
    pub tier_slug: Option<String>,
    pub tier_version: Option<i32>,
    pub tier_id: Option<Uuid>,
    pub currency: String,
}

impl RowKey {
    /// Whether this key could be a row of a report grouped `by`: present exactly where grouped.
    pub fn fits(&self, by: GroupBy) -> bool {
        let dimension = |on: bool, present: &[bool]| present.iter().all(|p| *p == on);
        dimension(by.day, &[self.day.is_some()])
            && dimension(
                by.seller,
                &[self.seller_name.is_some(), self.seller_id.is_some()],
            )
            && dimension(
                by.listing,
                &[self.listing_canonical.is_some(), self.listing_id.is_some()],
            )
            && dimension(
                by.tier,
                &[
                    self.tier_slug.is_some(),
                    self.tier_version.is_some(),
                    self.tier_id.is_some(),
                ],
            )
    }
}

/// A seller, as a row names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SellerRef {
    pub seller_id: Uuid,
    pub name: String,
}

/// A listing, as a row names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingRef {
    pub listing_id: ListingId,
    pub canonical: String,
    pub title: String,
}

/// A tier version, as a row names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierRef {
    pub tier_id: TierId,
    pub slug: String,
    pub version: i32,
    pub name: String,
}

/// One row's (or one currency's total) figures: amounts in the currency's minor unit, as
/// [`crate::Money`] is. See the module's documentation for what each means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    pub currency: Currency,
    pub sales: i64,
    pub gross: i64,
    pub refunds: i64,
    pub refund_count: i64,
    pub disputes: i64,
    pub dispute_count: i64,
    pub platform_fees: i64,
    pub net: i64,
}

/// A row: its key (what is not grouped by is `None`) and its figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesRow {
    pub day: Option<NaiveDate>,
    pub seller: Option<SellerRef>,
    pub listing: Option<ListingRef>,
    pub tier: Option<TierRef>,
    pub figures: Figures,
}

impl SalesRow {
    /// The row's place in the report's order.
    pub fn key(&self) -> RowKey {
        RowKey {
            day: self.day,
            seller_name: self.seller.as_ref().map(|s| s.name.clone()),
            seller_id: self.seller.as_ref().map(|s| s.seller_id),
            listing_canonical: self.listing.as_ref().map(|l| l.canonical.clone()),
            listing_id: self.listing.as_ref().map(|l| l.listing_id.0),
            tier_slug: self.tier.as_ref().map(|t| t.slug.clone()),
            tier_version: self.tier.as_ref().map(|t| t.version),
            tier_id: self.tier.as_ref().map(|t| t.tier_id.0),
            currency: self.figures.currency.as_str().to_owned(),
        }
    }
}

/// A report (or a page of one): its rows, ordered by day, seller, listing, tier and currency
/// ([`RowKey`]), and the totals of each currency over the whole report, on every page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesReport {
    pub range: Range,
    pub group_by: GroupBy,
    pub rows: Vec<SalesRow>,
    pub totals: Vec<Figures>,
    /// The last row's key when more rows follow it (the query's `limit` cut the report).
    pub next: Option<RowKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_reads_any_combination_of_the_four_dimensions_and_nothing_else() {
        assert_eq!(
            GroupBy::parse("day,seller,listing,tier").unwrap(),
            GroupBy::ALL
        );
        let by = GroupBy::parse("tier, day,tier").unwrap();
        assert_eq!(by.names(), ["day", "tier"]);
        for bad in ["", "day,", "week", "day;seller", "Day"] {
            assert!(GroupBy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_range_is_the_thirty_days_up_to_and_including_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let range = Range::or_default(None, None, today);
        assert_eq!(range.to, NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
        assert_eq!(range.from, NaiveDate::from_ymd_opt(2026, 11, 4).unwrap());
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(Range::or_default(Some(from), None, today).from, from);
    }
}
