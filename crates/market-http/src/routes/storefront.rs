//! The storefront demo page at `/`: plain HTML, CSS and a little JavaScript, compiled into the binary
//! (no build step, nothing to deploy beside it).

use actix_web::HttpResponse;
use actix_web::http::header;

const INDEX: &str = include_str!("../../static/index.html");
const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");
const PORTAL_JS: &str = include_str!("../../static/portal.js");

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

// The assets are unversioned, so browsers revalidate them (no stale page after an upgrade).
pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(CSS)
}

pub async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(JS)
}

pub async fn portal_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PORTAL_JS)
}
