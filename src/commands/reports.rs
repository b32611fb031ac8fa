//! `market report sales`: the platform's sales report from a shell with the database, as
//! `GET /v1/admin/reports/sales` gives it (the same JSON, or the same CSV).

use chrono::Utc;
use market_core::ListingId;
use market_core::reports::{self, GroupBy, Range, SalesQuery};
use market_http::wire::reports::SalesReportBody;

use super::conventions::{connect, print_json};
use crate::cli::SalesArgs;

/// Prints the report `args` ask for.
pub async fn sales(args: SalesArgs) -> anyhow::Result<()> {
    let query = SalesQuery {
        range: Range::or_default(args.from, args.to, Utc::now().date_naive()),
        seller: args.seller,
        listing: args.listing.map(ListingId),
        group_by: GroupBy::parse(&args.group_by)?,
        // The whole report: a shell pages with `less`.
        after: None,
        limit: None,
    };
    let db = connect(&args.db).await?;
    let body = SalesReportBody::from(reports::sales(&db, &query).await?);
    if args.format == "csv" {
        print!("{}", body.csv());
        Ok(())
    } else {
        print_json(&body)
    }
}
