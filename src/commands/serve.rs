//! `market serve` (and `market` alone): settings, database, simulators when in sandbox mode, then
//! the application until SIGTERM.

use std::net::TcpListener;

use market_http::startup::{self, Application, DbSettings, HttpSettings};
use market_http::state::Mode;
#[cfg(not(feature = "sandbox"))]
use secrecy as _;
use secrecy::{ExposeSecret, SecretString};

use super::migrate::migrate_before_serving;
use crate::config::ServeArgs;
use crate::settings::{Backends, Settings};

/// The simulators, while sandbox mode runs (a build without them never has any).
#[cfg(feature = "sandbox")]
type RunningSandbox = crate::sandbox_mode::Sandbox;
#[cfg(not(feature = "sandbox"))]
type RunningSandbox = std::convert::Infallible;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    #[cfg(feature = "failpoints")]
    market_http::crashpoints::activate_from_env()?;
    migrate_before_serving(&settings.db).await?;
    let bind = settings.http.bind;
    let listener =
        TcpListener::bind(bind).map_err(|e| anyhow::anyhow!("MARKET_BIND {bind}: {e}"))?;
    let metrics_bind = settings.http.metrics_bind;
    let metrics_listener = TcpListener::bind(metrics_bind)
        .map_err(|e| anyhow::anyhow!("MARKET_METRICS_BIND {metrics_bind}: {e}"))?;

    let Settings {
        db,
        http,
        xano,
        jobs,
        backends,
        mail,
        webhooks,
    } = settings;
    #[cfg_attr(
        not(feature = "sandbox"),
        expect(unused_variables, reason = "no simulators to show")
    )]
    let (mode, xano_client, stripe, sandbox) = match backends {
        Backends::Live { xano_token, stripe } => (
            Mode::Live,
            xano.client(xano_token)?,
            stripe,
            None::<RunningSandbox>,
        ),
        #[cfg(feature = "sandbox")]
        Backends::Sandbox {
            duplicate_events,
            tiers,
            platform_fee,
        } => {
            let port = listener.local_addr()?.port();
            let webhook = url::Url::parse(&format!("http://127.0.0.1:{port}/v1/webhooks/stripe"))?;
            let sandbox = crate::sandbox_mode::Sandbox::start(webhook, duplicate_events).await?;
            let simulated = crate::settings::XanoSettings {
                base_url: sandbox.xano.base_url(),
                ..xano
            };
            let client = simulated.client(SecretString::from(sandbox.xano.access_token()))?;
            seed(&sandbox, &db, &client, tiers.as_deref()).await?;
            let stripe = startup::StripeSettings {
                secret_key: SecretString::from(sandbox.stripe.api_key()),
                api_base: sandbox.stripe.base_url(),
                webhook_secrets: vec![sandbox.webhook_secret.clone()],
                platform_fee,
            };
            (Mode::Sandbox, client, stripe, Some(sandbox))
        }
    };

    let generated_admin = http.generated_admin;
    let routes = db.routes();
    let app = Application::build_routed(
        startup::Settings {
            http: HttpSettings {
                listener,
                public_url: http.public_url,
                cors_origins: http.cors_origins,
                admins: http.admins,
                receipt_secret: http.receipt_secret,
                shutdown_grace: http.shutdown_grace,
                rate_limits: http.rate_limits,
                trusted_proxies: http.trusted_proxies,
            },
            db: DbSettings {
                options: db.options,
                max_connections: db.max_connections,
                data_keys: db.data_keys,
            },
            xano: xano_client,
            stripe,
            jobs: Some(jobs),
            mode,
            backfill: Some(market_http::backfill::BackfillSettings::every(
                http.stripe_backfill,
                http.session_recheck,
            )),
            metrics: Some(startup::MetricsSettings {
                listener: metrics_listener,
                refresh: http.metrics_refresh,
            }),
            mail,
            webhooks: Some(webhooks),
        },
        routes,
    )
    .await?;
    print_banner(&app, mode, generated_admin.as_ref(), metrics_bind.ip());
    #[cfg(feature = "sandbox")]
    if let Some(sandbox) = &sandbox {
        show_sandbox(&app, sandbox).await?;
    }
    // The simulators (in sandbox mode) live until the application has stopped.
    app.run_until_stopped().await?;
    Ok(())
}

/// Seeds the sandbox's catalog on a pool of its own (through the pooler when there is one).
#[cfg(feature = "sandbox")]
async fn seed(
    sandbox: &RunningSandbox,
    db: &crate::settings::DbSettings,
    client: &master_api::Client,
    tiers: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let config = market_core::db::DbConfig {
        pooler: db.pooler,
        ..market_core::db::DbConfig::default()
    };
    let pool = market_core::db::connect(db.options.clone(), &config).await?;
    let mark = market_core::db::commit_mark(&pool);
    sandbox.seed(&pool, client, tiers).await?;
    // Through a pooler in transaction mode the last writes commit as their connections come
    // back, and a connection that comes back to a closed pool is closed without its commit.
    if !market_core::db::commits_landed_since(&mark).await {
        anyhow::bail!("the sandbox's catalog was not committed");
    }
    pool.close().await;
    Ok(())
}

/// The simulators' addresses and the sandbox's mail page; the demo sellers are seeded (through the
/// service's own functions) and their keys printed, the first time only.
#[cfg(feature = "sandbox")]
async fn show_sandbox(app: &Application, sandbox: &RunningSandbox) -> anyhow::Result<()> {
    println!("  xano sim     {}", sandbox.xano.base_url());
    println!("  stripe sim   {}", sandbox.stripe.base_url());
    println!("  buyers' mail {}sandbox/mail", app.public_url());
    for (name, key) in sandbox.seed_sellers(app.state()).await? {
        println!("  seller key   {key}   ({name}: Authorization: Bearer … on /v1/seller/…)");
    }
    println!();
    Ok(())
}

fn print_banner(
    app: &Application,
    mode: Mode,
    admin_token: Option<&SecretString>,
    metrics_ip: std::net::IpAddr,
) {
    let url = app.public_url();
    let mode_line = match mode {
        Mode::Sandbox => {
            "SANDBOX mode: Xano and Stripe are simulated in-process; nothing real is charged or minted"
        }
        Mode::Live => "LIVE mode: real Xano and Stripe",
    };
    println!();
    println!("  market is up — {mode_line}");
    println!("  storefront   {url}");
    println!("  API docs     {url}docs   (OpenAPI: {url}openapi.json)");
    if let Some(port) = app.metrics_port() {
        let ip = metrics_ip;
        println!("  metrics      http://{ip}:{port}/metrics   (its own listener, not public)");
    }
    if let Some(token) = admin_token {
        println!(
            "  admin token  {}   (generated for this run: Authorization: Bearer …)",
            token.expose_secret()
        );
    }
    println!();
}
