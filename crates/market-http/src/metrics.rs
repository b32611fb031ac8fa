//! Prometheus metrics through the `metrics` facade.
//!
//! Counters are incremented where things happen (HTTP middleware here, Stripe webhooks in the
//! handler, Xano calls in `master-api`). State-shaped figures (purchases by status, pool levels, jobs
//! by state, what Xano refuses) are read from PostgreSQL by [`refresh_every`], in the background, so
//! a scrape costs no query: they are the same whichever instance is scraped.
//!
//! Metrics are served on a listener of their own ([`serve`], `MARKET_METRICS_BIND`, loopback by
//! default), never on the public one: they reveal sales volumes.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio::sync::watch;

/// Installs the process-wide recorder once (several apps in one test process share it).
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// Counts and times every request by route *pattern* (never the concrete path: ids and session
/// ids would explode the label space and could leak into dashboards).
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!("market_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("market_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Sets the state-shaped gauges from the database.
pub async fn refresh_gauges(db: &PgPool) -> Result<(), market_core::Error> {
    let purchases = market_core::purchases::count_by_status(db).await?;
    for status in market_core::PurchaseStatus::ALL {
        let count = purchases
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("market_purchases", "status" => status.as_str()).set(count as f64);
    }
    // Every kind × state, 0 when there is none: a dead job requeued must clear its alert.
    let jobs = market_core::jobs::overview::counts(db).await?;
    for kind in market_core::queue::JobKind::ALL {
        for state in market_core::jobs::overview::STATES {
            let count = jobs
                .iter()
                .find(|j| j.kind == kind.as_str() && j.state == state)
                .map_or(0, |j| j.count);
            metrics::gauge!("market_jobs", "kind" => kind.as_str(), "state" => state)
                .set(count as f64);
        }
    }
    refresh_xano_gauges(db).await?;
    for level in market_core::pool::gauges(db).await? {
        let tier = level.tier_id.to_string();
        metrics::gauge!("market_pool_available", "tier" => tier.clone(), "slug" => level.slug.clone())
            .set(level.available as f64);
        metrics::gauge!("market_pool_target", "tier" => tier, "slug" => level.slug)
            .set(f64::from(level.pool_target));
    }
    Ok(())
}

/// What Xano refuses. Credentials in use (an instance touched theirs within the last minute):
/// counted by state, every state present (0 when none, so an alert clears), and 1/0 per credential
/// by the first 8 hex digits of its fingerprint. A credential no instance uses any more keeps its
/// last per-credential value in this process until it restarts; alert on the counts.
async fn refresh_xano_gauges(db: &PgPool) -> Result<(), market_core::Error> {
    let credentials = market_core::health::credentials(db).await?;
    for state in ["healthy", "unauthorized", "forbidden"] {
        let count = credentials
            .iter()
            .filter(|c| c.in_use && c.state == state)
            .count();
        metrics::gauge!("market_xano_credentials", "state" => state).set(count as f64);
    }
    for credential in credentials.iter().filter(|c| c.in_use) {
        metrics::gauge!("market_xano_credential_healthy", "credential" => credential.display_id.clone())
            .set(if credential.is_healthy() { 1.0 } else { 0.0 });
    }
    let forbidden = market_core::health::forbidden_listings(db).await?;
    metrics::gauge!("market_xano_forbidden_listings").set(forbidden.len() as f64);
    // Sellers' own credentials: a refused one parks that seller's work (alert on `unauthorized`).
    for (state, count) in market_core::seller_xano::count_by_state(db).await? {
        metrics::gauge!("market_seller_xano_credentials", "state" => state).set(count as f64);
    }
    Ok(())
}

/// The metrics listener: `GET /metrics` in Prometheus' text format, and nothing else. It renders
/// what the recorder holds; it never queries the database.
pub fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<Server> {
    let handle = web::Data::new(handle);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .listen(listener)?
    .disable_signals()
    .run())
}

async fn scrape(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

/// Refreshes the gauges now and every `interval` until `stop` turns true. A failed refresh keeps the
/// last figures (and is logged); the next one tries again.
pub async fn refresh_every(db: PgPool, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = refresh_gauges(&db).await {
            tracing::warn!(error = %e, "metrics gauges not refreshed");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
