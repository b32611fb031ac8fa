//! `market serve`'s settings, built once from its flags and environment before anything starts:
//! every value checked, every secret present where it must be, and the choice between the real
//! Xano and Stripe and the simulators made here, once ([`Backends`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use market_core::JobsConfig;
use market_core::db::Pooler;
use market_core::envelope::{DataKeys, KeyId};
use market_core::receipt::ReceiptSecret;
use market_http::state::AdminToken;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use url::Url;

use crate::config::{self, DbArgs, Environment, MailArgs, ServeArgs, XanoArgs};

/// Everything `market serve` runs with.
#[derive(Debug)]
pub struct Settings {
    pub db: DbSettings,
    pub http: HttpSettings,
    pub xano: XanoSettings,
    pub jobs: JobsConfig,
    pub backends: Backends,
    /// How buyers' email leaves; `None` when mail is disabled.
    pub mail: Option<market_http::startup::MailSettings>,
    pub webhooks: market_http::startup::WebhookSettings,
}

#[derive(Debug)]
pub struct DbSettings {
    /// As given: creating a missing database needs the URL itself.
    pub url: String,
    pub options: PgConnectOptions,
    pub max_connections: u32,
    /// `MARKET_DATA_KEY`, or the sandbox's key.
    pub data_keys: DataKeys,
    /// `MARKET_DB_POOLER`: whether the URLs lead to a pooler in transaction mode.
    pub pooler: Pooler,
    /// `DATABASE_READ_URL` (`market serve` only): a streaming replica for lag-tolerant reads.
    pub read_options: Option<PgConnectOptions>,
}

#[derive(Debug)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    pub rate_limits: market_http::limits::RateLimits,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The metrics listener's address, and how often its gauges are read.
    pub metrics_bind: SocketAddr,
    pub metrics_refresh: Duration,
    /// How long a purchase may stay pending before its Checkout Session is read from Stripe.
    pub session_recheck: Duration,
    /// How often the Stripe backfill runs.
    pub stripe_backfill: Duration,
    pub public_url: Option<Url>,
    pub cors_origins: Vec<Url>,
    pub admins: Vec<AdminToken>,
    /// An admin token made up for this run (sandbox mode without `MARKET_ADMIN_TOKENS`): the
    /// banner shows it, once.
    pub generated_admin: Option<SecretString>,
    pub receipt_secret: ReceiptSecret,
    pub shutdown_grace: Duration,
}

/// How to reach the Xano Metadata API, whichever account answers there.
#[derive(Debug, Clone)]
pub struct XanoSettings {
    pub base_url: Url,
    pub rate_limit: master_api::RateLimit,
    pub timeout: Duration,
}

/// The real services, or the simulators.
#[derive(Debug)]
pub enum Backends {
    Live {
        xano_token: SecretString,
        stripe: market_http::startup::StripeSettings,
    },
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Deliver every Stripe event twice and out of order.
        duplicate_events: bool,
        /// A tiers file to seed instead of the demo catalog.
        tiers: Option<std::path::PathBuf>,
        platform_fee: market_core::FeeRate,
    },
}

impl Settings {
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        let live = args.xano.xano_access_token.is_some() || args.stripe.stripe_secret_key.is_some();
        if args.environment == Environment::Production || live {
            check_live_settings(&args)?;
        }
        let mut admins =
            config::parse_admin_tokens(&args.admin_tokens).map_err(anyhow::Error::msg)?;
        let receipt_secret = match &args.receipt_secret {
            Some(secret) => ReceiptSecret::new(secret.expose_secret().as_bytes().to_vec())
                .context("MARKET_RECEIPT_SECRET must be at least 32 bytes")?,
            None => ReceiptSecret::random(),
        };
        let backends = if live {
            Backends::Live {
                xano_token: args
                    .xano
                    .xano_access_token
                    .clone()
                    .context("XANO_ACCESS_TOKEN is required")?,
                stripe: market_http::startup::StripeSettings {
                    secret_key: args
                        .stripe
                        .stripe_secret_key
                        .clone()
                        .context("STRIPE_SECRET_KEY is required")?,
                    api_base: args.stripe.stripe_api_base.clone(),
                    webhook_secrets: config::parse_webhook_secrets(
                        &args.stripe.stripe_webhook_secrets,
                    )
                    .map_err(anyhow::Error::msg)?,
                    platform_fee: args.stripe.platform_fee()?,
                },
            }
        } else {
            sandbox(&args)?
        };
        let mut generated_admin = None;
        if admins.is_empty() && !matches!(backends, Backends::Live { .. }) {
            let token = SecretString::from(format!("adm_{}", uuid::Uuid::new_v4().simple()));
            admins.push(AdminToken {
                name: "sandbox".into(),
                token: token.clone(),
            });
            generated_admin = Some(token);
        }
        let mail = mail_settings(&args.mail, args.environment, live)?;
        if args.environment == Environment::Production && args.webhooks.webhook_allow_http {
            anyhow::bail!(
                "MARKET_WEBHOOK_ALLOW_HTTP is refused in production: webhooks go over https"
            );
        }
        Ok(Self {
            mail,
            webhooks: args.webhooks.settings(!live)?,
            db: DbSettings::from_args(&args.db)?
                .with_read_url(args.database_read_url.as_deref())?,
            http: HttpSettings {
                bind: args.bind,
                rate_limits: args.rate_limits,
                trusted_proxies: args.trusted_proxies,
                metrics_bind: args.metrics_bind,
                metrics_refresh: Duration::from_secs(args.metrics_refresh_secs.max(1)),
                session_recheck: Duration::from_secs(args.session_recheck_minutes.max(1) * 60),
                stripe_backfill: Duration::from_secs(args.stripe_backfill_seconds),
                public_url: args.public_url,
                cors_origins: args.cors_origins,
                admins,
                generated_admin,
                receipt_secret,
                shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            },
            xano: XanoSettings::from_args(&args.xano),
            jobs: JobsConfig {
                workers: args.job_workers.max(1),
                lease: Duration::from_secs(args.job_lease_secs),
                retry_cap: Duration::from_secs(args.job_retry_cap_secs.max(1)),
                reconcile_interval: Duration::from_secs(args.reconcile_minutes.max(1) * 60),
                missing_guard: f64::from(args.reconcile_missing_guard_percent) / 100.0,
                max_attempts: args.job_max_attempts,
                max_age: Duration::from_secs(args.job_max_age_hours.max(1) * 3600),
                revive_after: Duration::from_secs(args.job_revive_minutes.max(1) * 60),
                ..JobsConfig::default()
            },
            backends,
        })
    }
}

#[cfg(feature = "sandbox")]
fn sandbox(args: &ServeArgs) -> anyhow::Result<Backends> {
    Ok(Backends::Sandbox {
        duplicate_events: args.sandbox_duplicate_events,
        tiers: args.sandbox_tiers.clone(),
        platform_fee: args.stripe.platform_fee()?,
    })
}

#[cfg(not(feature = "sandbox"))]
fn sandbox(_: &ServeArgs) -> anyhow::Result<Backends> {
    anyhow::bail!(
        "this build has no sandbox (built without the `sandbox` feature): set XANO_ACCESS_TOKEN, \
         STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRETS, MARKET_ADMIN_TOKENS and MARKET_RECEIPT_SECRET"
    )
}

/// The id of the key sandbox mode derives from the database name when `MARKET_DATA_KEY` is unset.
/// It says what it is: a database whose tokens are under it has nothing worth protecting.
const SANDBOX_KEY_ID: &str = "sandbox-not-secret";

/// PostgreSQL's longest identifier (`NAMEDATALEN - 1`).
const MAX_DATABASE_NAME_BYTES: usize = 63;

impl DbSettings {
    pub fn from_args(db: &DbArgs) -> anyhow::Result<Self> {
        let options: PgConnectOptions = db
            .database_url
            .parse()
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
        // PostgreSQL cuts longer names to 63 bytes without a word: the database would be created
        // under another name, and found missing (and created again, failing) on the next start.
        if let Some(name) = options.get_database()
            && name.len() > MAX_DATABASE_NAME_BYTES
        {
            anyhow::bail!(
                "DATABASE_URL: the database name is {} bytes; PostgreSQL allows {MAX_DATABASE_NAME_BYTES}",
                name.len()
            );
        }
        let data_keys = match &db.data_key {
            Some(keys) => DataKeys::parse(keys.expose_secret()).map_err(anyhow::Error::msg)?,
            None => DataKeys::derived(
                KeyId::parse(SANDBOX_KEY_ID).context("the sandbox key id")?,
                options.get_database().unwrap_or_default().as_bytes(),
            ),
        };
        Ok(Self {
            url: db.database_url.clone(),
            options,
            max_connections: db.db_max_connections,
            data_keys,
            pooler: db.db_pooler,
            read_options: None,
        })
    }

    /// The pooler's mode and the replica, as `market_http` takes them.
    pub fn routes(&self) -> market_http::startup::DbRoutes {
        market_http::startup::DbRoutes {
            pooler: self.pooler,
            read_options: self.read_options.clone(),
        }
    }

    /// Adds `DATABASE_READ_URL`, which must name the same database as `DATABASE_URL` (a replica
    /// has every database of its primary; another name is a mistake that would read elsewhere).
    pub fn with_read_url(mut self, url: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(self);
        };
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| anyhow::anyhow!("DATABASE_READ_URL is not a PostgreSQL URL: {e}"))?;
        if options.get_database() != self.options.get_database() {
            anyhow::bail!(
                "DATABASE_READ_URL names the database {:?}, DATABASE_URL {:?}: a replica's URL names \
                 the same database as the primary's",
                options.get_database().unwrap_or_default(),
                self.options.get_database().unwrap_or_default()
            );
        }
        self.read_options = Some(options);
        Ok(self)
    }
}

impl XanoSettings {
    pub fn from_args(xano: &XanoArgs) -> Self {
        Self {
            base_url: xano.xano_base_url.clone(),
            rate_limit: xano.xano_rate_limit,
            timeout: Duration::from_secs(xano.xano_timeout_secs),
        }
    }

    /// A client of the Metadata API at `base_url`, authenticated with `token`.
    pub fn client(&self, token: SecretString) -> anyhow::Result<master_api::Client> {
        Ok(master_api::Client::builder(token)
            .base_url(self.base_url.clone())
            .rate_limit(self.rate_limit)
            .timeout(self.timeout)
            .build()?)
    }
}

/// The operators' commands that call Xano need `XANO_ACCESS_TOKEN`.
pub fn required_xano(xano: &XanoArgs) -> anyhow::Result<master_api::Client> {
    let token = xano
        .xano_access_token
        .clone()
        .context("XANO_ACCESS_TOKEN is required")?;
    XanoSettings::from_args(xano).client(token)
}

/// The sender used when mail stays in-process (sandbox and development runs without a server).
const CAPTURE_FROM: &str = "Market sandbox <receipts@sandbox.invalid>";

/// Where buyers' email goes: the SMTP server given (`SMTP_URL`, or `SMTP_HOST` and its parts), or,
/// without one: nowhere when `MARKET_MAIL_DISABLED`; an error in production; nowhere (with a
/// warning) with real credentials in development; the in-process capture in sandbox mode, which
/// shows it at `/sandbox/mail` (never real buyers' tokens).
fn mail_settings(
    args: &MailArgs,
    environment: Environment,
    live: bool,
) -> anyhow::Result<Option<market_http::startup::MailSettings>> {
    use market_core::postman::{Capture, Smtp, Transport};
    if args.mail_disabled {
        tracing::warn!("MARKET_MAIL_DISABLED: buyers get no email");
        return Ok(None);
    }
    let url = match (&args.smtp_url, &args.smtp_host) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(host)) => Some(smtp_url_of(args, host)?),
        (None, None) => None,
    };
    let Some(url) = url else {
        if environment == Environment::Production {
            anyhow::bail!(
                "MARKET_ENV=production needs SMTP_URL (or SMTP_HOST) and MARKET_MAIL_FROM for \
                 buyers' email, or MARKET_MAIL_DISABLED=true to run without it"
            );
        }
        if live {
            tracing::warn!("no SMTP_URL: buyers get no email (set it, or MARKET_MAIL_DISABLED)");
            return Ok(None);
        }
        return Ok(Some(market_http::startup::MailSettings {
            transport: Transport::Capture(Capture::new()),
            from: args
                .mail_from
                .clone()
                .unwrap_or_else(|| CAPTURE_FROM.to_owned()),
        }));
    };
    let from = args
        .mail_from
        .clone()
        .context("MARKET_MAIL_FROM is required with an SMTP server")?;
    Ok(Some(market_http::startup::MailSettings {
        transport: Transport::Smtp(Smtp::from_url(&url).map_err(anyhow::Error::msg)?),
        from,
    }))
}

/// `smtp://user:password@host:port?tls=required` from its parts (the URL type percent-encodes
/// them).
fn smtp_url_of(args: &MailArgs, host: &str) -> anyhow::Result<SecretString> {
    let mut url = Url::parse(&format!("smtp://{host}:{}", args.smtp_port))
        .ok()
        .filter(|u| u.host_str().is_some())
        .context("SMTP_HOST is not a host name")?;
    url.set_query(Some("tls=required"));
    if let Some(user) = &args.smtp_username {
        url.set_username(user)
            .ok()
            .context("SMTP_USERNAME cannot be used")?;
        if let Some(password) = &args.smtp_password {
            url.set_password(Some(password.expose_secret()))
                .ok()
                .context("SMTP_PASSWORD cannot be used")?;
        }
    }
    Ok(SecretString::from(String::from(url)))
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
    if args.db.data_key.is_none() {
        missing.push("MARKET_DATA_KEY");
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    /// Found while testing `market migrate`: a 64-byte name was created truncated, then the next
    /// start found it missing and failed creating it again.
    #[test]
    fn a_database_name_postgresql_would_truncate_is_refused_naming_the_variable() {
        let db = |name: &str| DbArgs {
            database_url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            db_max_connections: 1,
            db_pooler: Pooler::None,
            data_key: None,
        };
        assert!(DbSettings::from_args(&db(&"m".repeat(63))).is_ok());
        let error = DbSettings::from_args(&db(&"m".repeat(64))).unwrap_err();
        assert!(error.to_string().starts_with("DATABASE_URL: "), "{error}");
    }

    /// A key list with a hole (`${NEW},${OLD}` with `OLD` unset) or a short key stops start-up
    /// naming the variable and the entry, never a key.
    #[test]
    fn a_data_key_list_with_an_empty_or_short_entry_is_refused_by_position() {
        let key = market_core::envelope::DataKeys::generate_entry(&KeyId::parse("k1").unwrap());
        let db = |keys: &str| DbArgs {
            database_url: "postgres://postgres@127.0.0.1:5432/market".into(),
            db_max_connections: 1,
            db_pooler: Pooler::None,
            data_key: Some(SecretString::from(keys.to_owned())),
        };
        assert!(DbSettings::from_args(&db(&key)).is_ok());
        for (keys, entry) in [(format!("{key},"), 2), ("k1:c2hvcnQ=".to_owned(), 1)] {
            let error = DbSettings::from_args(&db(&keys)).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("MARKET_DATA_KEY entry {entry} ")),
                "{error}"
            );
            assert!(!error.contains(key.split_once(':').unwrap().1), "{error}");
        }
    }
}
