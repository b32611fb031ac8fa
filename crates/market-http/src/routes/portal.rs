//! The buyer portal: `POST /v1/portal/links` mails a single-use sign-in link, `POST
//! /v1/portal/sessions` redeems it for a session (a cookie, and a bearer token for API clients),
//! `GET /v1/portal/purchases` lists the session's purchases, `DELETE /v1/portal/session` signs out.
//!
//! The cookie is `HttpOnly` (no script reads it), `Secure` and `SameSite=Lax` (not sent on
//! cross-site subrequests), scoped to `/v1/portal`. Only reads and signing out take it; anything
//! that changes a purchase will ask for the bearer token, which a cross-site form cannot send.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use market_core::portal::{self, PORTAL_LINK_MINUTES, SessionToken};
use market_core::{Email, usage};

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::bearer;
use crate::state::AppState;
use crate::wire::portal::{
    LinkRequest, LinkRequested, PortalPurchases, SessionBody, SessionRequest,
};
use crate::wire::purchases::PurchaseBody;

/// The portal session's cookie.
pub const COOKIE: &str = "market_portal";
const COOKIE_PATH: &str = "/v1/portal";

/// Mails a sign-in link to the address if it has bought here. Always `202`, with the same body,
/// for every well-formed address.
#[utoipa::path(post, path = "/v1/portal/links", tag = "portal", request_body = LinkRequest,
    responses((status = 202, body = LinkRequested), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn request_link(
    state: web::Data<AppState>,
    body: web::Json<LinkRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    portal::request_link(state.db(), &state.receipts, &email).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("cache-control", "no-store"))
        .json(LinkRequested {
            message: format!(
                "If this address has bought here, a sign-in link is on its way. It works once, \
                 for {PORTAL_LINK_MINUTES} minutes."
            ),
        }))
}

/// Redeems a sign-in link for a portal session. A link works once; an unknown, used or expired one
/// is `401 invalid_portal_link`.
#[utoipa::path(post, path = "/v1/portal/sessions", tag = "portal", request_body = SessionRequest,
    responses((status = 201, body = SessionBody, headers(("set-cookie" = String, description = "market_portal=<token>; HttpOnly; Secure; SameSite=Lax; Path=/v1/portal"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn open_session(
    state: web::Data<AppState>,
    body: web::Json<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let opened = portal::open_session(state.db(), &body.link)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidPortalLink,
                "this sign-in link is unknown, used or expired: ask for a new one",
            )
        })?;
    let cookie = Cookie::build(COOKIE, opened.token.expose().to_owned())
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::hours(i64::from(portal::SESSION_HOURS)))
        .finish();
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .cookie(cookie)
        .json(SessionBody {
            token: opened.token.expose().to_owned(),
            expires_at: opened.expires_at,
        }))
}

/// Every purchase made with the session's email, newest first, with its token, usage and status.
#[utoipa::path(get, path = "/v1/portal/purchases", tag = "portal",
    responses((status = 200, body = PortalPurchases), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("portal_session" = []), ("portal_cookie" = [])))]
pub async fn purchases(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let email = session_email(&state, &req).await?;
    let receipts = usage::portal_purchases(&state.market, &email).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(PortalPurchases {
            purchases: receipts
                .into_iter()
                .map(|r| PurchaseBody::of(r, true))
                .collect(),
        }))
}

/// Signs out: the live session the request carries ends and its cookie is cleared (`204`); without
/// a live session there is nothing to end (`401`).
#[utoipa::path(delete, path = "/v1/portal/session", tag = "portal",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("portal_session" = []), ("portal_cookie" = [])))]
pub async fn end_session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    session_email(&state, &req).await?;
    if let Some(token) = presented(&req) {
        portal::end_session(state.db(), &token).await?;
    }
    let mut gone = Cookie::build(COOKIE, "").path(COOKIE_PATH).finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// The session token a request carries: the bearer token, else the cookie.
fn presented(req: &HttpRequest) -> Option<SessionToken> {
    bearer(req).map(SessionToken::presented).or_else(|| {
        req.cookie(COOKIE)
            .map(|c| SessionToken::presented(c.value()))
    })
}

async fn session_email(state: &AppState, req: &HttpRequest) -> Result<Email, ApiError> {
    let refused = || {
        ApiError::new(
            Code::Unauthorized,
            "a live portal session is required: sign in with a link",
        )
    };
    let token = presented(req).ok_or_else(refused)?;
    portal::session_email(state.db(), &token)
        .await?
        .ok_or_else(refused)
}
