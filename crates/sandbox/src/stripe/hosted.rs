//! The hosted checkout page a session's `url` points at: `<base>/pay/<session id>`.
//!
//! Plain HTML with no script: an order summary, an optional email field, a "Pay" button and a
//! "Cancel" button, each a form POST. Paying does what [`StripeSim::pay`] does, then answers
//! `303 See Other` to the session's `success_url` with `{CHECKOUT_SESSION_ID}` filled in;
//! cancelling answers `303` to `cancel_url` and leaves the session open (as Stripe's back link
//! does). A session that cannot be paid any more gets a page saying why, with a 4xx status.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/pay/{id}` | the page; 404/409/410 page for unknown, paid, expired sessions |
//! | POST | `/pay/{id}/pay` | form `email`? → 303 to `success_url` (200 page without one) |
//! | POST | `/pay/{id}/cancel` | 303 to `cancel_url` (200 page without one) |
//!
//! A destination charge whose seller can no longer receive transfers is refused with a 409 page
//! and the session stays open. Connect's pages (onboarding, Express dashboard) are in
//! `connect::hosted` and share this page frame.
//!
//! [`StripeSim::pay`]: super::StripeSim::pay

use std::fmt::Write as _;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::web::{self, Bytes};

use super::error::SimError;
use super::model::SessionStatus;
use super::money;
use super::state::{Origin, Shared};
use super::store::Session;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/{id}", web::get().to(page))
        .route("/{id}/pay", web::post().to(pay))
        .route("/{id}/cancel", web::post().to(cancel));
}

async fn page(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let state = shared.lock();
    let Some(session) = state.store.sessions.get(id.as_str()) else {
        return not_found();
    };
    if session.status != SessionStatus::Open {
        return closed(session.status);
    }
    html(StatusCode::OK, "Checkout", &checkout_body(session))
}

async fn pay(shared: web::Data<Shared>, id: web::Path<String>, form: Bytes) -> HttpResponse {
    let email = url::form_urlencoded::parse(&form)
        .find(|(key, _)| key == "email")
        .map(|(_, value)| value.trim().to_owned());
    let outcome = {
        let mut state = shared.lock();
        state.pay(&id, email, false, &Origin::default()).map(|()| {
            state
                .store
                .sessions
                .get(id.as_str())
                .and_then(|s| s.success_url.clone())
        })
    };
    tracing::debug!(paid = outcome.is_ok(), "stripe sim hosted page pay");
    match outcome {
        Ok(Some(success_url)) => {
            see_other(&success_url.replace("{CHECKOUT_SESSION_ID}", id.as_str()))
        }
        Ok(None) => message(
            StatusCode::OK,
            "Payment complete",
            "Thank you: the payment went through. You can close this page.",
        ),
        Err(SimError::SessionNotOpen { status, .. }) => closed(status),
        // A destination charge to a seller who can no longer be paid: Stripe declines to confirm
        // it and the session stays open.
        Err(SimError::DestinationInactive(_)) => message(
            StatusCode::CONFLICT,
            "Payment not possible",
            "The seller cannot accept payments right now. Nothing was charged.",
        ),
        Err(_) => not_found(),
    }
}

async fn cancel(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let cancel_url = {
        let state = shared.lock();
        let Some(session) = state.store.sessions.get(id.as_str()) else {
            return not_found();
        };
        session.cancel_url.clone()
    };
    match cancel_url {
        Some(url) => see_other(&url),
        None => message(
            StatusCode::OK,
            "Payment cancelled",
            "Nothing was charged. You can close this page.",
        ),
    }
}

fn checkout_body(session: &Session) -> String {
    let total = money::format(session.amount_total(), &session.currency);
    let mut rows = String::new();
    for item in &session.line_items {
        let description = item
            .description
            .as_deref()
            .map(|text| format!("<br><span class=\"muted\">{}</span>", escape(text)))
            .unwrap_or_default();
        // Writing to a String cannot fail.
        let _ = write!(
            rows,
            "<tr><td>{}{description}</td><td class=\"qty\">{}</td><td class=\"amount\">{}</td></tr>",
            escape(&item.name),
            item.quantity,
            money::format(item.amount(), &item.currency),
        );
    }
    let email = match &session.customer_email {
        Some(email) => format!(
            "<label for=\"email\">Email</label>\
             <input id=\"email\" name=\"email\" type=\"email\" value=\"{}\" readonly>",
            escape(email)
        ),
        None => "<label for=\"email\">Email (optional)</label>\
                 <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\">"
            .to_owned(),
    };
    let id = escape(&session.id);
    format!(
        "<h1>Checkout</h1>\
         <table>\
         <caption>Order summary</caption>\
         <thead><tr><th scope=\"col\">Item</th><th scope=\"col\" class=\"qty\">Quantity</th>\
         <th scope=\"col\" class=\"amount\">Price</th></tr></thead>\
         <tbody>{rows}</tbody>\
         <tfoot><tr><th scope=\"row\" colspan=\"2\">Total</th>\
         <td class=\"amount\" id=\"total\">{total}</td></tr></tfoot>\
         </table>\
         <form method=\"post\" action=\"{id}/pay\">{email}\
         <button type=\"submit\" id=\"pay\" class=\"pay\">Pay {total}</button></form>\
         <form method=\"post\" action=\"{id}/cancel\">\
         <button type=\"submit\" id=\"cancel\" class=\"cancel\">Cancel</button></form>"
    )
}

fn closed(status: SessionStatus) -> HttpResponse {
    match status {
        SessionStatus::Expired => message(
            StatusCode::GONE,
            "Checkout session expired",
            "This checkout session has expired and can no longer be paid. Nothing was charged. \
             Go back to the shop to start again.",
        ),
        _ => message(
            StatusCode::CONFLICT,
            "Already paid",
            "This checkout session is already complete: it cannot be paid twice.",
        ),
    }
}

fn not_found() -> HttpResponse {
    message(
        StatusCode::NOT_FOUND,
        "Checkout session not found",
        "There is no checkout session at this address.",
    )
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let body = format!(
        "<h1>{}</h1><p id=\"message\">{}</p>",
        escape(title),
        escape(text)
    );
    html(status, title, &body)
}

/// The page around `body`. Colours meet WCAG AA contrast (dark navy on white, white on navy);
/// focus is visible; everything works from the keyboard because it is just forms.
pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · Stripe simulator</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <p class=\"notice\" role=\"note\">Stripe simulator: no real payment is made.</p>\n\
         {body}\n</main>\n</body>\n</html>\n",
        escape(title)
    );
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(page)
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f6f8fa;\
color:#1f2328;margin:0;line-height:1.5}\
main{max-width:30rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border:1px solid #d0d7de;\
border-radius:8px}\
h1{font-size:1.5rem;margin:.5rem 0 1rem}\
.notice{background:#fff8c5;border:1px solid #9a6700;padding:.4rem .75rem;border-radius:4px;\
font-size:.9rem}\
table{width:100%;border-collapse:collapse;margin-bottom:1.5rem}\
caption{text-align:left;font-weight:600;padding-bottom:.25rem}\
th,td{padding:.4rem .25rem;text-align:left;border-bottom:1px solid #d0d7de}\
.amount,.qty{text-align:right}\
tfoot th,tfoot td{font-weight:700;border-bottom:none}\
.muted{color:#59636e;font-size:.9rem}\
label{display:block;font-weight:600;margin-bottom:.25rem}\
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #59636e;\
border-radius:4px;margin-bottom:1rem}\
button{font:inherit;font-size:1.05rem;width:100%;padding:.7rem 1rem;border-radius:6px;\
cursor:pointer;margin-bottom:.75rem}\
button.pay{background:#0a2540;color:#fff;border:2px solid #0a2540}\
button.cancel{background:#fff;color:#0a2540;border:2px solid #0a2540}\
button:focus-visible,input:focus-visible{outline:3px solid #635bff;outline-offset:2px}";

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_product_names_is_escaped() {
        assert_eq!(
            escape("<b>\"Tom's\" & co</b>"),
            "&lt;b&gt;&quot;Tom&#39;s&quot; &amp; co&lt;/b&gt;"
        );
    }
}
