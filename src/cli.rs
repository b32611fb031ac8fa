//! The `market` command line: every command and its flags. `market` alone is `market serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use market_core::PurchaseStatus;
use url::Url;
use uuid::Uuid;

use crate::config::{self, DbArgs, LogFormat, ServeArgs, XanoArgs};

/// Sell Xano snippets in priced tiers: Stripe Checkout in, one Xano install token per paid purchase out.
///
/// Without Xano and Stripe credentials `market` runs in sandbox mode, with simulators of both.
#[derive(Debug, Parser)]
#[command(name = "market", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// Parses the arguments; a bad one ends the process with clap's message, which names the
    /// environment variable that sets it too.
    pub fn parse_or_exit() -> Self {
        Self::try_parse()
            .unwrap_or_else(|e| config::name_environment_variable(e, &Self::command()).exit())
    }

    /// The command to run: `serve` when none is named.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or_else(|| Command::Serve(Box::new(self.serve)))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
        command: PurchasesCommand,
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
    /// Stripe events kept because they could not be read (see `docs/OPERATIONS.md`).
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Background jobs: list them (dead ones waiting for an operator, say), requeue a dead one.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The marketplace's sellers: invite one (its API key is printed once), list them, suspend or
    /// reactivate one, list, issue and revoke its API keys.
    Sellers {
        #[command(subcommand)]
        command: SellersCommand,
    },
    /// Reports: sales over a range of days (gross, refunds, disputes, platform fees, net) by day,
    /// seller, listing and tier, as JSON or CSV.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The keys install tokens are sealed with (`MARKET_DATA_KEY`): make one, or re-seal
    /// everything under the first key of the list.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a simulator standalone (for local stacks and the multi-instance tests).
    #[cfg(feature = "sandbox")]
    Sim {
        #[command(subcommand)]
        which: SimCommand,
    },
}

impl Command {
    /// How this command logs: `serve` as configured (JSON by default), the others for a person.
    pub fn log_format(&self) -> LogFormat {
        match self {
            Self::Serve(args) => args.log_format,
            _ => LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TiersCommand {
    /// Apply a tiers file: print the changes against the database, then make them. Idempotent.
    Apply {
        /// The TOML file (see examples/tiers.toml).
        file: PathBuf,
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
pub enum EventsCommand {
    /// Read every kept event again and apply those this release can read, through the same path
    /// as a webhook (an event applied since is a no-op).
    Replay {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Where the backfill from Stripe's list of events stands (its cursor, last round, last error,
    /// events it applied that no webhook delivered), and how many events wait unreadable.
    Status {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SellersCommand {
    /// Invite a seller; prints it with its API key, shown this once (only its hash is kept).
    Invite {
        #[arg(long)]
        name: String,
        /// Where the platform writes to the seller.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Every seller, the house first.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Suspend a seller: its keys open nothing and its tiers leave sale; what its buyers paid for
    /// is still served. The house cannot be suspended. Suspending twice changes nothing.
    Suspend {
        #[arg(long)]
        seller: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Reactivate a suspended seller: its unrevoked keys work again, its tiers are back on sale.
    Reactivate {
        #[arg(long)]
        seller: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// A seller's API keys: list them, issue a new one (printed once), revoke one.
    Keys {
        #[command(subcommand)]
        command: SellerKeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SellerKeysCommand {
    /// The seller's keys, revoked ones included: ids and dates, never a key.
    List {
        #[arg(long)]
        seller: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Issue the seller a new key, printed this once; its other keys keep working until revoked.
    Issue {
        #[arg(long)]
        seller: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke one of the seller's keys (its last one too: that locks the seller out).
    Revoke {
        #[arg(long)]
        seller: Uuid,
        /// The key's id (16 hex digits, from `market sellers keys list`).
        #[arg(long)]
        key: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Jobs, most recently changed first, optionally in one state.
    List {
        /// queued, running, parked, done or dead.
        #[arg(long, value_parser = ["queued", "running", "parked", "done", "dead"])]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put a dead job back in the queue, with its attempts counted afresh (after fixing its
    /// cause); a running `market serve` picks it up.
    Requeue {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Sales, as `GET /v1/admin/reports/sales` reports them: each sale dated by the day (UTC) it
    /// was paid, with what has been refunded or disputed of it so far; amounts in each currency's
    /// minor unit. Prints JSON, or the rows as CSV.
    Sales(SalesArgs),
}

#[derive(Debug, Args)]
pub struct SalesArgs {
    /// The first day (UTC, `YYYY-MM-DD`), included; default: 30 days before `--to`.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// The day after the last one (UTC), excluded; default: tomorrow (today included).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Only this seller's sales.
    #[arg(long)]
    pub seller: Option<Uuid>,
    /// Only this listing's sales.
    #[arg(long)]
    pub listing: Option<Uuid>,
    /// What the rows are keyed by: any of day, seller, listing, tier, comma-separated.
    #[arg(long, default_value = "day,seller,listing,tier")]
    pub group_by: String,
    /// json (the report, with each currency's totals) or csv (its rows, a header line first).
    #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
    pub format: String,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new `MARKET_DATA_KEY` entry (`id:base64`, 32 random bytes). It is shown once and
    /// stored nowhere: put it in your secret store.
    Generate {
        /// The key's id, stored beside every value it seals (1-32 of letters, digits, `_`, `-`).
        #[arg(long, default_value_t = default_key_id())]
        id: String,
    },
    /// Seal every stored secret again under the first key of `MARKET_DATA_KEY` (and seal tokens
    /// left in plain text from before sealing). Safe while instances run. To roll a key: put the
    /// new one first in every instance's list, keeping the old one after it; restart them; run
    /// this; then drop the old key.
    Rotate {
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `k` and today's date (UTC), e.g. `k20261202`.
fn default_key_id() -> String {
    format!("k{}", chrono::Utc::now().format("%Y%m%d"))
}

#[derive(Debug, Subcommand)]
pub enum PurchasesCommand {
    /// Purchases, newest first, optionally filtered.
    List(ListArgs),
    /// One purchase: its row, what its buyer sees (token included) and its audit trail.
    Show {
        id: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Take a purchase's access away without refunding it (a leaked token, abuse). The purchase
    /// becomes `revoked`; a running `market serve` deletes its token at Xano. Refunds go through
    /// Stripe (`POST /v1/admin/purchases/{id}/refund`).
    Revoke {
        id: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pending, paid, fulfilled, refunded, disputed, reinstated, dispute_lost, revoked, expired or failed.
    #[arg(long)]
    pub status: Option<PurchaseStatus>,
    /// Only this tier version's purchases.
    #[arg(long)]
    pub tier: Option<Uuid>,
    /// Only this buyer's purchases (case-insensitive).
    #[arg(long)]
    pub email: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    #[command(flatten)]
    pub db: DbArgs,
}

#[cfg(feature = "sandbox")]
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// The Xano Master API simulator.
    Xano(XanoSimArgs),
    /// The Stripe API simulator (API, hosted checkout page, signed webhooks).
    Stripe(StripeSimArgs),
}

#[cfg(feature = "sandbox")]
#[derive(Args, Debug)]
pub struct XanoSimArgs {
    /// Address to listen on.
    #[arg(long, env = "XANO_SIM_BIND", default_value = "127.0.0.1:8091")]
    pub bind: SocketAddr,
    /// The account's access token (clients send it as `Authorization: Bearer …`).
    #[arg(long, env = "XANO_SIM_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: String,
    /// Snippets the account owns at start (repeat, or comma-separate); more can be added over HTTP.
    #[arg(long = "snippet", value_delimiter = ',')]
    pub snippets: Vec<String>,
}

#[cfg(feature = "sandbox")]
#[derive(Args, Debug)]
pub struct StripeSimArgs {
    /// Address to listen on.
    #[arg(long, env = "STRIPE_SIM_BIND", default_value = "127.0.0.1:8092")]
    pub bind: SocketAddr,
    /// The secret key clients must send.
    #[arg(long, env = "STRIPE_SIM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Where to deliver events (a `market` instance's `/v1/webhooks/stripe`).
    #[arg(long, env = "STRIPE_SIM_WEBHOOK_URL")]
    pub webhook_url: Option<Url>,
    /// Webhook signing secrets (one `v1` signature per secret).
    #[arg(
        long = "webhook-secret",
        env = "STRIPE_SIM_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub webhook_secrets: Vec<String>,
    /// Deliver every event twice and out of order.
    #[arg(long)]
    pub duplicate: bool,
}
