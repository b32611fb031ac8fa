//! Every webhook endpoint, under `/v1/admin/webhooks`: the platform's own (receiving every
//! seller's events) and any seller's, with the same operations as the seller API
//! (`routes::seller_webhooks`), and a list filtered by seller or to the failing ones (what the
//! dashboard shows).

use actix_web::{HttpResponse, web};
use market_core::webhooks::{EndpointFilter, Scope};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::routes::webhook_endpoints as ops;
use crate::state::AppState;
use crate::wire::object::Object;
use crate::wire::webhooks::{
    AdminCreateEndpointRequest, AttemptsBody, CreatedEndpointBody, DeliveriesBody, DeliveriesQuery,
    DeliveryBody, EndpointBody, EndpointsBody, EndpointsQuery, LogQuery, ReplayRequest,
    ReplayedBody, RollQuery, RolledSecretBody, UpdateEndpointRequest,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}/secret/roll").route(web::post().to(roll)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}/deliveries")
            .route(web::get().to(deliveries)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}/attempts").route(web::get().to(attempts)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
            .route(web::post().to(redeliver)),
    )
    .service(
        web::resource("/v1/admin/webhooks/{endpoint_id}/replay").route(web::post().to(replay)),
    );
}

/// Every endpoint, newest first: the platform's and every seller's, or those `seller_id`,
/// `platform` and `failing` (disabled, or failing now) let through.
#[utoipa::path(get, path = "/v1/admin/webhooks", tag = "admin", operation_id = "admin_list_webhooks", security(("admin_token" = [])),
    params(EndpointsQuery),
    responses((status = 200, body = EndpointsBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<EndpointsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = EndpointFilter {
        seller: query.seller_id,
        platform_only: query.platform.unwrap_or(false),
        failing_only: query.failing.unwrap_or(false),
    };
    ops::list(&state, Scope::Operator, filter).await
}

/// Makes an endpoint, the platform's (no `seller_id`) or a seller's: `201` with its signing secret,
/// shown this once. The URL must be `https` and resolve to public addresses only; at most 10 per
/// owner (`409 webhook_endpoint_limit`).
#[utoipa::path(post, path = "/v1/admin/webhooks", tag = "admin", operation_id = "admin_create_webhook", security(("admin_token" = [])),
    request_body = AdminCreateEndpointRequest,
    responses((status = 201, body = CreatedEndpointBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "the owner has 10 endpoints (`webhook_endpoint_limit`)", body = ErrorBody)))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<Object<AdminCreateEndpointRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().0;
    ops::create(
        &state,
        &admin.actor(),
        body.seller_id,
        &body.url,
        body.description,
        &body.event_types,
        body.include_token,
    )
    .await
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/admin/webhooks/{endpoint_id}", tag = "admin", operation_id = "admin_get_webhook", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path)),
    responses((status = 200, body = EndpointBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    ops::get(&state, Scope::Operator, id.into_inner()).await
}

/// Changes an endpoint: its URL (checked again), description, event types, whether token events
/// carry the token, and `enabled` (enabling a disabled endpoint sends what was queued, in order).
#[utoipa::path(patch, path = "/v1/admin/webhooks/{endpoint_id}", tag = "admin", operation_id = "admin_update_webhook", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path)),
    request_body = UpdateEndpointRequest,
    responses((status = 200, body = EndpointBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Object<UpdateEndpointRequest>>,
) -> Result<HttpResponse, ApiError> {
    ops::update(
        &state,
        Scope::Operator,
        &admin.actor(),
        id.into_inner(),
        body.into_inner().0,
    )
    .await
}

/// Deletes an endpoint with its secrets, deliveries and log.
#[utoipa::path(delete, path = "/v1/admin/webhooks/{endpoint_id}", tag = "admin", operation_id = "admin_delete_webhook", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    ops::delete(&state, Scope::Operator, &admin.actor(), id.into_inner()).await
}

/// Rolls the endpoint's signing secret: the new one is shown this once; the previous one keeps
/// signing for `overlap_seconds` (both signatures are sent meanwhile), so the receiver can switch
/// without refusing a delivery.
#[utoipa::path(post, path = "/v1/admin/webhooks/{endpoint_id}/secret/roll", tag = "admin", operation_id = "admin_roll_webhook_secret", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path), RollQuery),
    responses((status = 200, body = RolledSecretBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn roll(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<RollQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::roll(
        &state,
        Scope::Operator,
        &admin.actor(),
        id.into_inner(),
        &query,
    )
    .await
}

/// The endpoint's deliveries, newest first: one per event, with its state and last answer.
#[utoipa::path(get, path = "/v1/admin/webhooks/{endpoint_id}/deliveries", tag = "admin", operation_id = "admin_webhook_deliveries", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, body = DeliveriesBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::deliveries(&state, Scope::Operator, id.into_inner(), &query).await
}

/// The endpoint's delivery log, newest first: every attempt's status, latency and first KiB of
/// the answer, or why there was none.
#[utoipa::path(get, path = "/v1/admin/webhooks/{endpoint_id}/attempts", tag = "admin", operation_id = "admin_webhook_attempts", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path), LogQuery),
    responses((status = 200, body = AttemptsBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn attempts(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    ops::attempts(&state, Scope::Operator, id.into_inner(), &query).await
}

/// Sends one delivery again now, with the same `webhook-id` (its retries start over).
#[utoipa::path(post, path = "/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", tag = "admin", operation_id = "admin_redeliver_webhook", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path), ("delivery_id" = i64, Path, minimum = 1)),
    responses((status = 202, body = DeliveryBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    ops::redeliver(&state, Scope::Operator, &admin.actor(), id, delivery).await
}

/// Sends again every event of `[from, to)` the endpoint receives (at most 10 000), each with its
/// own `webhook-id` as before, in order per purchase.
#[utoipa::path(post, path = "/v1/admin/webhooks/{endpoint_id}/replay", tag = "admin", operation_id = "admin_replay_webhooks", security(("admin_token" = [])),
    params(("endpoint_id" = Uuid, Path)),
    request_body = ReplayRequest,
    responses((status = 202, body = ReplayedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Object<ReplayRequest>>,
) -> Result<HttpResponse, ApiError> {
    ops::replay(
        &state,
        Scope::Operator,
        &admin.actor(),
        id.into_inner(),
        &body.0.0,
    )
    .await
}
