//! The `market` command line. `market` alone is `market serve`.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand};
use market_core::JobsConfig;
use market_core::audit::Actor;
use market_core::receipt::ReceiptSecret;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgConnectOptions;

use crate::config::{self, DbArgs, Environment, ServeArgs, XanoArgs};
use crate::sandbox_mode::Sandbox;
use crate::startup::{Application, Settings};
use crate::state::Mode;
use crate::telemetry;
use crate::tiers_file::TiersFile;

/// Sell Xano snippets in priced tiers: Stripe Checkout in, one Xano install token per paid purchase out.
///
/// Without Xano and Stripe credentials `market` runs in sandbox mode, with simulators of both.
#[derive(Debug, Parser)]
#[command(name = "market", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the background workers (the default).
    Serve(Box<ServeArgs>),
    /// Create the database if needed and apply migrations, then exit.
    Migrate(DbArgs),
    /// Operators' catalog: listings and tiers from a TOML file.
    Tiers {
        #[command(subcommand)]
        command: TiersCommand,
    },
    /// Compare every listing's tokens at Xano with the database now, and print what changed.
    Reconcile {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        xano: XanoArgs,
    },
    /// Operators: list purchases, show one with its audit trail, revoke one.
    Purchases {
        #[command(subcommand)]
        command: crate::operator::PurchasesCommand,
    },
    /// The Xano account's instances, or the one named.
    Instances {
        name: Option<String>,
        #[command(flatten)]
        xano: XanoArgs,
    },
    /// Pool levels per tier, background jobs needing attention and the Xano credential's health.
    Status {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Run a simulator standalone (for local stacks and the multi-instance tests).
    Sim {
        #[command(subcommand)]
        which: SimCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TiersCommand {
    /// Apply a tiers file: print the changes against the database, then make them. Idempotent.
    Apply {
        /// The TOML file (see examples/tiers.toml).
        file: std::path::PathBuf,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        xano: XanoArgs,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// The Xano Master API simulator.
    Xano(crate::sim_cli::XanoSimArgs),
    /// The Stripe API simulator (API, hosted checkout page, signed webhooks).
    Stripe(crate::sim_cli::StripeSimArgs),
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::try_parse()
        .unwrap_or_else(|e| config::name_environment_variable(e, &Cli::command()).exit());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("market: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(*args).await,
            Some(Command::Migrate(db)) => {
                migrate(&db).await.map(|_| println!("migrations applied"))
            }
            Some(Command::Tiers {
                command:
                    TiersCommand::Apply {
                        file,
                        dry_run,
                        db,
                        xano,
                    },
            }) => tiers_apply(&file, dry_run, &db, &xano).await,
            Some(Command::Reconcile { db, xano }) => reconcile(&db, &xano).await,
            Some(Command::Purchases { command }) => {
                telemetry::init(config::LogFormat::Pretty);
                crate::operator::purchases(command).await
            }
            Some(Command::Instances { name, xano }) => {
                telemetry::init(config::LogFormat::Pretty);
                crate::operator::instances(name.as_deref(), &xano).await
            }
            Some(Command::Status { db }) => {
                telemetry::init(config::LogFormat::Pretty);
                crate::operator::status(&db).await
            }
            Some(Command::Sim {
                which: SimCommand::Xano(args),
            }) => crate::sim_cli::xano(args).await,
            Some(Command::Sim {
                which: SimCommand::Stripe(args),
            }) => crate::sim_cli::stripe(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the database when it does not exist, then applies pending migrations. Safe to run from
/// several instances at once: sqlx serializes migrators with an advisory lock.
pub async fn migrate(db: &DbArgs) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = db
        .database_url
        .parse()
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
    if !sqlx::Postgres::database_exists(&db.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach PostgreSQL at DATABASE_URL: {e}"))?
    {
        sqlx::Postgres::create_database(&db.database_url).await?;
        tracing::info!("database created");
    }
    let pool =
        market_core::db::connect(options.clone(), &market_core::db::DbConfig::default()).await?;
    market_core::MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(options)
}

pub fn xano_client(xano: &XanoArgs, token: SecretString) -> anyhow::Result<master_api::Client> {
    Ok(master_api::Client::builder(token)
        .base_url(xano.xano_base_url.clone())
        .rate_limit(xano.xano_rate_limit)
        .timeout(Duration::from_secs(xano.xano_timeout_secs))
        .build()?)
}

pub(crate) fn required_xano(xano: &XanoArgs) -> anyhow::Result<master_api::Client> {
    let token = xano
        .xano_access_token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("XANO_ACCESS_TOKEN is required"))?;
    xano_client(xano, token)
}

async fn tiers_apply(
    file: &std::path::Path,
    dry_run: bool,
    db: &DbArgs,
    xano: &XanoArgs,
) -> anyhow::Result<()> {
    telemetry::init(config::LogFormat::Pretty);
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let tiers = TiersFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let options = migrate(db).await?;
    let pool = market_core::db::connect(options, &market_core::db::DbConfig::default()).await?;
    let client = required_xano(xano)?;
    let diff = crate::tiers_file::apply(
        &pool,
        &client,
        &tiers,
        dry_run,
        &Actor::Admin(operator_name()),
    )
    .await?;
    print!("{diff}");
    match (dry_run, diff.is_empty()) {
        (_, true) => println!("no changes"),
        (true, false) => println!("dry run: nothing was changed"),
        (false, false) => println!("applied"),
    }
    Ok(())
}

async fn reconcile(db: &DbArgs, xano: &XanoArgs) -> anyhow::Result<()> {
    telemetry::init(config::LogFormat::Pretty);
    let options = migrate(db).await?;
    let pool = market_core::db::connect(options, &market_core::db::DbConfig::default()).await?;
    let market = market_core::Market::new(pool, required_xano(xano)?, JobsConfig::default());
    let reports = market_core::reconcile::all(&market, &Actor::Admin(operator_name())).await?;
    println!("{}", serde_json::to_string_pretty(&reports)?);
    Ok(())
}

/// The operator running a CLI command, for the audit log.
pub(crate) fn operator_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{u}"))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    #[cfg(feature = "failpoints")]
    crate::crashpoints::activate_from_env()?;
    let live = args.xano.xano_access_token.is_some() || args.stripe.stripe_secret_key.is_some();
    if args.environment == Environment::Production || live {
        check_live_settings(&args)?;
    }
    let options = migrate(&args.db).await?;
    let listener = TcpListener::bind(args.bind)
        .map_err(|e| anyhow::anyhow!("MARKET_BIND {}: {e}", args.bind))?;
    let port = listener.local_addr()?.port();

    let jobs = JobsConfig {
        workers: args.job_workers.max(1),
        lease: Duration::from_secs(args.job_lease_secs),
        retry_cap: Duration::from_secs(args.job_retry_cap_secs.max(1)),
        reconcile_interval: Duration::from_secs(args.reconcile_minutes.max(1) * 60),
        ..JobsConfig::default()
    };
    let mut admins = config::parse_admin_tokens(&args.admin_tokens).map_err(anyhow::Error::msg)?;
    let receipt_secret = match &args.receipt_secret {
        Some(secret) => ReceiptSecret::new(secret.expose_secret().as_bytes().to_vec())
            .ok_or_else(|| anyhow::anyhow!("MARKET_RECEIPT_SECRET must be at least 32 bytes"))?,
        None => ReceiptSecret::random(),
    };

    let (mode, xano, stripe_key, stripe_base, webhook_secrets, sandbox) = if live {
        let key = args
            .stripe
            .stripe_secret_key
            .clone()
            .ok_or_else(|| anyhow::anyhow!("STRIPE_SECRET_KEY is required"))?;
        (
            Mode::Live,
            required_xano(&args.xano)?,
            key,
            args.stripe.stripe_api_base.clone(),
            args.stripe.stripe_webhook_secrets.clone(),
            None,
        )
    } else {
        let webhook = url::Url::parse(&format!("http://127.0.0.1:{port}/v1/webhooks/stripe"))?;
        let sandbox = Sandbox::start(webhook, args.sandbox_duplicate_events).await?;
        let sim_args = XanoArgs {
            xano_base_url: sandbox.xano.base_url(),
            ..args.xano.clone()
        };
        let xano = xano_client(&sim_args, SecretString::from(sandbox.xano.access_token()))?;
        let key = SecretString::from(sandbox.stripe.api_key());
        let base = sandbox.stripe.base_url();
        let secrets = vec![sandbox.webhook_secret.clone()];
        (Mode::Sandbox, xano, key, base, secrets, Some(sandbox))
    };

    let mut generated_admin = None;
    if admins.is_empty() && mode == Mode::Sandbox {
        let token = format!("adm_{}", uuid::Uuid::new_v4().simple());
        admins.push(config::AdminToken {
            name: "sandbox".into(),
            token: SecretString::from(token.clone()),
        });
        generated_admin = Some(token);
    }
    if let Some(sandbox) = &sandbox {
        let text = std::fs::read_to_string(&args.sandbox_tiers).map_err(|e| {
            anyhow::anyhow!("MARKET_SANDBOX_TIERS {}: {e}", args.sandbox_tiers.display())
        })?;
        let file = TiersFile::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.sandbox_tiers.display()))?;
        sandbox.create_snippets(&file);
        let pool = market_core::db::connect(options.clone(), &market_core::db::DbConfig::default())
            .await?;
        crate::sandbox_mode::seed(&pool, &xano, &file).await?;
        pool.close().await;
    }

    let app = Application::build(Settings {
        listener,
        public_url: args.public_url.clone(),
        database: options,
        db_max_connections: args.db.db_max_connections,
        xano,
        stripe_secret_key: stripe_key,
        stripe_api_base: stripe_base,
        stripe_webhook_secrets: webhook_secrets,
        admins,
        receipt_secret,
        cors_origins: args.cors_origins.clone(),
        jobs,
        run_jobs: true,
        mode,
        shutdown_grace: args.shutdown_grace(),
    })
    .await?;
    print_banner(&app, mode, generated_admin.as_deref(), sandbox.as_ref());
    app.run_until_stopped().await?;
    drop(sandbox);
    Ok(())
}

/// In production (or whenever real credentials are given) every secret must be configured; the
/// message names each one missing.
fn check_live_settings(args: &ServeArgs) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    if args.xano.xano_access_token.is_none() {
        missing.push("XANO_ACCESS_TOKEN");
    }
    if args.stripe.stripe_secret_key.is_none() {
        missing.push("STRIPE_SECRET_KEY");
    }
    if args.stripe.stripe_webhook_secrets.is_empty() {
        missing.push("STRIPE_WEBHOOK_SECRETS");
    }
    if args.admin_tokens.is_empty() {
        missing.push("MARKET_ADMIN_TOKENS");
    }
    if args.receipt_secret.is_none() {
        missing.push("MARKET_RECEIPT_SECRET");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let why = if args.environment == Environment::Production {
        "MARKET_ENV=production needs real credentials (no sandbox fallback)"
    } else {
        "with real Xano or Stripe credentials, all of them are needed"
    };
    anyhow::bail!("{why}; missing: {}", missing.join(", "))
}

fn print_banner(
    app: &Application,
    mode: Mode,
    admin_token: Option<&str>,
    sandbox: Option<&Sandbox>,
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
    println!("  metrics      {url}metrics");
    if let Some(token) = admin_token {
        println!("  admin token  {token}   (generated for this run: Authorization: Bearer …)");
    }
    if let Some(sandbox) = sandbox {
        println!("  xano sim     {}", sandbox.xano.base_url());
        println!("  stripe sim   {}", sandbox.stripe.base_url());
    }
    println!();
}
