//! A seller's own API keys, under `/v1/seller/keys` (registered by [`super::seller::configure`]):
//! list them, issue a new one (shown once), revoke one. Rotation without downtime is issue, switch
//! every client to the new key, revoke the old one: both work until then. A seller cannot revoke its
//! last unrevoked key (`409 last_seller_key`); another seller's key id is `404`.

use actix_web::{HttpResponse, web};
use market_core::seller_keys::{self, LastKey};

use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::wire::seller_keys::{IssuedKeyBody, SellerKeyBody};

/// The seller's API keys, revoked ones included, oldest first: their ids and dates, never a key.
#[utoipa::path(get, path = "/v1/seller/keys", tag = "seller", operation_id = "seller_list_keys", security(("seller_key" = [])),
    responses((status = 200, body = [SellerKeyBody]), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = seller_keys::list(state.db(), seller.0.seller_id).await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(SellerKeyBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// Issues the seller a new API key, shown in this answer only (`Cache-Control: no-store`); its
/// other keys keep working until revoked. `409 seller_key_limit` when it holds 10 unrevoked keys.
#[utoipa::path(post, path = "/v1/seller/keys", tag = "seller", operation_id = "seller_issue_key", security(("seller_key" = [])),
    responses((status = 201, body = IssuedKeyBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the seller holds as many unrevoked keys as it may (`seller_key_limit`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn issue(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (record, key) = seller_keys::issue(state.db(), seller.0.seller_id, &seller.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(IssuedKeyBody::of(record, &key)))
}

/// Revokes one of the seller's keys (the one presented included, if another is left): it opens
/// nothing from now on. Revoking a revoked key changes nothing. Another seller's key id, or one of
/// no key, is `404`; the seller's last unrevoked key is `409 last_seller_key`.
#[utoipa::path(delete, path = "/v1/seller/keys/{key_id}", tag = "seller", operation_id = "seller_revoke_key", security(("seller_key" = [])),
    params(("key_id" = String, Path, description = "the key's id, from `GET /v1/seller/keys`", pattern = "^[0-9a-f]{16}$")),
    responses((status = 200, body = SellerKeyBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the seller's last unrevoked key (`last_seller_key`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn revoke(
    seller: SellerAuth,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let revoked = seller_keys::revoke(
        state.db(),
        seller.0.seller_id,
        &key_id,
        LastKey::Refused,
        &seller.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(SellerKeyBody::from(revoked)))
}
