//! Operators' commands beside `tiers apply` and `reconcile`: look at purchases, revoke one, see the
//! Xano account's instances and the state of pools, jobs and the Xano credential.
//!
//! Each prints JSON in the admin API's shapes, so the same `jq` filters work on both, and a change
//! is audited under the operator's name (`cli:$USER`) like one made through the admin API. They
//! work on the database directly: an operator can look and act while no instance is serving. Xano
//! is called only by `instances`; a revocation's token is deleted at Xano by whichever `market
//! serve` instance picks up the job.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use market_core::audit::{self, Actor};
use market_core::jobs::overview;
use market_core::pool::PoolLevel;
use market_core::purchases::{self, Purchase, PurchaseFilter};
use market_core::{PurchaseId, PurchaseStatus, TierId, health, payments, pool};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::cli::{migrate, operator_name, required_xano};
use crate::config::{DbArgs, XanoArgs};
use crate::routes::admin::ops::{InstanceBody, JobsBody};
use crate::routes::admin::purchases::{ActionResult, AdminPurchase, PurchaseRow};
use crate::routes::purchases::receipt_body;

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
    /// pending, paid, fulfilled, refunded, disputed, revoked, expired or failed.
    #[arg(long)]
    status: Option<PurchaseStatus>,
    /// Only this tier version's purchases.
    #[arg(long)]
    tier: Option<Uuid>,
    /// Only this buyer's purchases (case-insensitive).
    #[arg(long)]
    email: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: i64,
    #[command(flatten)]
    db: DbArgs,
}

/// `market status`: what `GET /v1/admin/pools` and `GET /v1/admin/jobs` show, together.
#[derive(Debug, Serialize)]
struct Status {
    pools: Vec<PoolLevel>,
    jobs: JobsBody,
}

pub async fn purchases(command: PurchasesCommand) -> anyhow::Result<()> {
    match command {
        PurchasesCommand::List(args) => {
            let db = connect(&args.db).await?;
            let filter = PurchaseFilter {
                status: args.status,
                tier: args.tier.map(TierId),
                email: args.email,
                before: None,
                limit: args.limit,
            };
            let page = purchases::list(&db, &filter).await?;
            print(&page.iter().map(PurchaseRow::from).collect::<Vec<_>>())
        }
        PurchasesCommand::Show { id, db } => {
            let db = connect(&db).await?;
            let purchase = load(&db, id).await?;
            let receipt = purchases::receipt_of(&db, &purchase).await?;
            let audit = audit::for_purchase(&db, purchase.purchase_id).await?;
            print(&AdminPurchase {
                purchase: (&purchase).into(),
                receipt: receipt_body(receipt, true),
                audit,
            })
        }
        PurchasesCommand::Revoke { id, db } => {
            let db = connect(&db).await?;
            load(&db, id).await?;
            let actor = Actor::Admin(operator_name());
            let outcome = payments::revoke_by_operator(&db, PurchaseId(id), &actor).await?;
            let purchase = load(&db, id).await?;
            print(&ActionResult {
                purchase_id: id,
                status: purchase.status.to_string(),
                outcome: outcome.effect.as_str().to_owned(),
            })
        }
    }
}

/// The account's instances, or the one named.
pub async fn instances(name: Option<&str>, xano: &XanoArgs) -> anyhow::Result<()> {
    let client = required_xano(xano)?;
    match name {
        None => {
            let all = client.instances().await?;
            print(&all.into_iter().map(InstanceBody::from).collect::<Vec<_>>())
        }
        Some(name) => match client.instance(name).await {
            Ok(instance) => print(&InstanceBody::from(instance)),
            Err(master_api::Error::NotFound | master_api::Error::InvalidArgument { .. }) => {
                anyhow::bail!("the Xano account has no instance named {name:?}")
            }
            Err(e) => Err(e.into()),
        },
    }
}

pub async fn status(db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    print(&Status {
        pools: pool::levels(&db).await?,
        jobs: JobsBody {
            counts: overview::counts(&db).await?,
            attention: overview::needing_attention(&db).await?,
            xano_credential: health::get(&db).await?,
        },
    })
}

async fn connect(db: &DbArgs) -> anyhow::Result<PgPool> {
    let options = migrate(db).await?;
    Ok(market_core::db::connect(options, &market_core::db::DbConfig::default()).await?)
}

async fn load(db: &PgPool, id: Uuid) -> anyhow::Result<Purchase> {
    purchases::by_id(db, PurchaseId(id))
        .await?
        .with_context(|| format!("no purchase {id}"))
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
