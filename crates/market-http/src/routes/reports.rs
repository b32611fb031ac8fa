//! Sales reports ([`market_core::reports`]): a seller's own (`/v1/seller/reports/sales`, its
//! seller forced, another seller's listing shows nothing) and the platform's, every seller's or
//! one's (`/v1/admin/reports/sales`). JSON by default; CSV with `format=csv`, or with
//! `Accept: text/csv` when `format` is not given.
//!
//! Reports read the read replica when there is one (`AppState::read_db`): a report is a view of
//! past sales, and one a second behind is the same report a second earlier. Who may see it (the
//! seller's key, the admin token) is decided on the primary, by the extractors.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use market_core::ListingId;
use market_core::reports::{self, GroupBy, Range, SalesQuery};
use uuid::Uuid;

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::{Admin, SellerAuth};
use crate::state::AppState;
use crate::wire::reports::{
    AdminSalesQuery, DEFAULT_REPORT_PAGE, MAX_REPORT_PAGE, SalesReportBody, SellerSalesQuery,
    decode_cursor,
};

/// The seller's sales over a range of days (default: the last 30, today included), by day,
/// listing and tier: gross, refunds, disputes, the platform's fees and the seller's net, in each
/// currency's minor unit. Each sale is dated by the day it was paid, with what has been refunded or
/// disputed of it so far. JSON comes in pages (`limit`, `next_cursor`), each with the whole
/// report's totals; CSV is the whole report.
#[utoipa::path(get, path = "/v1/seller/reports/sales", tag = "seller", operation_id = "seller_sales_report", security(("seller_key" = [])),
    params(SellerSalesQuery),
    responses((status = 200, description = "the report (`format=csv` or `Accept: text/csv`: its rows as CSV, a header line first)",
            content((SalesReportBody = "application/json"),
                ("text/csv", example = "day,seller_id,seller_name,listing_id,listing_canonical,listing_title,tier_id,tier_slug,tier_version,tier_name,currency,sales,gross,refunds,refund_count,disputes,dispute_count,platform_fees,net\r\n"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn seller_sales(
    seller: SellerAuth,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<SellerSalesQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = Asked {
        from: q.from,
        to: q.to,
        seller: Some(seller.0.seller_id),
        listing: q.listing_id,
        group_by: q.group_by,
        format: q.format,
        limit: q.limit,
        cursor: q.cursor,
    };
    report(&state, &request, asked).await
}

/// Every seller's sales (or one seller's, `seller_id`) over a range of days (default: the last
/// 30, today included), by day, seller, listing and tier: gross, refunds, disputes, the
/// platform's fees and each seller's net, in each currency's minor unit. Each sale is dated by the
/// day it was paid, with what has been refunded or disputed of it so far. JSON comes in pages
/// (`limit`, `next_cursor`), each with the whole report's totals; CSV is the whole report.
#[utoipa::path(get, path = "/v1/admin/reports/sales", tag = "admin", operation_id = "admin_sales_report", security(("admin_token" = [])),
    params(AdminSalesQuery),
    responses((status = 200, description = "the report (`format=csv` or `Accept: text/csv`: its rows as CSV, a header line first)",
            content((SalesReportBody = "application/json"),
                ("text/csv", example = "day,seller_id,seller_name,listing_id,listing_canonical,listing_title,tier_id,tier_slug,tier_version,tier_name,currency,sales,gross,refunds,refund_count,disputes,dispute_count,platform_fees,net\r\n"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn admin_sales(
    _admin: Admin,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<AdminSalesQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let asked = Asked {
        from: q.from,
        to: q.to,
        seller: q.seller_id,
        listing: q.listing_id,
        group_by: q.group_by,
        format: q.format,
        limit: q.limit,
        cursor: q.cursor,
    };
    report(&state, &request, asked).await
}

/// What either route asks for, parsed from its query.
struct Asked {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    seller: Option<Uuid>,
    listing: Option<Uuid>,
    group_by: Option<String>,
    format: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn report(
    state: &AppState,
    request: &HttpRequest,
    asked: Asked,
) -> Result<HttpResponse, ApiError> {
    let csv = match asked.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::invalid("format: must be json or csv")),
        None => accepts_csv(request),
    };
    let group_by = match asked.group_by.as_deref() {
        Some(list) => GroupBy::parse(list)?,
        None => GroupBy::ALL,
    };
    // JSON comes in pages; CSV is the whole report, a file for a spreadsheet.
    let limit = match (csv, asked.limit) {
        (true, None) => None,
        (false, None) => Some(DEFAULT_REPORT_PAGE),
        (false, Some(n)) if (1..=MAX_REPORT_PAGE).contains(&n) => Some(n),
        (false, Some(_)) => {
            return Err(ApiError::invalid(format!(
                "limit must be 1-{MAX_REPORT_PAGE}"
            )));
        }
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "limit: CSV is the whole report; limit and cursor page the JSON form",
            ));
        }
    };
    let after = match asked.cursor.as_deref() {
        None => None,
        Some(_) if csv => {
            return Err(ApiError::invalid(
                "cursor: CSV is the whole report; limit and cursor page the JSON form",
            ));
        }
        Some(cursor) => Some(
            decode_cursor(cursor)
                .filter(|key| key.fits(group_by))
                .ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidCursor,
                        "cursor is not one this report returned (its group_by must be the same)",
                    )
                })?,
        ),
    };
    let query = SalesQuery {
        range: Range::or_default(asked.from, asked.to, Utc::now().date_naive()),
        seller: asked.seller,
        listing: asked.listing.map(ListingId),
        group_by,
        after,
        limit,
    };
    let body = SalesReportBody::from(reports::sales(state.read_db(), &query).await?);
    if !csv {
        return Ok(HttpResponse::Ok().json(body));
    }
    let file = format!(
        "attachment; filename=\"sales-{}-{}.csv\"",
        body.from, body.to
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, file))
        .body(body.csv()))
}

/// Whether the request's `Accept` names `text/csv` (a client asking for the spreadsheet form).
fn accepts_csv(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/csv"))
        })
}
