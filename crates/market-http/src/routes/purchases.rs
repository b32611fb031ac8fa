//! `GET /v1/purchases/{id}`: a buyer's purchase, with the token, for the holder of its receipt key.

use actix_web::{HttpRequest, HttpResponse, web};
use market_core::PurchaseId;
use market_core::receipt::ReceiptKey;
use market_core::usage;

use crate::error::{ApiError, ErrorBody};
use crate::extract::bearer;
use crate::state::AppState;
use crate::wire::purchases::PurchaseBody;

/// A purchase, for its buyer. A wrong or missing receipt key answers exactly like an unknown
/// purchase (404), so ids reveal nothing. The token's install count is read from Xano first when
/// it is over a minute old (`token.usage_as_of` says when it was read).
#[utoipa::path(
    get,
    path = "/v1/purchases/{id}",
    tag = "purchases",
    params(("id" = Uuid, Path, description = "the purchase id")),
    responses((status = 200, body = PurchaseBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("receipt_key" = []))
)]
pub async fn get_purchase(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("purchase");
    let id: PurchaseId = id.parse().map_err(|_| not_found())?;
    let key = bearer(&req).ok_or_else(not_found)?;
    let receipt = usage::receipt(&state.market, id, &ReceiptKey::presented(key))
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(PurchaseBody::of(receipt, true)))
}
