//! `POST /v1/purchases/{id}/rotate`: the buyer replaces a leaked token, proving the purchase is
//! theirs with its receipt key or a portal session of the email it was bought with (sent as
//! `Authorization: Bearer`, never the cookie: a cross-site form cannot rotate anyone's token).
//! Operators rotate through `POST /v1/admin/purchases/{id}/rotate`.

use actix_web::{HttpRequest, HttpResponse, web};
use market_core::audit::Actor;
use market_core::{PurchaseId, rotation};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, buyer_purchase};
use crate::state::AppState;
use crate::wire::rotation::RotationBody;

/// Replaces the purchase's token: `202` with the rotation (the running one if one is under way).
/// The new token carries the installs already used; the old one stops working. A wrong key and an
/// unknown purchase are the same `404`; a purchase holding no working token is `409 not_rotatable`.
#[utoipa::path(post, path = "/v1/purchases/{id}/rotate", tag = "purchases",
    params(("id" = Uuid, Path, description = "the purchase id")),
    responses((status = 202, body = RotationBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("receipt_key" = []), ("portal_session" = [])))]
pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = buyer_purchase(&state, &req, &id).await?.purchase_id;
    let rotation = rotation::request(state.db(), id, &Actor::Buyer).await?;
    Ok(HttpResponse::Accepted().json(RotationBody::from(rotation)))
}

/// Replaces a purchase's token (a leak reported to support): as the buyer's rotation.
#[utoipa::path(post, path = "/v1/admin/purchases/{id}/rotate", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, body = RotationBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn admin_rotate(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let rotation = rotation::request(state.db(), PurchaseId(*id), &admin.actor()).await?;
    Ok(HttpResponse::Accepted().json(RotationBody::from(rotation)))
}
