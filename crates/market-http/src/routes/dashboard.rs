//! The operator's dashboard at `/admin`: pools per tier, credential health per seller, jobs needing
//! attention, failing webhook endpoints and sales by day, on one page. Plain HTML, CSS and
//! JavaScript compiled into the binary, like the storefront (no build step, no third-party asset).
//!
//! The page holds no data and needs no session of its own: it asks for an admin token, keeps it in
//! the tab's `sessionStorage`, and reads everything from the admin API with it, so it shows exactly
//! what the token may read and nothing when the token is wrong.

use actix_web::HttpResponse;
use actix_web::http::header;

const PAGE: &str = include_str!("../../static/admin.html");
const CSS: &str = include_str!("../../static/admin.css");
const JS: &str = include_str!("../../static/admin.js");

pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

// Unversioned assets: browsers revalidate them, so an upgrade never leaves a stale page behind.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
