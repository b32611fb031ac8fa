//! A seller's webhook endpoints, under `/v1/seller/webhooks`: make one (its secret shown once),
//! list, read, change, enable or disable, delete; roll its secret; read its deliveries and its
//! delivery log; send one delivery again; replay a time range. Another seller's endpoint is `404`.
//! Events and their payloads are in the document's `webhooks` section.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use market_core::webhooks::{EndpointFilter, Scope};
use uuid::Uuid;

use super::limited::{limit_portal, limit_purchase_read};
use super::webhook_endpoints as ops;
use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::wire::object::Object;
use crate::wire::webhooks::{
    AttemptsBody, CreateEndpointRequest, CreatedEndpointBody, DeliveriesBody, DeliveriesQuery,
    DeliveryBody, EndpointBody, EndpointsBody, LogQuery, ReplayRequest, ReplayedBody, RollQuery,
    RolledSecretBody, UpdateEndpointRequest,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/seller/webhooks")
            .route(web::get().to(list).wrap(from_fn(limit_purchase_read)))
            .route(web::post().to(create).wrap(from_fn(limit_portal))),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}")
            .route(web::get().to(get).wrap(from_fn(limit_purchase_read)))
            .route(web::patch().to(update).wrap(from_fn(limit_portal)))
            .route(web::delete().to(delete).wrap(from_fn(limit_portal))),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}/secret/roll")
            .wrap(from_fn(limit_portal))
            .route(web::post().to(roll)),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}/deliveries")
            .wrap(from_fn(limit_purchase_read))
            .route(web::get().to(deliveries)),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}/attempts")
            .wrap(from_fn(limit_purchase_read))
            .route(web::get().to(attempts)),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
            .wrap(from_fn(limit_portal))
            .route(web::post().to(redeliver)),
    )
    .service(
        web::resource("/v1/seller/webhooks/{endpoint_id}/replay")
            .wrap(from_fn(limit_portal))
            .route(web::post().to(replay)),
    );
}

fn scope(seller: &SellerAuth) -> Scope {
    Scope::Seller(seller.0.seller_id)
}

/// The seller's endpoints, newest first.
#[utoipa::path(get, path = "/v1/seller/webhooks", tag = "seller", operation_id = "seller_list_webhooks", security(("seller_key" = [])),
    responses((status = 200, body = EndpointsBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn list(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    ops::list(&state, scope(&seller), EndpointFilter::default()).await
}

/// Makes an endpoint: `201` with its signing secret, shown this once. The URL must be `https` and
/// resolve to public addresses only (`400` naming the address otherwise); at most 10 endpoints
/// (`409 webhook_endpoint_limit`).
#[utoipa::path(post, path = "/v1/seller/webhooks", tag = "seller", operation_id = "seller_create_webhook", security(("seller_key" = [])),
    request_body = CreateEndpointRequest,
    responses((status = 201, body = CreatedEndpointBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the seller has 10 endpoints (`webhook_endpoint_limit`)", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    seller: SellerAuth,
    state: web::Data<AppState>,
    body: web::Json<Object<CreateEndpointRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().0;
    ops::create(
        &state,
        &seller.actor(),
        Some(seller.0.seller_id),
        &body.url,
        body.description,
        &body.event_types,
        body.include_token,
    )
    .await
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/seller/webhooks/{endpoint_id}", tag = "seller", operation_id = "seller_get_webhook", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path)),
    responses((status = 200, body = EndpointBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn get(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    ops::get(&state, scope(&seller), id.into_inner()).await
}

/// Changes an endpoint: its URL (checked again), description, event types, whether token events
/// carry the token, and `enabled` (enabling a disabled endpoint sends what was queued, in order).
#[utoipa::path(patch, path = "/v1/seller/webhooks/{endpoint_id}", tag = "seller", operation_id = "seller_update_webhook", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path)),
    request_body = UpdateEndpointRequest,
    responses((status = 200, body = EndpointBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn update(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Object<UpdateEndpointRequest>>,
) -> Result<HttpResponse, ApiError> {
    ops::update(
        &state,
        scope(&seller),
        &seller.actor(),
        id.into_inner(),
        body.into_inner().0,
    )
    .await
}

/// Deletes an endpoint with its secrets, deliveries and log.
#[utoipa::path(delete, path = "/v1/seller/webhooks/{endpoint_id}", tag = "seller", operation_id = "seller_delete_webhook", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn delete(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    ops::delete(&state, scope(&seller), &seller.actor(), id.into_inner()).await
}

/// Rolls the endpoint's signing secret: the new one is shown this once; the previous one keeps
/// signing for `overlap_seconds` (both signatures are sent meanwhile), so the receiver can switch
/// without refusing a delivery.
#[utoipa::path(post, path = "/v1/seller/webhooks/{endpoint_id}/secret/roll", tag = "seller", operation_id = "seller_roll_webhook_secret", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path), RollQuery),
    responses((status = 200, body = RolledSecretBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn roll(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<RollQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::roll(
        &state,
        scope(&seller),
        &seller.actor(),
        id.into_inner(),
        &query,
    )
    .await
}

/// The endpoint's deliveries, newest first: one per event, with its state and last answer.
#[utoipa::path(get, path = "/v1/seller/webhooks/{endpoint_id}/deliveries", tag = "seller", operation_id = "seller_webhook_deliveries", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, body = DeliveriesBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn deliveries(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::deliveries(&state, scope(&seller), id.into_inner(), &query).await
}

/// The endpoint's delivery log, newest first: every attempt's status, latency and first KiB of
/// the answer, or why there was none.
#[utoipa::path(get, path = "/v1/seller/webhooks/{endpoint_id}/attempts", tag = "seller", operation_id = "seller_webhook_attempts", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path), LogQuery),
    responses((status = 200, body = AttemptsBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn attempts(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::attempts(&state, scope(&seller), id.into_inner(), &query).await
}

/// Sends one delivery again now, with the same `webhook-id` (its retries start over).
#[utoipa::path(post, path = "/v1/seller/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", tag = "seller", operation_id = "seller_redeliver_webhook", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path), ("delivery_id" = i64, Path, minimum = 1)),
    responses((status = 202, body = DeliveryBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn redeliver(
    seller: SellerAuth,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    ops::redeliver(&state, scope(&seller), &seller.actor(), id, delivery).await
}

/// Sends again every event of `[from, to)` the endpoint receives (at most 10 000), each with its
/// own `webhook-id` as before, in order per purchase.
#[utoipa::path(post, path = "/v1/seller/webhooks/{endpoint_id}/replay", tag = "seller", operation_id = "seller_replay_webhooks", security(("seller_key" = [])),
    params(("endpoint_id" = Uuid, Path)),
    request_body = ReplayRequest,
    responses((status = 202, body = ReplayedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn replay(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Object<ReplayRequest>>,
) -> Result<HttpResponse, ApiError> {
    ops::replay(
        &state,
        scope(&seller),
        &seller.actor(),
        id.into_inner(),
        &body.0.0,
    )
    .await
}
