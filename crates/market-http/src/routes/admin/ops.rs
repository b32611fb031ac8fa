//! Admin: pool levels, jobs, what Xano refuses (credentials, snippets), reconcile now, and the Xano
//! account's instances.

use actix_web::{HttpResponse, web};
use market_core::jobs::overview;
use market_core::{health, pool, queue, reconcile};

use crate::error::{ApiError, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;
use crate::wire::ops::{
    HealthBody, InstanceBody, JobRequeued, JobsBody, PoolLevelBody, ReportBody,
};

/// Every tier's pool: available and assigned tokens against the low-water mark and target.
#[utoipa::path(get, path = "/v1/admin/pools", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = [PoolLevelBody]), (status = 401, body = ErrorBody)))]
pub async fn pools(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let levels = pool::levels(state.db()).await?;
    Ok(HttpResponse::Ok().json(
        levels
            .into_iter()
            .map(PoolLevelBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// Background jobs by kind and state, the ones needing attention, every Xano credential in use and
/// the listings whose snippet Xano forbids.
#[utoipa::path(get, path = "/v1/admin/jobs", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = JobsBody), (status = 401, body = ErrorBody)))]
pub async fn jobs(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let overview = overview::read(state.db()).await?;
    Ok(HttpResponse::Ok().json(JobsBody::from(overview)))
}

/// Puts a dead job back in the queue, due now, with its attempts counted afresh (after the cause
/// is fixed: a snippet restored at Xano, a credential renewed). The sweep also revives owed work on
/// its own an hour after its job died.
#[utoipa::path(post, path = "/v1/admin/jobs/{job_id}/requeue", tag = "admin", security(("admin_token" = [])),
    params(("job_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = JobRequeued), (status = 404, body = ErrorBody),
               (status = 409, description = "the job is not dead (`job_not_dead`), or its work is queued again already (`job_already_live`)", body = ErrorBody)))]
pub async fn requeue_job(
    admin: Admin,
    state: web::Data<AppState>,
    job_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    queue::requeue(state.db(), *job_id, &admin.actor()).await?;
    Ok(HttpResponse::Ok().json(JobRequeued {
        job_id: *job_id,
        state: "queued".into(),
    }))
}

/// What Xano refuses: this instance's credential (and whether `/readyz` drains it), every
/// credential instances use, and the listings whose snippet Xano forbids (their jobs are parked).
#[utoipa::path(get, path = "/v1/admin/health", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = HealthBody), (status = 401, body = ErrorBody)))]
pub async fn credential_health(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let own = health::readiness(&state.market).await?;
    let credentials = health::credentials(state.db()).await?;
    let forbidden = health::forbidden_listings(state.db()).await?;
    Ok(HttpResponse::Ok().json(HealthBody::new(own, credentials, forbidden)))
}

/// Reconciles every listing with Xano now and returns what each run did.
#[utoipa::path(post, path = "/v1/admin/reconcile", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = [ReportBody]), (status = 502, body = ErrorBody)))]
pub async fn reconcile_now(
    admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reports = reconcile::all(&state.market, &admin.actor()).await?;
    Ok(HttpResponse::Ok().json(
        reports
            .into_iter()
            .map(ReportBody::from)
            .collect::<Vec<_>>(),
    ))
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
