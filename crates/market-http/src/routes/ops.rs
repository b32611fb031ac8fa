//! Operations: `/healthz` (alive), `/readyz` (able to serve), `/metrics` (Prometheus).

use actix_web::{HttpResponse, web};
use market_core::health;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// The process is up. Never touches the database: a liveness probe must not restart an instance
/// because PostgreSQL is slow.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `sandbox` or `live`.
    pub mode: &'static str,
    pub database: &'static str,
    pub migrations: &'static str,
    /// The Xano credential: `healthy`, `unauthorized` or `forbidden`. Sales go on while it is
    /// refused (tokens come from the pool), so it does not make the instance unready.
    pub xano_credential: String,
}

/// Ready to serve: the database answers and has every migration this build knows.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let latest = market_core::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or_default();
    let applied = sqlx::query_scalar::<_, Option<i64>>(
        "select max(version) from _sqlx_migrations where success",
    )
    .fetch_one(state.db())
    .await;
    let (database, migrations) = match applied {
        Ok(Some(version)) if version >= latest => ("ok", "ok"),
        Ok(_) => ("ok", "pending"),
        Err(_) => ("unreachable", "unknown"),
    };
    let xano_credential = match health::get(state.db()).await {
        Ok(h) => h.state,
        Err(_) => "unknown".to_owned(),
    };
    let ready = database == "ok" && migrations == "ok";
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        mode: state.mode.as_str(),
        database,
        migrations,
        xano_credential,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics: HTTP by route and status, purchases by status, pool levels, jobs by state,
/// Xano and Stripe calls by outcome.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::not_found("metrics"));
    };
    metrics::refresh_gauges(state.db()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render()))
}
