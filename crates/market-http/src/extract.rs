//! What handlers take from a request beside its body and path: the bearer credential, an
//! idempotency key, an authenticated admin, and an authenticated seller. Each is parsed here once,
//! so a handler receives a checked value or the request is refused in the error envelope before the
//! handler runs.

use std::future::{Ready, ready};

use futures::future::LocalBoxFuture;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use market_core::audit::Actor;
use market_core::sellers::{self, Seller, SellerKey};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The `Authorization: Bearer <value>` of a request.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The optional `Idempotency-Key` header, as text. Its rules (length, characters) are the
/// domain's (`market_core::purchases`); here it only has to be a visible-ASCII header value.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = match req.headers().get("idempotency-key") {
            None => Ok(Self(None)),
            Some(value) => value
                .to_str()
                .map(|key| Self(Some(key.to_owned())))
                .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII")),
        };
        ready(key)
    }
}

/// An authenticated operator: `Authorization: Bearer <admin token>`, compared in constant time
/// with every configured token. The matching token's name is the actor in the audit log.
#[derive(Debug, Clone)]
pub struct Admin {
    pub name: String,
}

impl Admin {
    pub fn actor(&self) -> Actor {
        Actor::Admin(self.name.clone())
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(ApiError::unauthorized)?;
    let presented = bearer(req).ok_or_else(ApiError::unauthorized)?.as_bytes();
    // Every token is compared (no early exit), so timing says nothing about which one came close.
    let mut found = None;
    for admin in &state.admins {
        let matches: bool = admin
            .token
            .expose_secret()
            .as_bytes()
            .ct_eq(presented)
            .into();
        if matches {
            found = Some(admin.name.clone());
        }
    }
    found.map(|name| Admin { name }).ok_or_else(|| {
        metrics::counter!("market_admin_auth_failures_total").increment(1);
        ApiError::unauthorized()
    })
}

/// An authenticated seller: `Authorization: Bearer <seller API key>` of an active seller. Anything
/// else is `401`, the same for a wrong, revoked or suspended seller's key.
#[derive(Debug, Clone)]
pub struct SellerAuth(pub Seller);

impl SellerAuth {
    pub fn actor(&self) -> Actor {
        Actor::Seller(self.0.seller_id)
    }
}

impl FromRequest for SellerAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = bearer(req).map(SellerKey::presented);
        Box::pin(async move {
            let refused =
                || ApiError::new(Code::Unauthorized, "a valid seller API key is required");
            let (Some(state), Some(key)) = (state, key) else {
                return Err(refused());
            };
            sellers::by_key(state.db(), &key)
                .await?
                .map(Self)
                .ok_or_else(refused)
        })
    }
}

/// The purchase `id` names, when the request proves it is the caller's: `Authorization: Bearer`
/// with its receipt key, or a portal session of the email it was bought with (never the cookie: a
/// cross-site form cannot act on anyone's purchase). A bad id, no proof, a wrong one and an unknown
/// purchase are the same `404`, so ids reveal nothing.
pub async fn buyer_purchase(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
) -> Result<market_core::purchases::Purchase, ApiError> {
    let not_found = || ApiError::not_found("purchase");
    let id: market_core::PurchaseId = id.parse().map_err(|_| not_found())?;
    let proof = bearer(req).ok_or_else(not_found)?;
    let purchase = market_core::purchases::by_id(state.db(), id)
        .await?
        .ok_or_else(not_found)?;
    if !market_core::portal::buyer_owns(state.db(), proof, &purchase).await? {
        return Err(not_found());
    }
    Ok(purchase)
}
