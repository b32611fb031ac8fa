//! Wiring: settings in, a running server and job runner out. Tests build an [`Application`] on port 0
//! exactly as `market serve` does.

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use market_core::jobs::runner::Runner;
use market_core::receipt::ReceiptSecret;
use market_core::{JobsConfig, Market};
use secrecy::SecretString;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;
use url::Url;

use crate::catalog_cache::CatalogCache;
use crate::config::AdminToken;
use crate::error;
use crate::routes;
use crate::state::{AppState, Mode, origin_of};
use crate::stripe::StripeGateway;

/// How long an instance answers the public catalog from memory before reading it again: how far
/// behind a change made elsewhere (another instance, `market tiers apply`) it may be.
const CATALOG_TTL: Duration = Duration::from_secs(1);

/// Everything [`Application::build`] needs, already validated.
#[derive(Debug)]
pub struct Settings {
    pub listener: TcpListener,
    pub public_url: Option<Url>,
    pub database: PgConnectOptions,
    pub db_max_connections: u32,
    pub xano: master_api::Client,
    pub stripe_secret_key: SecretString,
    pub stripe_api_base: Url,
    pub stripe_webhook_secrets: Vec<SecretString>,
    pub admins: Vec<AdminToken>,
    pub receipt_secret: ReceiptSecret,
    pub cors_origins: Vec<Url>,
    pub jobs: JobsConfig,
    /// Whether to run the job runner in this process (tests of the HTTP layer alone may not).
    pub run_jobs: bool,
    pub mode: Mode,
    pub shutdown_grace: Duration,
}

/// A running instance: the HTTP server and its job runner.
pub struct Application {
    port: u16,
    public_url: Url,
    server: Server,
    state: web::Data<AppState>,
    runner: Option<Runner>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database (which must be migrated), builds the state and binds the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let port = settings.listener.local_addr()?.port();
        let public_url = match settings.public_url {
            Some(url) => url,
            None => Url::parse(&format!("http://127.0.0.1:{port}/"))?,
        };
        let db_config = market_core::db::DbConfig {
            max_connections: settings.db_max_connections,
            ..market_core::db::DbConfig::default()
        };
        let db = market_core::db::connect(settings.database, &db_config).await?;
        let market = Market::new(db, settings.xano, settings.jobs);
        let stripe = StripeGateway::new(
            &settings.stripe_secret_key,
            &settings.stripe_api_base,
            settings.stripe_webhook_secrets,
        )
        .map_err(anyhow::Error::msg)?;

        let mut return_origins: Vec<String> = settings.cors_origins.iter().map(origin_of).collect();
        return_origins.push(origin_of(&public_url));
        let state = web::Data::new(AppState {
            market: market.clone(),
            stripe,
            receipts: settings.receipt_secret,
            admins: settings.admins,
            public_url: public_url.clone(),
            return_origins,
            mode: settings.mode,
            metrics: crate::metrics::recorder(),
            catalog: CatalogCache::new(CATALOG_TTL),
        });

        let cors_origins: Vec<String> = settings.cors_origins.iter().map(origin_of).collect();
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(cors(&cors_origins))
                .wrap(from_fn(crate::metrics::track_requests))
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, error::envelope_bare_errors)
                        .handler(StatusCode::NOT_FOUND, error::envelope_bare_errors)
                        .handler(StatusCode::PAYLOAD_TOO_LARGE, error::envelope_bare_errors),
                )
                .wrap(from_fn(request_id_header))
                .wrap(TracingLogger::default())
                .app_data(server_state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(error::json_error),
                )
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .configure(routes::configure)
                .default_service(web::to(error::route_not_found))
        })
        .listen(settings.listener)?
        .shutdown_timeout(settings.shutdown_grace.as_secs().max(1))
        .disable_signals()
        .run();

        let runner = settings.run_jobs.then(|| Runner::new(market));
        Ok(Self {
            port,
            public_url,
            server,
            state,
            runner,
            shutdown_grace: settings.shutdown_grace,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C; then stops accepting, lets in-flight requests finish, and
    /// hands back job leases.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (tests use a channel; the binary uses signals).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let (stop_jobs, jobs_stopped) = watch::channel(false);
        let runner = self.runner.map(|runner| {
            let grace = self.shutdown_grace;
            let mut stopped = jobs_stopped.clone();
            tokio::spawn(async move {
                runner
                        .run(
                            async move {
                                while stopped.changed().await.is_ok() && !*stopped.borrow() {}
                            },
                            grace,
                        )
                        .await;
            })
        });
        let server = tokio::spawn(self.server);
        stop.await;
        tracing::info!("shutting down: no new requests, finishing the ones in flight");
        let _ = stop_jobs.send(true);
        handle.stop(true).await;
        if let Some(runner) = runner {
            let _ = runner.await;
        }
        server.await.unwrap_or(Ok(()))
    }
}

/// Echoes the request id (made by `TracingLogger`, recorded in every log line of the request) in
/// the `x-request-id` response header, so a client can quote it.
async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(ToString::to_string);
    let mut response = next.call(req).await?;
    if let Some(value) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok())
    {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(response)
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers(["authorization", "content-type", "idempotency-key"])
        .expose_headers(["x-request-id"])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM handler not installed; only Ctrl-C stops the service");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
