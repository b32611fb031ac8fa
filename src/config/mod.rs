//! Flags and environment variables (each documented in `market --help`), as clap parses them. A bad
//! value stops start-up with a message naming it; secrets are `SecretString`s, which print as
//! `[REDACTED]`. `settings` turns them into typed settings, once.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use market_http::limits::RateLimits;
use secrecy::SecretString;
use url::Url;

mod mail;
mod parse;
mod webhooks;

pub use mail::MailArgs;
pub use parse::{parse_admin_tokens, parse_webhook_secrets};
use parse::{parse_proxy, parse_rate_limit, parse_rate_limits};
pub use webhooks::WebhookArgs;

/// Where the database is.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// PostgreSQL URL. The database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/market"
    )]
    pub database_url: String,

    /// Largest number of connections this instance opens.
    #[arg(long, env = "MARKET_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,

    /// What DATABASE_URL (and DATABASE_READ_URL) lead to: `none` (PostgreSQL itself, or a pooler
    /// in session mode) or `transaction` (a pooler in transaction mode, such as PgBouncer's
    /// `pool_mode = transaction`): each use of a connection is then one transaction that sets the
    /// session settings itself, with no cached prepared statements. `market migrate` refuses it:
    /// migrations need a session of their own, on PostgreSQL directly.
    #[arg(long, env = "MARKET_DB_POOLER", default_value = "none")]
    pub db_pooler: market_core::db::Pooler,

    /// Keys install tokens are sealed with (AES-256-GCM), comma-separated `id:base64-of-32-bytes`:
    /// the first seals, every one opens (list the new key first during a roll, then run `market
    /// keys rotate`). `market keys generate` makes one. Required in production; without it the
    /// sandbox uses a key derived from the database name, which protects nothing.
    #[arg(long, env = "MARKET_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<SecretString>,
}

/// How to reach Xano's Master Metadata API.
#[derive(Args, Clone, Debug)]
#[expect(
    clippy::struct_field_names,
    reason = "clap names each flag after its field: --xano-…"
)]
pub struct XanoArgs {
    /// Xano Metadata API access token. Without it (and outside production) the service runs in
    /// sandbox mode against an in-process Xano simulator. Xano tokens expire (7 days by default).
    #[arg(long, env = "XANO_ACCESS_TOKEN", hide_env_values = true)]
    pub xano_access_token: Option<SecretString>,

    /// Base URL of the Master Metadata API.
    #[arg(long, env = "XANO_BASE_URL", default_value = master_api::DEFAULT_BASE_URL)]
    pub xano_base_url: Url,

    /// Client-side rate limit towards Xano: `none`, `free-plan` (10 requests / 20 s), or `N/SECONDS`.
    #[arg(long, env = "XANO_RATE_LIMIT", default_value = "none", value_parser = parse_rate_limit)]
    pub xano_rate_limit: master_api::RateLimit,

    /// Timeout of one Xano request, in seconds.
    #[arg(long, env = "XANO_TIMEOUT_SECS", default_value_t = 30)]
    pub xano_timeout_secs: u64,
}

/// How to reach Stripe.
#[derive(Args, Clone, Debug)]
#[expect(
    clippy::struct_field_names,
    reason = "clap names each flag after its field: --stripe-…"
)]
pub struct StripeArgs {
    /// Stripe secret key (`sk_live_…` or `sk_test_…`; a restricted `rk_…` key works too).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<SecretString>,

    /// Webhook signing secrets (`whsec_…`), comma-separated. During a secret roll configure both:
    /// a delivery is accepted when any of its signatures matches any of these.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub stripe_webhook_secrets: Vec<SecretString>,

    /// Base URL of the Stripe API.
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com/"
    )]
    pub stripe_api_base: Url,

    /// The platform's share of a seller's sale, in basis points (1000 = 10 %), taken as a Stripe
    /// Connect application fee; an operator can set a seller's own rate. The house pays none.
    #[arg(
        long = "stripe-platform-fee-bps",
        env = "MARKET_PLATFORM_FEE_BPS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u16).range(0..=10_000)
    )]
    pub stripe_platform_fee_bps: u16,
}

impl StripeArgs {
    /// `MARKET_PLATFORM_FEE_BPS` as the domain's rate (clap already kept it within 0..=10000).
    pub fn platform_fee(&self) -> anyhow::Result<market_core::FeeRate> {
        Ok(market_core::FeeRate::from_bps(i64::from(
            self.stripe_platform_fee_bps,
        ))?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Falls back to the sandbox when Xano or Stripe credentials are missing.
    Development,
    /// Refuses to start without real credentials.
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `market serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, env = "MARKET_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// `production` refuses to start without real Xano and Stripe credentials.
    #[arg(
        long = "env",
        env = "MARKET_ENV",
        value_enum,
        default_value = "development"
    )]
    pub environment: Environment,

    /// The URL buyers reach this service at (success and cancel URLs are built from it).
    /// Defaults to `http://<bind>`.
    #[arg(long, env = "MARKET_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Admin API tokens, comma-separated, each `name:token` (the name goes into the audit log) or a
    /// bare token (named `admin`); each token at least 32 characters. Sandbox mode generates one when
    /// none is given.
    #[arg(
        long,
        env = "MARKET_ADMIN_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub admin_tokens: Vec<SecretString>,

    /// Secret (at least 32 bytes) that buyers' receipt keys are derived from. All instances must
    /// share it. Sandbox mode generates one per run.
    #[arg(long, env = "MARKET_RECEIPT_SECRET", hide_env_values = true)]
    pub receipt_secret: Option<SecretString>,

    /// Browser origins allowed to call the public API (CORS), comma-separated, e.g.
    /// `https://shop.example.com`. Success and cancel URLs sent by a storefront must be on one of
    /// these origins or on the public URL.
    #[arg(long, env = "MARKET_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<Url>,

    /// Jobs (Xano calls) this instance runs at once.
    #[arg(long, env = "MARKET_JOB_WORKERS", default_value_t = 4)]
    pub job_workers: usize,

    /// Seconds a claimed job may run without a heartbeat before another instance takes it over.
    /// Must exceed the longest Xano call.
    #[arg(long, env = "MARKET_JOB_LEASE_SECS", default_value_t = 180)]
    pub job_lease_secs: u64,

    /// Longest wait, in seconds, before a failed job (a Xano error, a lost answer) is tried
    /// again; waits grow exponentially (with jitter) up to it.
    #[arg(long, env = "MARKET_JOB_RETRY_CAP_SECS", default_value_t = 300)]
    pub job_retry_cap_secs: u64,

    /// A job that fails this many times in a row dies: it shows as `dead` in `market status` and
    /// the admin API, is audited, and waits for `market jobs requeue` (or the sweep's revival).
    #[arg(long, env = "MARKET_JOB_MAX_ATTEMPTS", default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
    pub job_max_attempts: i32,

    /// Hours after which a job still failing dies, whatever its attempt count.
    #[arg(long, env = "MARKET_JOB_MAX_AGE_HOURS", default_value_t = 24)]
    pub job_max_age_hours: u64,

    /// Minutes after a job died before the sweep queues the same work again, when it is still owed
    /// (a refill, a reconciliation, a token for a paid purchase, a token to delete).
    #[arg(long, env = "MARKET_JOB_REVIVE_MINUTES", default_value_t = 60)]
    pub job_revive_minutes: u64,

    /// Percentage of a listing's live tokens that may vanish from Xano's list in one reconciliation
    /// before the pass marks none and waits for the next to confirm (a truncated list must not
    /// re-issue every buyer's token).
    #[arg(long, env = "MARKET_RECONCILE_MISSING_GUARD_PERCENT", default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub reconcile_missing_guard_percent: u8,

    /// Minutes a purchase may stay pending before its Checkout Session is read from Stripe, in case
    /// the webhook that would have said "paid" was lost (checked once a minute, a few at a time).
    #[arg(long, env = "MARKET_SESSION_RECHECK_MINUTES", default_value_t = 5)]
    pub session_recheck_minutes: u64,

    /// Seconds between rounds of the Stripe backfill: Stripe's list of events read since the last
    /// round (events younger than two rounds are left to their webhook), and the sessions of
    /// purchases pending too long.
    #[arg(long, env = "MARKET_STRIPE_BACKFILL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub stripe_backfill_seconds: u64,

    /// Minutes between reconciliations of each listing with Xano.
    #[arg(long, env = "MARKET_RECONCILE_MINUTES", default_value_t = 15)]
    pub reconcile_minutes: u64,

    /// Per-client rate limits of the public endpoints: `none`, or comma-separated `CLASS=N/SECONDS`
    /// (a burst of N, refilled over SECONDS, per client IP) for `checkout`, `success_page`,
    /// `purchase_read`, `catalog` and `portal`; a class not named keeps its default. Over the limit a
    /// client gets 429 with Retry-After.
    #[arg(
        long,
        env = "MARKET_RATE_LIMITS",
        default_value = "checkout=30/60,success_page=120/60,purchase_read=120/60,catalog=1200/60,portal=10/60",
        value_parser = parse_rate_limits
    )]
    pub rate_limits: RateLimits,

    /// Proxies (IPs or CIDR blocks, comma-separated) whose `Forwarded` / `X-Forwarded-For` headers
    /// name the client for rate limiting; from anyone else the headers are ignored.
    #[arg(long, env = "MARKET_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// Address of the metrics listener (`GET /metrics`, Prometheus). Metrics reveal sales volumes,
    /// so they are never on the public listener; keep this on loopback or a private network.
    #[arg(long, env = "MARKET_METRICS_BIND", default_value = "127.0.0.1:9464")]
    pub metrics_bind: SocketAddr,

    /// Seconds between refreshes of the gauges read from the database (purchases, pools, jobs);
    /// a scrape itself runs no query.
    #[arg(long, env = "MARKET_METRICS_REFRESH_SECS", default_value_t = 15)]
    pub metrics_refresh_secs: u64,

    /// Seconds to let in-flight requests and jobs finish after SIGTERM.
    #[arg(long, env = "MARKET_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Log format: `json` for machines, `pretty` for people. Filter with `RUST_LOG`.
    #[arg(long, env = "MARKET_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,

    /// Sandbox only: deliver every Stripe event twice and out of order (proves idempotency).
    #[arg(long, env = "MARKET_SANDBOX_DUPLICATE_EVENTS", default_value_t = false)]
    pub sandbox_duplicate_events: bool,

    /// Sandbox only: a tiers file to seed at start instead of the demo catalog built into the
    /// binary (`examples/tiers.toml` of its source).
    #[arg(long, env = "MARKET_SANDBOX_TIERS")]
    pub sandbox_tiers: Option<std::path::PathBuf>,

    /// PostgreSQL URL of a streaming replica of DATABASE_URL's database, for the reads that
    /// tolerate lag (the public catalog, sales reports); everything that writes or decides a sale
    /// stays on DATABASE_URL. Unset: every read goes to DATABASE_URL.
    #[arg(long, env = "DATABASE_READ_URL")]
    pub database_read_url: Option<String>,

    #[command(flatten)]
    pub db: DbArgs,

    #[command(flatten)]
    pub xano: XanoArgs,

    #[command(flatten)]
    pub stripe: StripeArgs,

    #[command(flatten)]
    pub mail: MailArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// clap names a bad value's flag (`--bind <BIND>`); an operator who set the environment variable
/// (`MARKET_BIND`) must find that name in the message too, so it is added as a tip.
pub fn name_environment_variable(mut error: clap::Error, cli: &clap::Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};

    fn env_of(command: &clap::Command, long: &str) -> Option<String> {
        command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long))
            .and_then(clap::Arg::get_env)
            .map(|env| env.to_string_lossy().into_owned())
            .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
    }

    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let Some(long) = arg
        .split_whitespace()
        .next()
        .and_then(|flag| flag.strip_prefix("--"))
    else {
        return error;
    };
    let Some(env) = env_of(cli, long) else {
        return error;
    };
    let tip = format!("--{long} is also set by the environment variable {env}");
    let mut tips = match error.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    tips.push(tip.into());
    error.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    error
}
