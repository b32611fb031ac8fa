//! Sales reports on the wire (`market_core::reports`): what a report asks for, the report as JSON,
//! and its rows as CSV (RFC 4180) for a spreadsheet. The CLI prints the same two forms.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use market_core::reports::{Figures, RowKey, SalesReport, SalesRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `GET /v1/seller/reports/sales`: the seller's own sales.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SellerSalesQuery {
    /// The first day of the range (UTC), included. Default: 30 days before `to`.
    #[param(example = "2026-11-01")]
    pub from: Option<NaiveDate>,
    /// The day after the range (UTC), excluded. Default: tomorrow, so today is included. A `to`
    /// not after `from` is an empty range.
    #[param(example = "2026-12-01")]
    pub to: Option<NaiveDate>,
    /// Only this listing's sales.
    #[param(
        pattern = "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub listing_id: Option<Uuid>,
    /// What the rows are keyed by (with the currency, always): any of `day`, `seller`,
    /// `listing`, `tier`, comma-separated. Default: all four.
    #[param(
        pattern = "^(day|seller|listing|tier)(,(day|seller|listing|tier))*$",
        example = "day,listing"
    )]
    pub group_by: Option<String>,
    /// `json` (the default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// Rows per page of the JSON form: 1-10000, default 1000. CSV is always the whole report.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, with the same range, filters and `group_by`.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

/// `GET /v1/admin/reports/sales`: every seller's sales, or one seller's.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdminSalesQuery {
    /// The first day of the range (UTC), included. Default: 30 days before `to`.
    #[param(example = "2026-11-01")]
    pub from: Option<NaiveDate>,
    /// The day after the range (UTC), excluded. Default: tomorrow, so today is included. A `to`
    /// not after `from` is an empty range.
    #[param(example = "2026-12-01")]
    pub to: Option<NaiveDate>,
    /// Only this seller's sales (the house's included).
    #[param(
        pattern = "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub seller_id: Option<Uuid>,
    /// Only this listing's sales.
    #[param(
        pattern = "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub listing_id: Option<Uuid>,
    /// What the rows are keyed by (with the currency, always): any of `day`, `seller`,
    /// `listing`, `tier`, comma-separated. Default: all four.
    #[param(
        pattern = "^(day|seller|listing|tier)(,(day|seller|listing|tier))*$",
        example = "seller"
    )]
    pub group_by: Option<String>,
    /// `json` (the default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
    /// Rows per page of the JSON form: 1-10000, default 1000. CSV is always the whole report.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, with the same range, filters and `group_by`.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

/// A sales report: one row per day, seller, listing and tier (as grouped) and currency, and each
/// currency's totals. Every sale is dated by the day it was paid, with what has been refunded or
/// disputed of it so far. Amounts are in the currency's minor unit (1900 = $19.00).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-01", "to": "2026-12-01", "group_by": ["seller"],
    "rows": [{
        "day": null, "seller_id": "6f1c2a4e-0b7d-4c1e-9a51-1f0e6d2b9c33", "seller_name": "Ada",
        "listing_id": null, "listing_canonical": null, "listing_title": null, "tier_id": null,
        "tier_slug": null, "tier_version": null, "tier_name": null, "currency": "usd",
        "sales": 3, "gross": 4500, "refunds": 2000, "refund_count": 2, "disputes": 0,
        "dispute_count": 0, "platform_fees": 250, "net": 2250
    }],
    "totals": [{
        "currency": "usd", "sales": 3, "gross": 4500, "refunds": 2000, "refund_count": 2,
        "disputes": 0, "dispute_count": 0, "platform_fees": 250, "net": 2250
    }],
    "next_cursor": null
}))]
pub struct SalesReportBody {
    /// The first day of the range (UTC), included.
    pub from: NaiveDate,
    /// The day after the range (UTC), excluded.
    pub to: NaiveDate,
    /// What the rows are keyed by, besides the currency.
    pub group_by: Vec<String>,
    /// This page's rows, in order of day, seller, listing, tier and currency.
    pub rows: Vec<SalesRowBody>,
    /// Each currency's figures over the whole report (every page has them).
    pub totals: Vec<SalesFiguresBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One row: its key (`null` where the report is not grouped by it) and its figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct SalesRowBody {
    /// The day (UTC) the row's sales were paid.
    pub day: Option<NaiveDate>,
    pub seller_id: Option<Uuid>,
    pub seller_name: Option<String>,
    pub listing_id: Option<Uuid>,
    pub listing_canonical: Option<String>,
    pub listing_title: Option<String>,
    /// A tier version: a tier whose terms changed has a row per version sold.
    pub tier_id: Option<Uuid>,
    pub tier_slug: Option<String>,
    pub tier_version: Option<i32>,
    pub tier_name: Option<String>,
    /// Lowercase ISO 4217, as Stripe writes it.
    #[schema(example = "usd")]
    pub currency: String,
    /// Sales: purchases and upgrades paid.
    pub sales: i64,
    /// What the buyers paid.
    pub gross: i64,
    /// What was refunded of those sales so far.
    pub refunds: i64,
    /// How many of the sales had a refund, whole or partial.
    pub refund_count: i64,
    /// What chargebacks took, open or lost (a dispute won takes nothing).
    pub disputes: i64,
    pub dispute_count: i64,
    /// The platform's application fees on a seller's sales, less what refunds gave back; none
    /// on the house's.
    pub platform_fees: i64,
    /// `gross - refunds - disputes - platform_fees`: what the sales earned the seller.
    pub net: i64,
}

/// A currency's figures over a whole report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SalesFiguresBody {
    #[schema(example = "usd")]
    pub currency: String,
    pub sales: i64,
    pub gross: i64,
    pub refunds: i64,
    pub refund_count: i64,
    pub disputes: i64,
    pub dispute_count: i64,
    pub platform_fees: i64,
    pub net: i64,
}

impl From<Figures> for SalesFiguresBody {
    fn from(f: Figures) -> Self {
        Self {
            currency: f.currency.as_str().to_owned(),
            sales: f.sales,
            gross: f.gross,
            refunds: f.refunds,
            refund_count: f.refund_count,
            disputes: f.disputes,
            dispute_count: f.dispute_count,
            platform_fees: f.platform_fees,
            net: f.net,
        }
    }
}

impl From<SalesRow> for SalesRowBody {
    fn from(r: SalesRow) -> Self {
        let f = r.figures;
        Self {
            day: r.day,
            seller_id: r.seller.as_ref().map(|s| s.seller_id),
            seller_name: r.seller.map(|s| s.name),
            listing_id: r.listing.as_ref().map(|l| l.listing_id.0),
            listing_canonical: r.listing.as_ref().map(|l| l.canonical.clone()),
            listing_title: r.listing.map(|l| l.title),
            tier_id: r.tier.as_ref().map(|t| t.tier_id.0),
            tier_slug: r.tier.as_ref().map(|t| t.slug.clone()),
            tier_version: r.tier.as_ref().map(|t| t.version),
            tier_name: r.tier.map(|t| t.name),
            currency: f.currency.as_str().to_owned(),
            sales: f.sales,
            gross: f.gross,
            refunds: f.refunds,
            refund_count: f.refund_count,
            disputes: f.disputes,
            dispute_count: f.dispute_count,
            platform_fees: f.platform_fees,
            net: f.net,
        }
    }
}

impl From<SalesReport> for SalesReportBody {
    fn from(report: SalesReport) -> Self {
        Self {
            from: report.range.from,
            to: report.range.to,
            group_by: report
                .group_by
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            rows: report.rows.into_iter().map(Into::into).collect(),
            totals: report.totals.into_iter().map(Into::into).collect(),
            next_cursor: report.next.as_ref().map(encode_cursor),
        }
    }
}

/// Rows a page of the JSON form holds when `limit` is not given.
pub const DEFAULT_REPORT_PAGE: u32 = 1000;
/// The most rows one page holds (about 5 MB of JSON).
pub const MAX_REPORT_PAGE: u32 = 10_000;

/// A page's last row key, as the cursor carries it (JSON, URL-safe base64). The key's own text
/// (a seller's name) is in it, so the client can neither read nor shape more than a key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorKey {
    day: Option<NaiveDate>,
    seller_name: Option<String>,
    seller_id: Option<Uuid>,
    listing_canonical: Option<String>,
    listing_id: Option<Uuid>,
    tier_slug: Option<String>,
    tier_version: Option<i32>,
    tier_id: Option<Uuid>,
    currency: String,
}

/// The cursor of the page that follows the row `key`.
pub fn encode_cursor(key: &RowKey) -> String {
    let key = CursorKey {
        day: key.day,
        seller_name: key.seller_name.clone(),
        seller_id: key.seller_id,
        listing_canonical: key.listing_canonical.clone(),
        listing_id: key.listing_id,
        tier_slug: key.tier_slug.clone(),
        tier_version: key.tier_version,
        tier_id: key.tier_id,
        currency: key.currency.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&key).unwrap_or_default())
}

/// The row key a cursor names; `None` when it is not one [`encode_cursor`] could have made.
pub fn decode_cursor(cursor: &str) -> Option<RowKey> {
    let json = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let key: CursorKey = serde_json::from_slice(&json).ok()?;
    Some(RowKey {
        day: key.day,
        seller_name: key.seller_name,
        seller_id: key.seller_id,
        listing_canonical: key.listing_canonical,
        listing_id: key.listing_id,
        tier_slug: key.tier_slug,
        tier_version: key.tier_version,
        tier_id: key.tier_id,
        currency: key.currency,
    })
}

/// The CSV's columns: a row's fields, in order.
pub const CSV_HEADER: &str = "day,seller_id,seller_name,listing_id,listing_canonical,\
listing_title,tier_id,tier_slug,tier_version,tier_name,currency,sales,gross,refunds,refund_count,\
disputes,dispute_count,platform_fees,net";

impl SalesReportBody {
    /// The rows as CSV (RFC 4180: a header line, CRLF line ends, a field quoted when it holds a
    /// comma, a quote or a line break, its quotes doubled); `null` is an empty field. The totals
    /// are not repeated: they are the sums of the columns.
    ///
    /// Names are the sellers' own text and a spreadsheet runs a cell that starts with `=`, `+`,
    /// `-` or `@` as a formula: such a name is written quoted, after a `'` (OWASP's advice on CSV
    /// injection). Numbers are written as they are.
    pub fn csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.rows.len() + 1));
        out.push_str(CSV_HEADER);
        out.push_str("\r\n");
        for row in &self.rows {
            let fields = [
                row.day.map(|d| d.to_string()).unwrap_or_default(),
                row.seller_id.map(|id| id.to_string()).unwrap_or_default(),
                text(row.seller_name.as_deref()),
                row.listing_id.map(|id| id.to_string()).unwrap_or_default(),
                text(row.listing_canonical.as_deref()),
                text(row.listing_title.as_deref()),
                row.tier_id.map(|id| id.to_string()).unwrap_or_default(),
                text(row.tier_slug.as_deref()),
                row.tier_version.map(|v| v.to_string()).unwrap_or_default(),
                text(row.tier_name.as_deref()),
                text(Some(&row.currency)),
                row.sales.to_string(),
                row.gross.to_string(),
                row.refunds.to_string(),
                row.refund_count.to_string(),
                row.disputes.to_string(),
                row.dispute_count.to_string(),
                row.platform_fees.to_string(),
                row.net.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// A text field of the CSV: quoted when RFC 4180 needs it, and defused when a spreadsheet would
/// read it as a formula.
fn text(value: Option<&str>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if !formula && !value.contains([',', '"', '\r', '\n']) {
        return value.to_owned();
    }
    let guard = if formula { "'" } else { "" };
    format!("\"{guard}{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::{RowKey, decode_cursor, encode_cursor, text};

    #[test]
    fn a_cursor_carries_a_row_key_there_and_back_and_nothing_else_decodes() {
        let key = RowKey {
            day: chrono::NaiveDate::from_ymd_opt(2026, 11, 10),
            seller_name: Some("Ada, \"the\" seller".to_owned()),
            seller_id: Some(uuid::Uuid::nil()),
            listing_canonical: None,
            listing_id: None,
            tier_slug: Some("solo".to_owned()),
            tier_version: Some(2),
            tier_id: Some(uuid::Uuid::max()),
            currency: "usd".to_owned(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&key)), Some(key));
        for bad in ["", "x", "e30", "bm90IGpzb24", "eyJjdXJyZW5jeSI6MX0"] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn csv_text_is_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        assert_eq!(text(None), "");
        assert_eq!(text(Some("Ada")), "Ada");
        assert_eq!(text(Some("Ada, Bob")), "\"Ada, Bob\"");
        assert_eq!(text(Some("the \"best\"")), "\"the \"\"best\"\"\"");
        assert_eq!(text(Some("two\nlines")), "\"two\nlines\"");
        assert_eq!(text(Some("=HYPERLINK(1)")), "\"'=HYPERLINK(1)\"");
        assert_eq!(text(Some("-1")), "\"'-1\"");
    }
}
