//! Connect's rows of the `/__sim` control API (the table is in `stripe::control`): accounts,
//! their onboarding and enabling, account links' expiry, and the ledger.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::server::control_error;
use crate::stripe::error::SimError;
use crate::stripe::state::{Origin, Shared, SimState};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(accounts))
        .route("/accounts/{id}", web::get().to(account))
        .route(
            "/accounts/{id}/onboarding",
            web::post().to(complete_onboarding),
        )
        .route("/accounts/{id}/enabled", web::post().to(set_enabled))
        .route("/account-links/expire", web::post().to(expire_links))
        .route("/ledger", web::get().to(ledger));
}

/// The account's view after a control ran, or the control's failure.
fn account_answer(state: &SimState, id: &str, outcome: Result<(), SimError>) -> HttpResponse {
    let outcome = outcome.and_then(|()| {
        state
            .account_view(id)
            .ok_or_else(|| SimError::UnknownAccount(id.to_owned()))
    });
    match outcome {
        Ok(view) => HttpResponse::Ok().json(view),
        Err(error) => control_error(error.status(), error.code(), &error.to_string()),
    }
}

async fn accounts(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.lock().account_views())
}

async fn account(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    account_answer(&shared.lock(), &id, Ok(()))
}

async fn complete_onboarding(shared: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let mut state = shared.lock();
    let outcome = state.complete_onboarding(&id, &Origin::default());
    account_answer(&state, &id, outcome)
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_enabled(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Json<Enabled>,
) -> HttpResponse {
    let mut state = shared.lock();
    let outcome = state.set_account_enabled(&id, body.enabled);
    account_answer(&state, &id, outcome)
}

async fn expire_links(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().expire_account_links();
    HttpResponse::NoContent().finish()
}

async fn ledger(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.lock().ledger())
}
