//! Connect's hosted pages, beside the checkout page and in its frame: the onboarding form an
//! Account Link opens, and the Express dashboard a login link opens. Plain HTML forms, no
//! script; every value from a request or a record is escaped.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/connect/onboarding/{link}` | the form (first visit); 303 to `refresh_url` when used, revisited or expired; 404 page when unknown |
//! | POST | `/connect/onboarding/{link}` | completes onboarding (`account.updated`), 303 to `return_url`; 303 to `refresh_url` when used or expired |
//! | GET | `/connect/express/{account}` | the account, its transfers and reversals, its application fees and its net balance |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::links::LinkOutcome;
use crate::stripe::hosted::{escape, html, message, see_other};
use crate::stripe::money;
use crate::stripe::state::{Shared, SimState};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/onboarding/{link}", web::get().to(onboarding_form))
        .route("/onboarding/{link}", web::post().to(submit_onboarding))
        .route("/express/{account}", web::get().to(express_dashboard));
}

async fn onboarding_form(shared: web::Data<Shared>, link: web::Path<String>) -> HttpResponse {
    let mut state = shared.lock();
    match state.visit_link(&link) {
        LinkOutcome::Form(account) => {
            let email = state
                .store
                .connect
                .accounts
                .get(&account)
                .and_then(|account| account.email.clone())
                .map(|email| format!(" ({})", escape(&email)))
                .unwrap_or_default();
            let body = format!(
                "<h1>Set up payouts</h1>\
                 <p>Account <code id=\"account\">{}</code>{email} is being set up to receive \
                 payouts. The simulator asks for nothing: submitting accepts the terms of service \
                 and completes onboarding.</p>\
                 <form method=\"post\" action=\"{}\">\
                 <button type=\"submit\" id=\"submit\" class=\"pay\">Submit</button></form>",
                escape(&account),
                escape(&link),
            );
            html(StatusCode::OK, "Onboarding", &body)
        }
        outcome => redirect(outcome),
    }
}

async fn submit_onboarding(shared: web::Data<Shared>, link: web::Path<String>) -> HttpResponse {
    let outcome = shared.lock().submit_link(&link);
    tracing::debug!(
        completed = matches!(outcome, LinkOutcome::Return(_)),
        "stripe sim onboarding submitted"
    );
    redirect(outcome)
}

fn redirect(outcome: LinkOutcome) -> HttpResponse {
    match outcome {
        LinkOutcome::Return(url) | LinkOutcome::Refresh(url) => see_other(&url),
        LinkOutcome::Form(_) | LinkOutcome::Unknown => message(
            StatusCode::NOT_FOUND,
            "Link not found",
            "There is no onboarding link at this address.",
        ),
    }
}

async fn express_dashboard(shared: web::Data<Shared>, account: web::Path<String>) -> HttpResponse {
    let state = shared.lock();
    match dashboard_body(&state, &account) {
        Some(body) => html(StatusCode::OK, "Express dashboard", &body),
        None => message(
            StatusCode::NOT_FOUND,
            "Account not found",
            "There is no connected account at this address.",
        ),
    }
}

/// The dashboard of `id`, or `None` when there is no such account.
fn dashboard_body(state: &SimState, id: &str) -> Option<String> {
    let connect = &state.store.connect;
    let account = connect.accounts.get(id)?;
    let status = if account.enabled() {
        "Payouts enabled"
    } else if account.rejected.is_some() {
        "Disabled by Stripe"
    } else {
        "Onboarding not finished"
    };
    // Per currency: what the account was sent, less reversals, less fees kept by the platform.
    let mut net: BTreeMap<&str, i64> = BTreeMap::new();
    let (mut transfers, mut reversals, mut fees) = (String::new(), String::new(), String::new());
    let charges = state
        .store
        .charge_order
        .iter()
        .filter_map(|charge| state.store.charges.get(charge));
    for charge in charges {
        let transfer = charge
            .transfer
            .as_ref()
            .and_then(|t| connect.transfers.get(t));
        if let Some(transfer) = transfer.filter(|t| t.destination == id) {
            *net.entry(&transfer.currency).or_default() += transfer.remaining();
            row(
                &mut transfers,
                &[
                    &transfer.id,
                    &amount(transfer.amount, &transfer.currency),
                    &amount(transfer.amount_reversed, &transfer.currency),
                ],
            );
            for reversal in transfer
                .reversals
                .iter()
                .filter_map(|r| connect.reversals.get(r))
            {
                row(
                    &mut reversals,
                    &[
                        &reversal.id,
                        &transfer.id,
                        &amount(reversal.amount, &reversal.currency),
                    ],
                );
            }
        }
        let fee = charge
            .application_fee
            .as_ref()
            .and_then(|f| connect.fees.get(f));
        if let Some(fee) = fee.filter(|f| f.account == id) {
            *net.entry(&fee.currency).or_default() -= fee.remaining();
            row(
                &mut fees,
                &[
                    &fee.id,
                    &amount(fee.amount, &fee.currency),
                    &amount(fee.amount_refunded, &fee.currency),
                ],
            );
        }
    }
    let balance = if net.is_empty() {
        amount(0, &account.default_currency)
    } else {
        net.iter()
            .map(|(currency, cents)| amount(*cents, currency))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let email = account.email.as_deref().unwrap_or("no email");
    Some(format!(
        "<h1>Express dashboard</h1>\
         <p><code id=\"account\">{}</code> · {} · <span id=\"status\">{status}</span></p>\
         <p>Net balance: <strong id=\"balance\">{}</strong></p>\
         {}{}{}",
        escape(&account.id),
        escape(email),
        escape(&balance),
        table(
            "Transfers",
            "transfers",
            ["Transfer", "Amount", "Reversed"],
            &transfers
        ),
        table(
            "Reversals",
            "reversals",
            ["Reversal", "Transfer", "Amount"],
            &reversals
        ),
        table(
            "Application fees",
            "fees",
            ["Fee", "Amount", "Refunded"],
            &fees
        ),
    ))
}

fn amount(cents: i64, currency: &str) -> String {
    money::format(cents, currency)
}

/// Appends a table row of escaped cells.
fn row(rows: &mut String, cells: &[&str]) {
    rows.push_str("<tr>");
    for cell in cells {
        // Writing to a String cannot fail.
        let _ = write!(rows, "<td>{}</td>", escape(cell));
    }
    rows.push_str("</tr>");
}

fn table(caption: &str, id: &str, headers: [&str; 3], rows: &str) -> String {
    let mut head = String::new();
    for header in headers {
        // Writing to a String cannot fail.
        let _ = write!(head, "<th scope=\"col\">{}</th>", escape(header));
    }
    let rows = if rows.is_empty() {
        "<tr><td colspan=\"3\">None yet</td></tr>"
    } else {
        rows
    };
    format!(
        "<table id=\"{}\"><caption>{}</caption><thead><tr>{head}</tr></thead>\
         <tbody>{rows}</tbody></table>",
        escape(id),
        escape(caption)
    )
}
