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
use metrics_util::MetricKindMask;
use sqlx::PgPool;
use tokio::sync::watch;

/// How often the recorder's histograms are drained into their summaries (the exporter's default).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a gauge nobody sets any more is kept, at least (see [`gauges_idle`]).
const GAUGES_IDLE: Duration = Duration::from_secs(600);

/// How long the recorder keeps a gauge that is no longer set: four refreshes, at least
/// [`GAUGES_IDLE`]. Every gauge is set on every refresh while it means something; one that is not
/// (a tier no longer among the emptiest, a credential no instance uses) then leaves `/metrics`
/// instead of showing its last value for the life of the process.
pub fn gauges_idle(refresh: Duration) -> Duration {
    refresh.saturating_mul(4).max(GAUGES_IDLE)
}

/// Installs the process-wide recorder once (several apps in one test process share it: the first
/// call's `gauges_idle` holds), with the thread that keeps it ([`upkeep_every`]).
pub fn recorder(gauges_idle: Duration) -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::GAUGE, Some(gauges_idle))
            .install_recorder()
        {
            Ok(handle) => {
                let kept = handle.clone();
                if let Err(e) = std::thread::Builder::new()
                    .name("metrics-upkeep".to_owned())
                    .spawn(move || upkeep_every(&kept, UPKEEP_EVERY))
                {
                    tracing::warn!(error = %e, "metrics upkeep not started: histograms grow until scraped");
                }
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// Drains the histograms every `interval`, for the life of the process.
///
/// A histogram keeps every value recorded (8 bytes each) until something drains it into its
/// summary: a scrape, or this upkeep. `install_recorder` leaves upkeep to its caller, and the
/// recorder records whether or not anything scrapes it (`MARKET_METRICS_BIND` unset, or no
/// Prometheus): without it the request-duration histogram held 12.8 MiB after 1.6 million requests,
/// over half of the heap's peak in the benchmark (docs/PERFORMANCE.md, "sixth session"), and kept
/// growing. A thread of its own, not a task: the recorder outlives every runtime in the process
/// (tests build an app per runtime).
fn upkeep_every(handle: &PrometheusHandle, interval: Duration) -> ! {
    loop {
        std::thread::sleep(interval);
        handle.run_upkeep();
    }
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
    let pools = market_core::pool::gauges(db).await?;
    for (state, count) in [
        ("empty", pools.empty),
        ("low", pools.low),
        ("stocked", pools.stocked),
    ] {
        metrics::gauge!("market_pool_tiers", "state" => state).set(count as f64);
    }
    // The emptiest tiers by name; a tier no longer among them stops being set, and the recorder
    // drops its gauges once idle (`recorder`).
    for level in pools.emptiest {
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
/// by the first 8 hex digits of its fingerprint. A credential no instance uses any more leaves
/// `/metrics` once its gauge is idle ([`gauges_idle`]); alert on the counts.
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

#[cfg(test)]
mod tests {
    /// The names of this process's threads, as Linux lists them.
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    #[test]
    fn installing_the_recorder_starts_the_thread_that_drains_its_histograms() {
        assert!(super::recorder(super::GAUGES_IDLE).is_some());
        // The new thread names itself once it runs.
        let named = (0..200).any(|_| {
            let found = thread_names().iter().any(|name| name == "metrics-upkeep");
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            found
        });
        assert!(named, "{:?}", thread_names());
    }
}
