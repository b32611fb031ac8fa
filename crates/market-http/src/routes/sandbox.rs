//! `/sandbox/mail`: the email a sandbox run "sent", newest first, so a newcomer sees the receipt
//! arrive without a mail server. Only in sandbox mode (the simulators' tokens are the only ones
//! it can show); anywhere else the page does not exist.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use market_core::postman::escape_html;

use crate::error::ApiError;
use crate::state::{AppState, Mode};

pub async fn mail(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let capture = state
        .market
        .postman()
        .and_then(|p| p.capture())
        .filter(|_| state.mode == Mode::Sandbox)
        .ok_or_else(|| ApiError::not_found("page"))?;
    let messages = capture.messages();
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sandbox mail</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main><h1>Sandbox mail</h1>\
         <p>What this sandbox run sent to buyers (kept in memory, newest first). \
         Reload to see new messages.</p>",
    );
    if messages.is_empty() {
        page.push_str("<p id=\"no-mail\">No mail yet: buy something on the storefront.</p>");
    }
    for mail in messages {
        let _ = write!(
            page,
            "<article class=\"mail\"><h2>{}</h2><p>To {} · from {} · {} · {}</p><pre>{}</pre></article>",
            escape_html(&mail.subject),
            escape_html(&mail.to),
            escape_html(&mail.from),
            mail.at.format("%Y-%m-%d %H:%M:%S UTC"),
            escape_html(&mail.message_id),
            escape_html(&mail.text),
        );
    }
    page.push_str("<p><a href=\"/\">Back to the storefront</a></p></main></body></html>");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page))
}
