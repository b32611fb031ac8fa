//! Prometheus metrics through the `metrics` facade.
//!
//! Counters are incremented where things happen (HTTP middleware here, Stripe webhooks in the
//! handler, Xano calls in `master-api`). State-shaped figures (purchases by status, pool levels, jobs
//! by state) are read from PostgreSQL at scrape time: they are the same whichever instance is
//! scraped, and no instance has to keep them in memory.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

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
    for job in market_core::jobs::overview::counts(db).await? {
        metrics::gauge!("market_jobs", "kind" => job.kind, "state" => job.state)
            .set(job.count as f64);
    }
    for level in market_core::pool::levels(db).await? {
        if level.active {
            let tier = level.tier_id.to_string();
            metrics::gauge!("market_pool_available", "tier" => tier.clone(), "slug" => level.slug.clone())
                .set(level.available as f64);
            metrics::gauge!("market_pool_target", "tier" => tier, "slug" => level.slug)
                .set(f64::from(level.pool_target));
        }
    }
    Ok(())
}
