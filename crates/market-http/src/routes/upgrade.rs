//! `POST /v1/purchases/{id}/upgrade`: the buyer moves a purchase to a higher tier of its listing,
//! proving it is theirs with its receipt key or a portal session of its email (as
//! `Authorization: Bearer`, never the cookie). The answer is a Checkout for the difference; once it
//! is paid, the same token allows the new tier's installs (`market_core::upgrades`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use market_core::audit::Actor;
use market_core::{TierId, upgrades};

use super::checkout::{Sessions, return_url};
use crate::error::{ApiError, ErrorBody};
use crate::extract::buyer_purchase;
use crate::state::AppState;
use crate::wire::upgrade::{UpgradeRequest, UpgradeResponse};

/// Starts an upgrade: `201` with the Checkout to pay the difference (`200` with the same one when
/// asked again while it is unpaid). A wrong key and an unknown purchase are the same `404`; an
/// unknown tier `404`; `409 not_upgradable` (no working token, or the purchase is itself an
/// upgrade), `not_an_upgrade` (not a higher tier of the same listing), `upgrade_in_progress`
/// (another upgrade is unpaid or being applied), `tier_not_on_sale`.
#[utoipa::path(post, path = "/v1/purchases/{id}/upgrade", tag = "purchases",
    params(("id" = Uuid, Path, description = "the purchase id")),
    request_body = UpgradeRequest,
    responses((status = 201, body = UpgradeResponse), (status = 200, body = UpgradeResponse),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("receipt_key" = []), ("portal_session" = [])))]
pub async fn upgrade(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<UpgradeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = buyer_purchase(&state, &req, &id).await?.purchase_id;
    let body = body.into_inner();
    let sessions = Sessions {
        stripe: &state.stripe,
        public_url: &state.public_url,
        success_url: return_url(&state, body.success_url.as_ref(), "success_url")?,
        cancel_url: return_url(&state, body.cancel_url.as_ref(), "cancel_url")?,
    };
    // Boxed: the Stripe request inside makes this future large.
    let started = Box::pin(upgrades::request(
        state.db(),
        &state.receipts,
        id,
        TierId(body.tier_id),
        state.platform_fee,
        &sessions,
        &Actor::Buyer,
    ))
    .await?;
    let status = if started.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let upgrade = started.purchase;
    Ok(HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(UpgradeResponse {
            upgrade_id: upgrade.purchase_id.0,
            purchase_id: id.0,
            tier_id: upgrade.tier_id.0,
            price: (&upgrade.price).into(),
            max_installs: upgrade.max_installs,
            checkout_url: started.checkout_url,
            receipt_key: started.receipt_key.expose().to_owned(),
        }))
}
