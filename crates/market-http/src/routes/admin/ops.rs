//! Admin: pool levels, jobs and credential health, reconcile now, and the Xano account's instances.

use actix_web::{HttpResponse, web};
use market_core::jobs::overview;
use market_core::{health, pool, reconcile};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Every tier's pool: available and assigned tokens against the low-water mark and target.
#[utoipa::path(get, path = "/v1/admin/pools", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "pool levels per tier version"), (status = 401, body = ErrorBody)))]
pub async fn pools(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pool::levels(state.db()).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobsBody {
    /// `{kind, state, count}` for every kind and state present.
    #[schema(value_type = Vec<Object>)]
    pub counts: Vec<overview::JobCount>,
    /// Jobs that need an operator's eye: failed, parked, or retried more than 5 times.
    #[schema(value_type = Vec<Object>)]
    pub attention: Vec<overview::JobRow>,
    #[schema(value_type = Object)]
    pub xano_credential: health::Health,
}

/// Background jobs by kind and state, the ones needing attention, and the Xano credential's health.
#[utoipa::path(get, path = "/v1/admin/jobs", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = JobsBody), (status = 401, body = ErrorBody)))]
pub async fn jobs(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = overview::counts(state.db()).await?;
    let attention = overview::needing_attention(state.db()).await?;
    let xano_credential = health::get(state.db()).await?;
    Ok(HttpResponse::Ok().json(JobsBody {
        counts,
        attention,
        xano_credential,
    }))
}

/// The Xano credential's health alone.
#[utoipa::path(get, path = "/v1/admin/health", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "healthy | unauthorized | forbidden, since when"), (status = 401, body = ErrorBody)))]
pub async fn credential_health(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(health::get(state.db()).await?))
}

/// Reconciles every listing with Xano now and returns what each run did.
#[utoipa::path(post, path = "/v1/admin/reconcile", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "one report per listing"), (status = 502, body = ErrorBody)))]
pub async fn reconcile_now(
    admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reports = reconcile::all(&state.market, &admin.actor()).await?;
    Ok(HttpResponse::Ok().json(reports))
}

/// An instance of the Xano account, as an instance switcher or agency dashboard needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceBody {
    /// The instance's key (`name`, or the `id` some older responses carry).
    pub name: Option<String>,
    pub display: Option<String>,
    /// Host of the instance (`x1234-….xano.io`).
    pub host: Option<String>,
    pub custom_domain: Option<String>,
    /// The instance's own Metadata API.
    pub meta_api: Option<String>,
    pub meta_swagger: Option<String>,
    /// Whether the free-plan rate limit applies.
    pub rate_limit: Option<bool>,
}

impl From<master_api::Instance> for InstanceBody {
    fn from(i: master_api::Instance) -> Self {
        Self {
            host: i.host().map(str::to_owned),
            display: i.label().map(str::to_owned),
            meta_api: i.meta_api_url().map(String::from),
            meta_swagger: i.swagger_url().map(str::to_owned),
            custom_domain: i.custom_domain,
            rate_limit: i.rate_limit,
            name: i.name.or(i.id),
        }
    }
}

#[utoipa::path(get, path = "/v1/admin/instances", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = [InstanceBody]), (status = 502, body = ErrorBody)))]
pub async fn instances(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let instances = state
        .market
        .xano
        .instances()
        .await
        .map_err(market_core::Error::Xano)?;
    Ok(HttpResponse::Ok().json(
        instances
            .into_iter()
            .map(InstanceBody::from)
            .collect::<Vec<_>>(),
    ))
}

#[utoipa::path(get, path = "/v1/admin/instances/{name}", tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path)), responses((status = 200, body = InstanceBody), (status = 404, body = ErrorBody)))]
pub async fn instance(
    _admin: Admin,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.market.xano.instance(&name).await {
        Ok(instance) => Ok(HttpResponse::Ok().json(InstanceBody::from(instance))),
        Err(master_api::Error::NotFound | master_api::Error::InvalidArgument { .. }) => {
            Err(ApiError::not_found("instance"))
        }
        Err(e) => Err(market_core::Error::Xano(e).into()),
    }
}
