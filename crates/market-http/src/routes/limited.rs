//! One middleware per class of public endpoint (`crate::limits`): each refuses with 429 when the
//! client is over its limit for that class.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use crate::limits::{self, Class};
use crate::state::AppState;

/// Refuses with 429 when the client is over its limit for `class`.
async fn limited(
    class: Class,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let (Some(state), Some(peer)) = (
        req.app_data::<web::Data<AppState>>(),
        req.peer_addr().map(|a| a.ip()),
    ) {
        let client = state.limits.client_ip(peer, || limits::forwarded_for(&req));
        if let Err(wait) = state.limits.check(class, client) {
            metrics::counter!("market_rate_limited_total", "class" => class.as_str()).increment(1);
            return Err(ApiError::rate_limited(wait).into());
        }
    }
    next.call(req).await
}

pub(super) async fn limit_portal(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Portal, req, next).await
}

pub(super) async fn limit_catalog(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Catalog, req, next).await
}

pub(super) async fn limit_checkout(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::Checkout, req, next).await
}

pub(super) async fn limit_success_page(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::SuccessPage, req, next).await
}

pub(super) async fn limit_purchase_read(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    limited(Class::PurchaseRead, req, next).await
}
