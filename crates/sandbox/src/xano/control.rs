//! The HTTP control API under `/__sim`: the same controls as the [`XanoSim`](super::XanoSim)
//! methods, in JSON, so a simulator in another process (`market sim xano`) can be driven by tests.
//! These requests are not Master API calls: they are neither logged, limited nor faulted.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/__sim/health` | → `{"ok":true}` |
//! | GET | `/__sim/access-token` | → `{"access_token"}` (the default account's) |
//! | POST | `/__sim/page-size` | `{"page_size"}` |
//! | POST | `/__sim/accounts` | `SimAccount` → `{"access_token"}` |
//! | POST | `/__sim/access-tokens` | optional `access_token` (its account; default account) → `{"access_token"}` (another one) |
//! | POST | `/__sim/instances` | `SimInstance` + optional `access_token` (owner; default account) |
//! | POST | `/__sim/snippets` | `{"canonical","name"}` + optional `access_token` |
//! | GET | `/__sim/snippets/{canonical}` | → `SimSnippet` |
//! | GET | `/__sim/snippets/{canonical}/tokens` | → `[SimToken]` (live tokens) |
//! | POST | `/__sim/snippets/{canonical}/forbidden` | `{"forbidden": bool}`: every call naming it a 403 |
//! | POST | `/__sim/snippets/{canonical}/hidden` | `{"hidden": bool}`: every call naming it a 404 (token deletions aside), its tokens kept |
//! | POST | `/__sim/snippets/{canonical}/truncate-tokens` | `{"count", "keep"}`: the next `count` token lists cut to `keep` tokens |
//! | GET | `/__sim/snippets/{canonical}/truncate-tokens` | `{"left"}`: cuts still to come |
//! | POST | `/__sim/access-token-state` | `{"state":"valid"\|"expired"\|"forbidden"}` + optional `access_token` (that token only; the default one) |
//! | POST | `/__sim/install` | `{"canonical","token"}` → `{"current_installs"}`; 404/409/410 `{"error",…}` |
//! | GET, DELETE | `/__sim/calls` | → `[CallRecordJson]` (each naming the token's `account`, its `token_fingerprint` and the `snippet_account`); DELETE clears |
//! | POST | `/__sim/calls/take` | → `[CallRecordJson]`, cleared in the same step: a reader that takes the log window by window misses no call |
//! | GET, POST, DELETE | `/__sim/faults` | → `[FaultRule]`; POST adds one `FaultRule` (a `Fault`, optionally with `"account": "<id>"` to hit that account's calls only); DELETE clears |
//! | POST | `/__sim/free-plan-rate-limit` | `{"on": bool}` |
//!
//! Setters answer `204 No Content`. An `access_token` naming no account is a 404.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calls::CallRecordJson;
use super::faults::FaultRule;
use super::model::{InstallError, SimAccount, SimInstance, TokenState};
use super::state::Shared;
use crate::server::control_error;

/// This simulator's control routes; `GET /health` and the handling of malformed JSON bodies are
/// the same on both simulators, in [`crate::server`].
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/access-token", web::get().to(access_token))
        .route("/page-size", web::post().to(set_page_size))
        .route("/accounts", web::post().to(add_account))
        .route("/access-tokens", web::post().to(add_access_token))
        .route("/instances", web::post().to(add_instance))
        .route("/snippets", web::post().to(add_snippet))
        .route("/snippets/{canonical}", web::get().to(snippet))
        .route("/snippets/{canonical}/tokens", web::get().to(tokens))
        .route(
            "/snippets/{canonical}/forbidden",
            web::post().to(set_snippet_forbidden),
        )
        .route(
            "/snippets/{canonical}/hidden",
            web::post().to(set_snippet_hidden),
        )
        .route(
            "/snippets/{canonical}/truncate-tokens",
            web::post().to(truncate_token_lists),
        )
        .route(
            "/snippets/{canonical}/truncate-tokens",
            web::get().to(truncations_left),
        )
        .route(
            "/access-token-state",
            web::post().to(set_access_token_state),
        )
        .route("/install", web::post().to(install))
        .route("/calls", web::get().to(calls))
        .route("/calls", web::delete().to(clear_calls))
        .route("/calls/take", web::post().to(take_calls))
        .route("/faults", web::get().to(faults))
        .route("/faults", web::post().to(inject))
        .route("/faults", web::delete().to(clear_faults))
        .route(
            "/free-plan-rate-limit",
            web::post().to(set_free_plan_rate_limit),
        );
}

fn unknown_account() -> HttpResponse {
    control_error(
        StatusCode::NOT_FOUND,
        "unknown_account",
        "no account holds that access token",
    )
}

async fn access_token(shared: web::Data<Shared>) -> HttpResponse {
    let token = shared.lock().default_access_token.clone();
    HttpResponse::Ok().json(json!({ "access_token": token }))
}

#[derive(Deserialize)]
struct PageSize {
    page_size: usize,
}

async fn set_page_size(shared: web::Data<Shared>, body: web::Json<PageSize>) -> HttpResponse {
    shared.lock().page_size = body.page_size.max(1);
    HttpResponse::NoContent().finish()
}

async fn add_account(shared: web::Data<Shared>, body: web::Json<SimAccount>) -> HttpResponse {
    let token = {
        let mut state = shared.lock();
        let state = &mut *state;
        let token = state.store.new_access_token(&mut state.rng);
        state.store.add_account(body.into_inner(), token.clone());
        token
    };
    HttpResponse::Ok().json(json!({ "access_token": token }))
}

#[derive(Deserialize)]
struct NewAccessToken {
    access_token: Option<String>,
}

async fn add_access_token(
    shared: web::Data<Shared>,
    body: web::Json<NewAccessToken>,
) -> HttpResponse {
    let token = {
        let mut state = shared.lock();
        let state = &mut *state;
        let Some(account) = state.account_or_default(body.access_token.as_deref()) else {
            return unknown_account();
        };
        let token = state.store.new_access_token(&mut state.rng);
        state.store.add_access_token(account, token.clone());
        token
    };
    HttpResponse::Ok().json(json!({ "access_token": token }))
}

#[derive(Deserialize)]
struct NewInstance {
    #[serde(flatten)]
    instance: SimInstance,
    access_token: Option<String>,
}

async fn add_instance(shared: web::Data<Shared>, body: web::Json<NewInstance>) -> HttpResponse {
    let NewInstance {
        instance,
        access_token,
    } = body.into_inner();
    let mut state = shared.lock();
    let Some(account) = state.account_or_default(access_token.as_deref()) else {
        return unknown_account();
    };
    state.store.add_instance(account, instance);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct NewSnippet {
    canonical: String,
    name: String,
    access_token: Option<String>,
}

async fn add_snippet(shared: web::Data<Shared>, body: web::Json<NewSnippet>) -> HttpResponse {
    let mut state = shared.lock();
    let Some(account) = state.account_or_default(body.access_token.as_deref()) else {
        return unknown_account();
    };
    state
        .store
        .add_snippet(account, &body.canonical, &body.name, Utc::now());
    HttpResponse::NoContent().finish()
}

async fn snippet(shared: web::Data<Shared>, canonical: web::Path<String>) -> HttpResponse {
    match shared.lock().store.snippet_view(&canonical) {
        Some(snippet) => HttpResponse::Ok().json(snippet),
        None => control_error(StatusCode::NOT_FOUND, "unknown_snippet", "no such snippet"),
    }
}

async fn tokens(shared: web::Data<Shared>, canonical: web::Path<String>) -> HttpResponse {
    let tokens = shared.lock().store.live_tokens(&canonical);
    HttpResponse::Ok().json(tokens)
}

#[derive(Deserialize)]
struct NewTokenState {
    state: TokenState,
    access_token: Option<String>,
}

async fn set_access_token_state(
    shared: web::Data<Shared>,
    body: web::Json<NewTokenState>,
) -> HttpResponse {
    let mut state = shared.lock();
    let state = &mut *state;
    let token = body
        .access_token
        .as_deref()
        .unwrap_or(&state.default_access_token);
    if !state.store.set_token_state(token, body.state) {
        return unknown_account();
    }
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Forbidden {
    forbidden: bool,
}

async fn set_snippet_forbidden(
    shared: web::Data<Shared>,
    canonical: web::Path<String>,
    body: web::Json<Forbidden>,
) -> HttpResponse {
    shared
        .lock()
        .store
        .set_snippet_forbidden(&canonical, body.forbidden);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Hidden {
    hidden: bool,
}

async fn set_snippet_hidden(
    shared: web::Data<Shared>,
    canonical: web::Path<String>,
    body: web::Json<Hidden>,
) -> HttpResponse {
    shared
        .lock()
        .store
        .set_snippet_hidden(&canonical, body.hidden);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Truncate {
    count: u32,
    keep: usize,
}

async fn truncate_token_lists(
    shared: web::Data<Shared>,
    canonical: web::Path<String>,
    body: web::Json<Truncate>,
) -> HttpResponse {
    shared
        .lock()
        .store
        .truncate_token_lists(&canonical, body.count, body.keep);
    HttpResponse::NoContent().finish()
}

async fn truncations_left(shared: web::Data<Shared>, canonical: web::Path<String>) -> HttpResponse {
    let left = shared.lock().store.truncations_left(&canonical);
    HttpResponse::Ok().json(serde_json::json!({ "left": left }))
}

#[derive(Deserialize)]
struct Install {
    canonical: String,
    token: String,
}

async fn install(shared: web::Data<Shared>, body: web::Json<Install>) -> HttpResponse {
    let outcome = shared
        .lock()
        .store
        .install(&body.canonical, &body.token, Utc::now());
    match outcome {
        Ok(current_installs) => {
            HttpResponse::Ok().json(json!({ "current_installs": current_installs }))
        }
        Err(refusal) => {
            let status = match refusal {
                InstallError::UnknownSnippet | InstallError::UnknownToken => StatusCode::NOT_FOUND,
                InstallError::Revoked => StatusCode::GONE,
                InstallError::LimitReached { .. } => StatusCode::CONFLICT,
            };
            let mut body = serde_json::to_value(&refusal).unwrap_or(Value::Null);
            if let Some(map) = body.as_object_mut() {
                map.insert("message".to_owned(), Value::String(refusal.to_string()));
            }
            HttpResponse::build(status).json(body)
        }
    }
}

async fn calls(shared: web::Data<Shared>) -> HttpResponse {
    let records: Vec<CallRecordJson> = {
        let state = shared.lock();
        state
            .calls
            .iter()
            .map(|record| CallRecordJson::from_record(record, state.epoch))
            .collect()
    };
    HttpResponse::Ok().json(records)
}

async fn take_calls(shared: web::Data<Shared>) -> HttpResponse {
    let records: Vec<CallRecordJson> = {
        let mut state = shared.lock();
        let epoch = state.epoch;
        state
            .calls
            .drain(..)
            .map(|record| CallRecordJson::from_record(&record, epoch))
            .collect()
    };
    HttpResponse::Ok().json(records)
}

async fn clear_calls(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().calls.clear();
    HttpResponse::NoContent().finish()
}

async fn faults(shared: web::Data<Shared>) -> HttpResponse {
    let rules = shared.lock().faults.rules();
    HttpResponse::Ok().json(rules)
}

async fn inject(shared: web::Data<Shared>, body: web::Json<FaultRule>) -> HttpResponse {
    let rule = body.into_inner();
    if let Some(problem) = rule.fault.problem() {
        return control_error(StatusCode::BAD_REQUEST, "bad_fault", problem);
    }
    shared.lock().faults.push(rule);
    HttpResponse::NoContent().finish()
}

async fn clear_faults(shared: web::Data<Shared>) -> HttpResponse {
    shared.lock().faults.clear();
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Switch {
    on: bool,
}

async fn set_free_plan_rate_limit(
    shared: web::Data<Shared>,
    body: web::Json<Switch>,
) -> HttpResponse {
    shared.lock().limiter.set_enabled(body.on);
    HttpResponse::NoContent().finish()
}
