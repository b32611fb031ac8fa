//! The request pipeline every `/api:meta` request goes through, in the order Xano's edge and
//! backend would apply it:
//!
//! 1. record the call (a guard writes the record however the request ends), with whose token it
//!    carries and whose snippet it names;
//! 2. route it; an unknown path or method is a 404 before anything else;
//! 3. injected faults in scope for the token's account: latency, then a 429, a 5xx or a dropped
//!    connection;
//! 4. authenticate the bearer token (401/403), then the free-plan rate limit (429);
//! 5. a snippet forbidden on its own (403), then the endpoint's logic; for a committed token
//!    creation, commit-then-fail faults.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::body::Fields;
use super::call_guard::CallGuard;
use super::caller::Caller;
use super::endpoint::{Endpoint, Route};
use super::error::XanoError;
use super::fault_engine::{AfterCommit, Disruption};
use super::handlers;
use super::state::{Shared, SimState};

/// The path the simulated API lives under, as on `https://app.xano.com/api:meta`.
pub(crate) const BASE_PATH: &str = "/api:meta";

pub(crate) async fn serve(
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let shared = shared.get_ref().clone();
    let mut call = CallGuard::start(
        shared.clone(),
        req.method().as_str(),
        req.path(),
        req.query_string(),
    );
    let relative = req.path().strip_prefix(BASE_PATH).unwrap_or_default();
    let route = Route::parse(req.method(), relative);
    let caller = Caller::of(
        &shared.lock().store,
        bearer_token(&req),
        route.as_ref().and_then(Route::canonical),
    );
    let account = caller.account.clone();
    call.set_caller(caller);
    let Some(route) = route else {
        return respond(&mut call, None, XanoError::unknown_route().into_response());
    };
    let endpoint = route.endpoint();
    call.set_endpoint(endpoint);

    let (delay, disruption) = {
        let mut state = shared.lock();
        let state = &mut *state;
        state
            .faults
            .before(endpoint, account.as_deref(), &mut state.rng)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match disruption {
        None => {}
        Some(Disruption::DropConnection) => return dropped_connection(endpoint),
        Some(Disruption::RateLimited { retry_after }) => {
            let policy = shared.lock().limiter.policy;
            let error = XanoError::too_many_requests(policy, retry_after);
            return respond(&mut call, Some(endpoint), error.into_response());
        }
        Some(Disruption::ServerError { status }) => {
            return respond(
                &mut call,
                Some(endpoint),
                XanoError::fatal(status).into_response(),
            );
        }
    }

    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let fields = Fields::parse(content_type, &body);
    let outcome = serve_locked(
        &mut shared.lock(),
        bearer_token(&req),
        &route,
        req.query_string(),
        fields,
    );
    let body = match outcome {
        Ok(body) => body,
        Err(error) => return respond(&mut call, Some(endpoint), error.into_response()),
    };

    if endpoint == Endpoint::CreateToken {
        // The token is already stored at this point: whatever goes wrong now, it exists.
        let after_commit = shared.lock().faults.after_commit(account.as_deref());
        match after_commit {
            None => {}
            Some(AfterCommit::Fail) => {
                return respond(
                    &mut call,
                    Some(endpoint),
                    XanoError::fatal(500).into_response(),
                );
            }
            Some(AfterCommit::Stall(stall)) => tokio::time::sleep(stall).await,
            Some(AfterCommit::Drop) => return dropped_connection(endpoint),
        }
    }
    respond(&mut call, Some(endpoint), HttpResponse::Ok().json(body))
}

fn serve_locked(
    state: &mut SimState,
    bearer: Option<&str>,
    route: &Route,
    query: &str,
    fields: Result<Fields, XanoError>,
) -> Result<Value, XanoError> {
    let account = state.store.authenticate(bearer)?;
    if !state.limiter.admit(account, Instant::now()) {
        // Xano documents no Retry-After for its plan limit, so none is sent.
        return Err(XanoError::too_many_requests(state.limiter.policy, None));
    }
    if let Some(canonical) = route.canonical() {
        let deletion = matches!(route, Route::DeleteToken { .. });
        state.store.check_snippet_allowed(canonical, deletion)?;
    }
    handlers::handle(state, account, route, query, fields)
}

/// The token of an `Authorization: Bearer <token>` header (scheme matched case-insensitively).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn respond(
    call: &mut CallGuard,
    endpoint: Option<Endpoint>,
    response: HttpResponse,
) -> HttpResponse {
    let status = response.status().as_u16();
    call.set_status(status);
    // Only the path template is logged: real paths carry canonicals and install token values.
    let template = endpoint.map_or("(unknown route)", Endpoint::template);
    tracing::debug!(
        xano.endpoint = template,
        http.status = status,
        "xano sim answered"
    );
    response
}

/// A response that never reaches the client. actix writes the status line into its buffer,
/// then polls the body; the body fails on its first poll, and actix closes the connection
/// without flushing that buffer. The client sees the connection close with no response at all,
/// a transport error rather than an HTTP status. The call stays logged with no status.
fn dropped_connection(endpoint: Endpoint) -> HttpResponse {
    tracing::debug!(
        xano.endpoint = endpoint.template(),
        "xano sim dropped the connection"
    );
    HttpResponse::Ok().body(FailingBody)
}

struct FailingBody;

impl MessageBody for FailingBody {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "simulated dropped connection",
        ))))
    }
}
