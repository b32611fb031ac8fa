//! The pipeline every `/v1` request goes through, in Stripe's order:
//!
//! 1. authenticate the secret key (`Authorization: Bearer sk_…`), 401 otherwise;
//! 2. route it; an unknown path or method is a 404 "Unrecognized request URL";
//! 3. read the form parameters (the query string for GET);
//! 4. for a POST with an `Idempotency-Key`: replay a saved answer, or refuse a reused key;
//! 5. the endpoint's logic, under the state lock so that step 4 and 5 are one atomic step;
//! 6. record the call, and answer with `Request-Id` (and the idempotency headers).

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use super::connect::{accounts, links, reversals};
use super::error::ApiError;
use super::events;
use super::form::Params;
use super::idempotency::{self, Lookup, Saved};
use super::model::CallRecord;
use super::refunds;
use super::sessions;
use super::state::{Origin, Shared, SimState};

/// One of the endpoints the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    CreateSession,
    ListSessions,
    RetrieveSession(String),
    ExpireSession(String),
    SessionLineItems(String),
    CreateRefund,
    RetrieveRefund(String),
    RetrieveCharge(String),
    ListEvents,
    RetrieveEvent(String),
    CreateAccount,
    RetrieveAccount(String),
    CreateLoginLink(String),
    CreateAccountLink,
    RetrieveTransfer(String),
    CreateTransferReversal(String),
    RetrieveApplicationFee(String),
    CreateFeeRefund(String),
}

impl Route {
    fn parse(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v1/")?.trim_end_matches('/');
        let segments: Vec<&str> = rest.split('/').collect();
        let post = method == Method::POST;
        let get = method == Method::GET;
        let id = |segment: &str| (!segment.is_empty()).then(|| segment.to_owned());
        match segments.as_slice() {
            ["checkout", "sessions"] if post => Some(Self::CreateSession),
            ["checkout", "sessions"] if get => Some(Self::ListSessions),
            ["checkout", "sessions", session] if get => id(session).map(Self::RetrieveSession),
            ["checkout", "sessions", session, "expire"] if post => {
                id(session).map(Self::ExpireSession)
            }
            ["checkout", "sessions", session, "line_items"] if get => {
                id(session).map(Self::SessionLineItems)
            }
            ["refunds"] if post => Some(Self::CreateRefund),
            ["refunds", refund] if get => id(refund).map(Self::RetrieveRefund),
            ["charges", charge] if get => id(charge).map(Self::RetrieveCharge),
            ["events"] if get => Some(Self::ListEvents),
            ["events", event] if get => id(event).map(Self::RetrieveEvent),
            ["accounts"] if post => Some(Self::CreateAccount),
            ["accounts", account] if get => id(account).map(Self::RetrieveAccount),
            ["accounts", account, "login_links"] if post => id(account).map(Self::CreateLoginLink),
            ["account_links"] if post => Some(Self::CreateAccountLink),
            ["transfers", transfer] if get => id(transfer).map(Self::RetrieveTransfer),
            ["transfers", transfer, "reversals"] if post => {
                id(transfer).map(Self::CreateTransferReversal)
            }
            ["application_fees", fee] if get => id(fee).map(Self::RetrieveApplicationFee),
            ["application_fees", fee, "refunds"] if post => id(fee).map(Self::CreateFeeRefund),
            _ => None,
        }
    }

    /// The path template, for logs: real paths carry ids.
    fn template(&self) -> &'static str {
        match self {
            Self::CreateSession => "POST /v1/checkout/sessions",
            Self::ListSessions => "GET /v1/checkout/sessions",
            Self::RetrieveSession(_) => "GET /v1/checkout/sessions/{id}",
            Self::ExpireSession(_) => "POST /v1/checkout/sessions/{id}/expire",
            Self::SessionLineItems(_) => "GET /v1/checkout/sessions/{id}/line_items",
            Self::CreateRefund => "POST /v1/refunds",
            Self::RetrieveRefund(_) => "GET /v1/refunds/{id}",
            Self::RetrieveCharge(_) => "GET /v1/charges/{id}",
            Self::ListEvents => "GET /v1/events",
            Self::RetrieveEvent(_) => "GET /v1/events/{id}",
            Self::CreateAccount => "POST /v1/accounts",
            Self::RetrieveAccount(_) => "GET /v1/accounts/{id}",
            Self::CreateLoginLink(_) => "POST /v1/accounts/{id}/login_links",
            Self::CreateAccountLink => "POST /v1/account_links",
            Self::RetrieveTransfer(_) => "GET /v1/transfers/{id}",
            Self::CreateTransferReversal(_) => "POST /v1/transfers/{id}/reversals",
            Self::RetrieveApplicationFee(_) => "GET /v1/application_fees/{id}",
            Self::CreateFeeRefund(_) => "POST /v1/application_fees/{id}/refunds",
        }
    }

    fn handle(
        &self,
        state: &mut SimState,
        params: &Params,
        origin: &Origin,
    ) -> Result<Value, ApiError> {
        match self {
            Self::CreateSession => sessions::create(state, params),
            Self::ListSessions => sessions::list(state, params),
            Self::RetrieveSession(id) => sessions::retrieve(state, id, params),
            Self::ExpireSession(id) => sessions::expire(state, id, origin),
            Self::SessionLineItems(id) => sessions::line_items_list(state, id),
            Self::CreateRefund => refunds::create(state, params, origin),
            Self::RetrieveRefund(id) => refunds::retrieve(state, id),
            Self::RetrieveCharge(id) => refunds::retrieve_charge(state, id),
            Self::ListEvents => events::list(state, params),
            Self::RetrieveEvent(id) => events::retrieve(state, id),
            Self::CreateAccount => accounts::create(state, params),
            Self::RetrieveAccount(id) => accounts::retrieve(state, id),
            Self::CreateLoginLink(id) => accounts::create_login_link(state, id),
            Self::CreateAccountLink => links::create(state, params),
            Self::RetrieveTransfer(id) => reversals::retrieve_transfer(state, id),
            Self::CreateTransferReversal(id) => {
                reversals::create_reversal(state, id, params, origin)
            }
            Self::RetrieveApplicationFee(id) => reversals::retrieve_fee(state, id),
            Self::CreateFeeRefund(id) => reversals::create_fee_refund(state, id, params, origin),
        }
    }
}

/// What the pipeline decided, before it becomes a response.
struct Answer {
    status: StatusCode,
    body: String,
    /// The original request's id when this answer is an idempotent replay.
    replay_of: Option<String>,
    template: &'static str,
}

impl Answer {
    fn error(error: &ApiError, template: &'static str) -> Self {
        Self {
            status: error.status,
            body: error.body().to_string(),
            replay_of: None,
            template,
        }
    }
}

/// The request's facts the pipeline needs, read once from the headers.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    api_key: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

pub(crate) async fn serve(
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let incoming = Incoming {
        method: req.method(),
        path: req.path(),
        query: req.query_string(),
        body: &body,
        api_key: bearer_token(&req),
        idempotency_key: header("idempotency-key"),
    };
    let stripe_version = header("stripe-version");
    let (answer, request_id, api_version) = {
        let mut state = shared.lock();
        let request_id = state.new_id("req_", 14);
        let answer = answer_locked(&mut state, &incoming, &request_id);
        state.calls.push(CallRecord {
            method: incoming.method.to_string(),
            path: incoming.path.to_owned(),
            query: incoming.query.to_owned(),
            status: answer.status.as_u16(),
            idempotency_key: incoming.idempotency_key.map(str::to_owned),
            replayed: answer.replay_of.is_some(),
            stripe_version: stripe_version.map(str::to_owned),
            request_id: request_id.clone(),
            at: Utc::now(),
        });
        (answer, request_id, state.api_version.clone())
    };
    // Only the path template and the status: keys, bodies and ids stay out of logs.
    tracing::debug!(
        stripe.route = answer.template,
        http.status = answer.status.as_u16(),
        replayed = answer.replay_of.is_some(),
        "stripe sim answered"
    );
    let mut response = HttpResponse::build(answer.status);
    response
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header(("Request-Id", request_id))
        .insert_header(("Stripe-Version", stripe_version.unwrap_or(&api_version)));
    if let Some(key) = incoming.idempotency_key {
        response.insert_header(("Idempotency-Key", key));
    }
    if let Some(original) = answer.replay_of {
        response
            .insert_header(("Idempotent-Replayed", "true"))
            .insert_header(("Original-Request", original));
    }
    response.body(answer.body)
}

fn answer_locked(state: &mut SimState, incoming: &Incoming<'_>, request_id: &str) -> Answer {
    const UNROUTED: &str = "(unknown route)";
    match incoming.api_key {
        None => return Answer::error(&ApiError::no_api_key(), UNROUTED),
        Some(key) if key != state.api_key => {
            return Answer::error(&ApiError::invalid_api_key(key), UNROUTED);
        }
        Some(_) => {}
    }
    let Some(route) = Route::parse(incoming.method, incoming.path) else {
        let error = ApiError::unrecognized_url(incoming.method.as_str(), incoming.path);
        return Answer::error(&error, UNROUTED);
    };
    let template = route.template();
    let input = if incoming.method == Method::GET {
        incoming.query.as_bytes()
    } else {
        incoming.body
    };
    let params = match Params::parse(input) {
        Ok(params) => params,
        Err(error) => return Answer::error(&error, template),
    };
    // Stripe ignores idempotency keys on GET and DELETE.
    let key = incoming
        .idempotency_key
        .filter(|_| incoming.method == Method::POST);
    let fingerprint =
        idempotency::fingerprint(incoming.method.as_str(), incoming.path, &params.pairs);
    if let Some(key) = key {
        if key.len() > 255 {
            return Answer::error(&ApiError::idempotency_key_too_long(), template);
        }
        match state.idempotency.lookup(key, &fingerprint) {
            Lookup::Run => {}
            Lookup::Replay(saved) => {
                return Answer {
                    status: StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK),
                    body: saved.body,
                    replay_of: Some(saved.request_id),
                    template,
                };
            }
            Lookup::Mismatch => {
                return Answer::error(&ApiError::idempotency_mismatch(key), template);
            }
        }
    }
    let origin = Origin {
        request_id: Some(request_id.to_owned()),
        idempotency_key: key.map(str::to_owned),
    };
    match route.handle(state, &params, &origin) {
        Ok(body) => {
            let body = body.to_string();
            if let Some(key) = key {
                let saved = Saved {
                    fingerprint,
                    status: StatusCode::OK.as_u16(),
                    body: body.clone(),
                    request_id: request_id.to_owned(),
                };
                state.idempotency.save(key, saved);
            }
            Answer {
                status: StatusCode::OK,
                body,
                replay_of: None,
                template,
            }
        }
        // Failed validation saves nothing: the same key may be retried with fixed parameters.
        Err(error) => Answer::error(&error, template),
    }
}

/// The key of an `Authorization: Bearer <key>` header (scheme matched case-insensitively).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Any path outside `/v1`, `/pay`, `/connect` and `/__sim`: Stripe's 404 body.
pub(crate) async fn unrecognized(req: HttpRequest) -> HttpResponse {
    ApiError::unrecognized_url(req.method().as_str(), req.path()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_method_and_shape() {
        let session = Route::parse(&Method::GET, "/v1/checkout/sessions/cs_test_1");
        assert_eq!(
            session,
            Some(Route::RetrieveSession("cs_test_1".to_owned()))
        );
        assert_eq!(
            Route::parse(&Method::POST, "/v1/checkout/sessions"),
            Some(Route::CreateSession)
        );
        assert_eq!(Route::parse(&Method::DELETE, "/v1/checkout/sessions"), None);
        assert_eq!(Route::parse(&Method::GET, "/v1/customers"), None);
        assert_eq!(Route::parse(&Method::GET, "/v2/refunds/re_1"), None);
        assert_eq!(
            Route::parse(&Method::POST, "/v1/transfers/tr_1/reversals"),
            Some(Route::CreateTransferReversal("tr_1".to_owned()))
        );
        assert_eq!(
            Route::parse(&Method::POST, "/v1/accounts//login_links"),
            None
        );
    }
}
