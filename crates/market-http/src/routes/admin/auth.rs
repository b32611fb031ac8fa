//! Admin authentication: `Authorization: Bearer <admin token>`, compared in constant time with every
//! configured token. The matching token's name is the actor in the audit log.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use market_core::audit::Actor;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::routes::purchases::bearer;
use crate::state::AppState;

/// An authenticated operator.
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
