//! Wiring: settings in, a running server and job runner out. Tests build an [`Application`] on port 0
//! exactly as `market serve` does.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use ipnet::IpNet;
use market_core::courier::{Courier, CourierConfig};
use market_core::deliverer::{Deliverer, DelivererConfig};
use market_core::jobs::runner::Runner;
use market_core::keys;
use market_core::postman::{Postman, Transport};
use market_core::receipt::ReceiptSecret;
use market_core::{FeeRate, JobsConfig, Market};
use secrecy::SecretString;
use tokio::sync::watch;
use url::Url;

mod database;

pub use database::{DbRoutes, DbSettings};

use crate::backfill::BackfillSettings;
use crate::catalog_cache::CatalogCache;
use crate::limits::{Limiters, RateLimits};
use crate::state::{AdminToken, AppState, Mode, origin_of};
use crate::stripe::StripeGateway;

/// How long an instance answers the public catalog from memory before reading it again: how far
/// behind a change made elsewhere (another instance, `market tiers apply`) it may be.
const CATALOG_TTL: Duration = Duration::from_secs(1);

/// Everything [`Application::build`] needs, already validated: built once, by the binary from its
/// flags and environment, or by a test.
#[derive(Debug)]
pub struct Settings {
    pub http: HttpSettings,
    pub db: DbSettings,
    /// The Xano client every job uses (the real API, or a simulator in sandbox mode).
    pub xano: master_api::Client,
    pub stripe: StripeSettings,
    /// The workers' tuning; `None` runs no job runner in this process (tests of the HTTP layer
    /// alone).
    pub jobs: Option<JobsConfig>,
    /// Whether `xano` and `stripe` are the real services or the simulators (`/readyz` says which).
    pub mode: Mode,
    /// Where to serve Prometheus metrics; `None` serves none (the public listener never does).
    pub metrics: Option<MetricsSettings>,
    /// Checking purchases pending too long against Stripe (`backfill`); `None` checks none.
    pub backfill: Option<BackfillSettings>,
    /// How buyers' email leaves; `None`: mail is disabled (messages are recorded `not_sent`).
    pub mail: Option<MailSettings>,
    /// Outgoing webhooks; `None`: endpoint URLs are checked by the strict production guard and
    /// this process delivers nothing (the events wait for an instance that does).
    pub webhooks: Option<WebhookSettings>,
}

/// Outgoing webhooks: how each leaves, and how this instance works through the outbox.
#[derive(Debug)]
pub struct WebhookSettings {
    /// The SSRF guard, timeout and user agent of every delivery and of the API's URL checks.
    pub courier: CourierConfig,
    /// `None`: this instance delivers nothing (others do); it still manages endpoints. Delivery
    /// also needs the job runner (`Settings::jobs`): an instance that runs no background work runs
    /// none of this either.
    pub deliverer: Option<DelivererConfig>,
}

/// Buyers' email: where it goes and who it is from.
#[derive(Debug)]
pub struct MailSettings {
    pub transport: Transport,
    /// `MARKET_MAIL_FROM`: a mailbox, `Name <address>` or a bare address.
    pub from: String,
}

/// The metrics listener, and how often the gauges read from the database are refreshed.
#[derive(Debug)]
pub struct MetricsSettings {
    pub listener: TcpListener,
    pub refresh: Duration,
}

/// The HTTP side: where to listen, who may call, and how long to wait at shutdown.
#[derive(Debug)]
pub struct HttpSettings {
    pub listener: TcpListener,
    /// Where buyers reach this service; defaults to `http://127.0.0.1:<port>/`.
    pub public_url: Option<Url>,
    /// Storefront origins allowed to call the API from browsers (and to be return pages).
    pub cors_origins: Vec<Url>,
    pub admins: Vec<AdminToken>,
    pub receipt_secret: ReceiptSecret,
    pub shutdown_grace: Duration,
    /// Per-client limits of the public endpoints.
    pub rate_limits: RateLimits,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the client; nobody else's are read.
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    pub api_base: Url,
    pub webhook_secrets: Vec<SecretString>,
    /// The platform's share of sellers' sales (`MARKET_PLATFORM_FEE_BPS`); a seller's own rate
    /// wins.
    pub platform_fee: FeeRate,
}

/// A running instance: the HTTP server, its job runner, and its metrics listener.
pub struct Application {
    port: u16,
    public_url: Url,
    server: Server,
    state: web::Data<AppState>,
    runner: Option<Runner>,
    deliverer: Option<Deliverer>,
    metrics: Option<Metrics>,
    backfill: Option<BackfillSettings>,
    shutdown_grace: Duration,
}

/// The metrics listener while it runs.
struct Metrics {
    port: u16,
    server: Server,
    refresh: Duration,
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
        Self::build_routed(settings, DbRoutes::default()).await
    }

    /// [`Application::build`] through a pooler, or with a read replica, as `routes` says.
    pub async fn build_routed(settings: Settings, routes: DbRoutes) -> anyhow::Result<Self> {
        // One TLS provider for every client of the process (Stripe's, Xano's), chosen here once.
        master_api::install_crypto_provider();
        let Settings {
            http,
            db,
            xano,
            stripe,
            jobs,
            mode,
            metrics,
            backfill,
            mail,
            webhooks,
        } = settings;
        let port = http.listener.local_addr()?.port();
        let public_url = match http.public_url {
            Some(url) => url,
            None => Url::parse(&format!("http://127.0.0.1:{port}/"))?,
        };
        let (pool, replica) = database::open(&db, &routes).await?;
        let envelope = Arc::new(keys::open(&pool, db.data_keys).await?);
        // Before any worker runs: tokens stored before they were sealed are sealed now.
        let sealed = keys::seal_plain_tokens(&pool, &envelope).await?;
        if sealed > 0 {
            tracing::info!(
                tokens = sealed,
                "sealed install tokens stored in plain text"
            );
        }
        tracing::info!(
            stripe.api_version = %crate::intake::expected_api_version(),
            "Stripe events are read leniently; pin the webhook endpoint to this API version"
        );
        let run_jobs = jobs.is_some();
        let mut market = Market::new(pool, xano, envelope, jobs.unwrap_or_default());
        if let Some(replica) = replica {
            market = market.with_read_db(replica);
        }
        if let Some(mail) = mail {
            let postman = Postman::new(mail.transport, &mail.from, public_url.as_str())
                .map_err(anyhow::Error::msg)?
                .with_link_secret(http.receipt_secret.clone());
            market = market.with_postman(postman);
        }
        let (courier, delivering) = match webhooks {
            Some(webhooks) => (webhooks.courier, webhooks.deliverer),
            None => (CourierConfig::default(), None),
        };
        let courier = Courier::new(courier).map_err(anyhow::Error::msg)?;
        market = market.with_courier(courier.clone());
        let platform_fee = stripe.platform_fee;
        let stripe =
            StripeGateway::new(&stripe.secret_key, &stripe.api_base, stripe.webhook_secrets)
                .map_err(anyhow::Error::msg)?;

        let mut return_origins: Vec<String> = http.cors_origins.iter().map(origin_of).collect();
        return_origins.push(origin_of(&public_url));
        let state = web::Data::new(AppState {
            market: market.clone(),
            stripe,
            receipts: http.receipt_secret,
            admins: http.admins,
            public_url: public_url.clone(),
            return_origins,
            mode,
            catalog: CatalogCache::new(CATALOG_TTL),
            limits: Limiters::new(&http.rate_limits, http.trusted_proxies.clone()),
            platform_fee,
        });

        let cors_origins: Vec<String> = http.cors_origins.iter().map(origin_of).collect();
        let server =
            crate::server::http_server(&state, cors_origins, http.listener, http.shutdown_grace)?;

        let deliverer = delivering
            .filter(|_| run_jobs)
            .map(|config| Deliverer::new(market.clone(), courier, config));
        let runner = run_jobs.then(|| Runner::new(market));
        // Counters are recorded whether or not this instance serves them.
        let recorder = crate::metrics::recorder(crate::metrics::gauges_idle(
            metrics.as_ref().map_or(Duration::ZERO, |m| m.refresh),
        ));
        let metrics = match (metrics, recorder) {
            (Some(settings), Some(handle)) => Some(Metrics {
                port: settings.listener.local_addr()?.port(),
                server: crate::metrics::serve(settings.listener, handle)?,
                refresh: settings.refresh,
            }),
            (Some(_), None) => anyhow::bail!("the metrics recorder could not be installed"),
            (None, _) => None,
        };
        Ok(Self {
            port,
            public_url,
            server,
            state,
            runner,
            deliverer,
            metrics,
            backfill,
            shutdown_grace: http.shutdown_grace,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// The metrics listener's port, when this instance serves metrics.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|m| m.port)
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
        let deliverer = self.deliverer.map(|deliverer| {
            let mut stopped = jobs_stopped.clone();
            tokio::spawn(async move {
                deliverer
                    .run(async move {
                        while stopped.changed().await.is_ok() && !*stopped.borrow() {}
                    })
                    .await;
            })
        });
        let metrics = self.metrics.map(|metrics| {
            let refresh = tokio::spawn(crate::metrics::refresh_every(
                self.state.db().clone(),
                metrics.refresh,
                jobs_stopped.clone(),
            ));
            (
                metrics.server.handle(),
                tokio::spawn(metrics.server),
                refresh,
            )
        });
        let forgetting = tokio::spawn(forget_idle_clients(
            self.state.clone(),
            jobs_stopped.clone(),
        ));
        let backfilling = self.backfill.map(|settings| {
            tokio::spawn(crate::backfill::run(
                self.state.clone(),
                settings,
                jobs_stopped.clone(),
            ))
        });
        let server = tokio::spawn(self.server);
        stop.await;
        tracing::info!("shutting down: no new requests, finishing the ones in flight");
        let _ = stop_jobs.send(true);
        handle.stop(true).await;
        if let Some(runner) = runner {
            let _ = runner.await;
        }
        if let Some(deliverer) = deliverer {
            let _ = deliverer.await;
        }
        let _ = forgetting.await;
        if let Some(backfilling) = backfilling {
            let _ = backfilling.await;
        }
        if let Some((handle, server, refresh)) = metrics {
            handle.stop(true).await;
            let _ = server.await;
            let _ = refresh.await;
        }
        server.await.unwrap_or(Ok(()))
    }
}

/// Every minute, drops the rate-limit state of clients whose limits are full again, so memory
/// follows the clients of the last minutes, not every address ever seen.
async fn forget_idle_clients(state: web::Data<AppState>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => state.limits.forget_idle(),
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
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
