//! `POST /v1/admin/sellers` (invite), `GET /v1/admin/sellers` (with each one's Xano credential),
//! `PUT /v1/admin/sellers/{seller_id}/platform_fee`, a seller's API keys
//! (`/v1/admin/sellers/{seller_id}/keys`: list, issue, revoke) and its suspension
//! (`…/suspend`, `…/reactivate`): the platform operator's view of the marketplace's sellers.

use actix_web::{HttpResponse, web};
use market_core::seller_keys::{self, LastKey};
use market_core::{Email, FeeRate, connect, sellers};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::seller_keys::{IssuedKeyBody, SellerKeyBody};
use crate::wire::sellers::{
    AdminSellerBody, InviteRequest, InvitedBody, PlatformFeeRequest, SellerBody,
};

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

/// Every seller, the house first, each with its Xano credential's state (`xano`).
#[utoipa::path(get, path = "/v1/admin/sellers", tag = "admin", operation_id = "admin_list_sellers", security(("admin_token" = [])),
    responses((status = 200, body = [AdminSellerBody]), (status = 401, body = ErrorBody)))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sellers: Vec<AdminSellerBody> = sellers::list_with_xano(state.db())
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

/// A seller's API keys, revoked ones included, oldest first: ids and dates, never a key. An unknown
/// seller is `404`.
#[utoipa::path(get, path = "/v1/admin/sellers/{seller_id}/keys", tag = "admin", operation_id = "admin_list_seller_keys", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path)),
    responses((status = 200, body = [SellerKeyBody]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    _admin: Admin,
    state: web::Data<AppState>,
    seller_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    sellers::by_id(state.db(), *seller_id)
        .await?
        .ok_or_else(|| ApiError::not_found("seller"))?;
    let keys = seller_keys::list(state.db(), *seller_id).await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(SellerKeyBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// Issues a seller a new API key (one who lost theirs), shown in this answer only; its other keys
/// keep working until revoked. `409 house_has_no_key` for the house, `409 seller_key_limit` when
/// the seller holds 10 unrevoked keys.
#[utoipa::path(post, path = "/v1/admin/sellers/{seller_id}/keys", tag = "admin", operation_id = "admin_issue_seller_key", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path)),
    responses((status = 201, body = IssuedKeyBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the house has no key (`house_has_no_key`), or the seller holds as many as it may (`seller_key_limit`)", body = ErrorBody)))]
pub async fn issue_key(
    admin: Admin,
    state: web::Data<AppState>,
    seller_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (record, key) = seller_keys::issue(state.db(), *seller_id, &admin.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(IssuedKeyBody::of(record, &key)))
}

/// Revokes one of a seller's API keys, its last one included (locking the seller out until a new
/// key is issued). Revoking a revoked key changes nothing. A key id of no key of this seller is
/// `404`.
#[utoipa::path(delete, path = "/v1/admin/sellers/{seller_id}/keys/{key_id}", tag = "admin", operation_id = "admin_revoke_seller_key", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path), ("key_id" = String, Path, description = "the key's id", pattern = "^[0-9a-f]{16}$")),
    responses((status = 200, body = SellerKeyBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (seller_id, key_id) = path.into_inner();
    let revoked = seller_keys::revoke(
        state.db(),
        seller_id,
        &key_id,
        LastKey::MayGo,
        &admin.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(SellerKeyBody::from(revoked)))
}

/// Suspends a seller: its keys open nothing and its tiers leave the catalog and checkout; what its
/// buyers already paid for is served as usual. Idempotent. `409 house_not_suspendable` for the
/// house.
#[utoipa::path(post, path = "/v1/admin/sellers/{seller_id}/suspend", tag = "admin", operation_id = "admin_suspend_seller", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path)),
    responses((status = 200, body = SellerBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the house cannot be suspended (`house_not_suspendable`)", body = ErrorBody)))]
pub async fn suspend(
    admin: Admin,
    state: web::Data<AppState>,
    seller_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let seller = sellers::suspend(state.db(), *seller_id, &admin.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(SellerBody::from(seller)))
}

/// Reactivates a suspended seller: its unrevoked keys work again and its tiers are back on sale
/// (while Stripe takes its charges). Idempotent.
#[utoipa::path(post, path = "/v1/admin/sellers/{seller_id}/reactivate", tag = "admin", operation_id = "admin_reactivate_seller", security(("admin_token" = [])),
    params(("seller_id" = Uuid, Path)),
    responses((status = 200, body = SellerBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reactivate(
    admin: Admin,
    state: web::Data<AppState>,
    seller_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let seller = sellers::reactivate(state.db(), *seller_id, &admin.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(SellerBody::from(seller)))
}
