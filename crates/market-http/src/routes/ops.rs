//! Operations: `/healthz` (alive), `/readyz` (able to serve). Metrics are not here: they have a
//! listener of their own (`crate::metrics::serve`).

use actix_web::{HttpResponse, web};
use market_core::health;

use crate::state::AppState;
use crate::wire::ops::Readiness;

/// The process is up. Never touches the database: a liveness probe must not restart an instance
/// because PostgreSQL is slow.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and has every migration this build knows.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (database, migrations) = match market_core::db::migrations_pending(state.db()).await {
        Ok(false) => ("ok", "ok"),
        Ok(true) => ("ok", "pending"),
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
