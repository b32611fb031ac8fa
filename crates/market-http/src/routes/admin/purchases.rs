//! Admin: purchases, with filters and cursor pagination; one purchase with its audit trail;
//! revoke; refund through Stripe.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use market_core::audit::{self, Audit};
use market_core::payments;
use market_core::purchases::{self, Purchase, PurchaseFilter};
use market_core::{PurchaseId, PurchaseStatus, TierId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::routes::purchases::{PurchaseBody, receipt_body};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// pending, paid, fulfilled, refunded, disputed, revoked, expired, failed
    pub status: Option<String>,
    pub tier_id: Option<Uuid>,
    pub email: Option<String>,
    /// 1-200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRow {
    pub purchase_id: Uuid,
    pub status: String,
    pub tier_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub amount_refunded: i64,
    pub email: Option<String>,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&Purchase> for PurchaseRow {
    fn from(p: &Purchase) -> Self {
        Self {
            purchase_id: p.purchase_id.0,
            status: p.status.to_string(),
            tier_id: p.tier_id.0,
            amount: p.amount,
            currency: p.currency.clone(),
            amount_refunded: p.amount_refunded,
            email: p.email.clone(),
            checkout_session_id: p.checkout_session_id.clone(),
            payment_intent_id: p.payment_intent_id.clone(),
            created_at: p.created_at,
            paid_at: p.paid_at,
            fulfilled_at: p.fulfilled_at,
            closed_at: p.closed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchasePage {
    pub purchases: Vec<PurchaseRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Purchases, newest first.
#[utoipa::path(get, path = "/v1/admin/purchases", tag = "admin", security(("admin_token" = [])), params(ListQuery),
    responses((status = 200, body = PurchasePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_purchases(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be 1-200",
        ));
    }
    let filter = PurchaseFilter {
        status: query
            .status
            .as_deref()
            .map(str::parse::<PurchaseStatus>)
            .transpose()?,
        tier: query.tier_id.map(TierId),
        email: query.email,
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
    Ok(HttpResponse::Ok().json(PurchasePage {
        purchases: page.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// `<microseconds since epoch>.<purchase id>`: opaque to clients, readable in logs.
fn encode_cursor(at: DateTime<Utc>, id: PurchaseId) -> String {
    format!("{}.{}", at.timestamp_micros(), id.0.simple())
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, PurchaseId), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this API returned");
    let (micros, id) = cursor.split_once('.').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPurchase {
    pub purchase: PurchaseRow,
    pub receipt: PurchaseBody,
    #[schema(value_type = Vec<Object>)]
    pub audit: Vec<audit::AuditEntry>,
}

/// One purchase: its row, what the buyer sees (token included), and its audit trail.
#[utoipa::path(get, path = "/v1/admin/purchases/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = AdminPurchase), (status = 404, body = ErrorBody)))]
pub async fn get_purchase(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let purchase = load(&state, *id).await?;
    let receipt = purchases::receipt_of(state.db(), &purchase).await?;
    let audit = audit::for_purchase(state.db(), purchase.purchase_id).await?;
    Ok(HttpResponse::Ok().json(AdminPurchase {
        purchase: (&purchase).into(),
        receipt: receipt_body(receipt, true),
        audit,
    }))
}

async fn load(state: &AppState, id: Uuid) -> Result<Purchase, ApiError> {
    purchases::by_id(state.db(), PurchaseId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("purchase"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub purchase_id: Uuid,
    pub status: String,
    /// What happened: `revoking`, `status_changed`, `no_change`, `refund_requested`.
    pub outcome: String,
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

/// Refunds the payment in full through Stripe. The token is revoked when Stripe's `charge.refunded`
/// event arrives, like any other refund. Asking twice refunds once.
#[utoipa::path(post, path = "/v1/admin/purchases/{id}/refund", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, body = ActionResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn refund_purchase(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let purchase = load(&state, *id).await?;
    let Some(payment_intent) = purchase
        .payment_intent_id
        .as_deref()
        .filter(|_| purchase.status.is_owed_a_token())
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_refundable",
            "only paid purchases can be refunded",
        ));
    };
    state
        .stripe
        .refund(purchase.purchase_id, payment_intent)
        .await
        .map_err(|e| ApiError::upstream("Stripe", e))?;
    let mut conn = state.db().acquire().await?;
    Audit::new(&admin.actor(), "purchase.refund_requested")
        .purchase(purchase.purchase_id)
        .write(&mut conn)
        .await?;
    Ok(HttpResponse::Accepted().json(ActionResult {
        purchase_id: *id,
        status: purchase.status.to_string(),
        outcome: "refund_requested".into(),
    }))
}
