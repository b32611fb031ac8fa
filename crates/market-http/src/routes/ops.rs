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

/// Ready to serve: the database answers and has every migration this build knows, and Xano does
/// not refuse this instance's credential while another instance's works (a stale token left
/// running during a rotation: the load balancer drains this instance, the others serve).
///
/// A read replica that does not answer is reported (`read_replica`) but does not make the
/// instance unready: nothing that sells, pays or fulfils reads there, and draining every instance
/// because the replica is down would stop sales for the sake of the reports.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (database, migrations) = match market_core::db::migrations_pending(state.db()).await {
        Ok(false) => ("ok", "ok"),
        Ok(true) => ("ok", "pending"),
        Err(_) => ("unreachable", "unknown"),
    };
    let replica_down = replica_unreachable(&state).await;
    let credential = health::readiness(&state.market).await.ok();
    let drain = credential.as_ref().filter(|c| c.should_drain());
    let reason = if database != "ok" {
        Some("the database is unreachable".to_owned())
    } else if migrations != "ok" {
        Some("the database lacks migrations this build needs; run `market migrate`".to_owned())
    } else {
        drain.map(|c| {
            format!(
                "Xano refuses this instance's credential {} ({}) while credential {} works: \
                 give this instance the current XANO_ACCESS_TOKEN and restart it",
                c.credential.display_id,
                c.credential.state,
                c.working_elsewhere.as_deref().unwrap_or_default()
            )
        })
    };
    let body = Readiness {
        status: if reason.is_none() {
            "ready"
        } else {
            "not_ready"
        },
        mode: state.mode.as_str(),
        database,
        read_replica: state.market.has_read_replica().then_some(if replica_down {
            "unreachable"
        } else {
            "ok"
        }),
        migrations,
        xano_credential: credential
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |c| c.credential.state.clone()),
        xano_credential_id: state.market.credential().display_id(),
        reason,
    };
    if body.reason.is_none() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether this instance has a read replica and it does not answer (one query).
async fn replica_unreachable(state: &AppState) -> bool {
    state.market.has_read_replica()
        && sqlx::query_scalar::<_, i32>("select 1")
            .fetch_one(state.read_db())
            .await
            .is_err()
}
