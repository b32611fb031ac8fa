//! `POST /v1/admin/sellers` (invite) and `GET /v1/admin/sellers`: the platform operator's view of
//! the marketplace's sellers.

use actix_web::{HttpResponse, web};
use market_core::{Email, sellers};

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::sellers::{InviteRequest, InvitedBody, SellerBody};

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
