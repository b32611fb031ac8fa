//! `POST /v1/admin/sellers` (invite), `GET /v1/admin/sellers` and
//! `PUT /v1/admin/sellers/{seller_id}/platform_fee`: the platform operator's view of the
//! marketplace's sellers.

use actix_web::{HttpResponse, web};
use market_core::{Email, FeeRate, connect, sellers};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::sellers::{InviteRequest, InvitedBody, PlatformFeeRequest, SellerBody};

/// Invites a seller: `201` with the seller and its API key, shown this once (only its hash is
/// kept). The seller then manages what it owns through the seller API (`/v1/seller/…`).
#[utoipa::path(post, path = "/v1/admin/sellers", tag = "admin", operation_id = "admin_invite_seller", security(("admin_token" = [])),
    request_body = InviteRequest,
    responses((status = 201, body = InvitedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn invite(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<InviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.contact_email)?;
    let (seller, key) = sellers::invite(state.db(), &body.name, &email, &admin.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(InvitedBody {
            seller: seller.into(),
            api_key: key.expose().to_owned(),
        }))
}

/// Every seller, the house first.
#[utoipa::path(get, path = "/v1/admin/sellers", tag = "admin", operation_id = "admin_list_sellers", security(("admin_token" = [])),
    responses((status = 200, body = [SellerBody]), (status = 401, body = ErrorBody)))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sellers: Vec<SellerBody> = sellers::list(state.db())
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(sellers))
}

/// Sets a seller's own platform fee (or, with `null`, goes back to the service's rate). Purchases
/// already started keep the fee they were made with.
#[utoipa::path(put, path = "/v1/admin/sellers/{seller_id}/platform_fee", tag = "admin", operation_id = "admin_set_seller_fee", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path)),
    request_body = PlatformFeeRequest,
    responses((status = 200, body = SellerBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_fee(
    admin: Admin,
    state: web::Data<AppState>,
    seller_id: web::Path<Uuid>,
    body: web::Json<PlatformFeeRequest>,
) -> Result<HttpResponse, ApiError> {
    let fee = body.platform_fee_bps.map(FeeRate::from_bps).transpose()?;
    let seller = connect::set_fee(state.db(), *seller_id, fee, &admin.actor()).await?;
    Ok(HttpResponse::Ok().json(SellerBody::from(seller)))
}
