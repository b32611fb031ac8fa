//! Admin: purchases, with filters (status, tier, listing, e-mail) and cursor pagination; one purchase with its audit trail;
//! revoke; refund through Stripe.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use market_core::audit;
use market_core::payments::{self, RefundRequest};
use market_core::purchases::{self, Purchase, PurchaseFilter};
use market_core::{ListingId, PurchaseId, PurchaseStatus, TierId};
use uuid::Uuid;

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::admin_purchases::{ActionResult, AdminPurchase, ListQuery, PurchasePage};
use crate::wire::purchases::PurchaseBody;

/// Purchases, newest first, filtered by any of status, tier, listing and e-mail; each filter is
/// read through an index, also on millions of purchases.
#[utoipa::path(get, path = "/v1/admin/purchases", tag = "admin", security(("admin_token" = [])), params(ListQuery),
    responses((status = 200, body = PurchasePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_purchases(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(page(&state, query.into_inner(), None).await?))
}

/// A page of purchases as `query` asks, of `seller`'s listings only when given (the seller API's
/// list is this one, scoped).
pub(crate) async fn page(
    state: &AppState,
    query: ListQuery,
    seller: Option<Uuid>,
) -> Result<PurchasePage, ApiError> {
    if query
        .email
        .as_deref()
        .is_some_and(|e| e.chars().count() > 254)
    {
        return Err(ApiError::invalid("email: at most 254 characters"));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1-200"));
    }
    let filter = PurchaseFilter {
        status: query
            .status
            .as_deref()
            .map(str::parse::<PurchaseStatus>)
            .transpose()?,
        tier: query.tier_id.map(TierId),
        listing: query.listing_id.map(ListingId),
        email: query.email,
        seller,
        before: query.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let page = purchases::list(state.db(), &filter).await?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| {
            page.last()
                .map(|p| encode_cursor(p.created_at, p.purchase_id))
        })
        .flatten();
    Ok(PurchasePage {
        purchases: page.iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// `<microseconds since epoch>.<purchase id>`: opaque to clients, readable in logs.
fn encode_cursor(at: DateTime<Utc>, id: PurchaseId) -> String {
    format!("{}.{}", at.timestamp_micros(), id.0.simple())
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, PurchaseId), ApiError> {
    let bad = || ApiError::new(Code::InvalidCursor, "cursor is not one this API returned");
    let (micros, id) = cursor.split_once('.').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// One purchase: its row, what the buyer sees (token included), and its audit trail.
#[utoipa::path(get, path = "/v1/admin/purchases/{id}", tag = "admin", operation_id = "admin_get_purchase", security(("admin_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = AdminPurchase), (status = 404, body = ErrorBody)))]
pub async fn get_purchase(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let purchase = load(&state, *id).await?;
    let receipt = purchases::receipt_of(state.db(), &state.market.envelope, &purchase).await?;
    let audit = audit::for_purchase(state.db(), purchase.purchase_id).await?;
    let payment = purchases::payment_moves(state.db(), &purchase).await?;
    Ok(HttpResponse::Ok().json(AdminPurchase {
        purchase: (&purchase).into(),
        receipt: PurchaseBody::of(receipt, true),
        audit: audit.into_iter().map(Into::into).collect(),
        payment: payment.map(Into::into),
    }))
}

async fn load(state: &AppState, id: Uuid) -> Result<Purchase, ApiError> {
    purchases::by_id(state.db(), PurchaseId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("purchase"))
}

/// Revokes access without refunding (a leaked token, abuse): the purchase becomes `revoked` and its
/// token is deleted at Xano.
#[utoipa::path(post, path = "/v1/admin/purchases/{id}/revoke", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = ActionResult), (status = 404, body = ErrorBody)))]
pub async fn revoke_purchase(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let outcome = payments::revoke_by_operator(state.db(), PurchaseId(*id), &admin.actor()).await?;
    let purchase = load(&state, *id).await?;
    Ok(HttpResponse::Ok().json(ActionResult {
        purchase_id: *id,
        status: purchase.status.to_string(),
        outcome: outcome.effect.as_str().to_owned(),
    }))
}

/// Refunds the payment in full through Stripe, and with it the payments of the purchase's upgrades
/// (paid, applied or reinstated ones). The token is revoked when Stripe's `charge.refunded` event
/// arrives, like any other refund. Asking twice refunds once; asking once the refund has
/// landed answers `200` with `outcome: already_refunded` (a retry whose first answer was lost
/// succeeds), and a purchase that was never paid, or is disputed or revoked, is a `409`.
#[utoipa::path(post, path = "/v1/admin/purchases/{id}/refund", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, body = ActionResult, description = "Stripe was asked to refund"),
        (status = 200, body = ActionResult, description = "Already refunded: nothing was asked"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn refund_purchase(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (purchase, request) =
        payments::request_refund(state.db(), PurchaseId(*id), &state.stripe, &admin.actor())
            .await?;
    let (mut response, outcome) = match request {
        RefundRequest::Requested => (HttpResponse::Accepted(), "refund_requested"),
        RefundRequest::AlreadyRefunded => (HttpResponse::Ok(), "already_refunded"),
    };
    Ok(response.json(ActionResult {
        purchase_id: *id,
        status: purchase.status.to_string(),
        outcome: outcome.into(),
    }))
}
