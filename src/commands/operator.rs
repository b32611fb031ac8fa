//! Operators' commands beside `tiers apply`: look at purchases, revoke one, reconcile with Xano
//! now, see the Xano account's instances and the state of pools, jobs and the Xano credential.
//!
//! They work on the database directly: an operator can look and act while no instance is serving.
//! Xano is called only by `instances` and `reconcile`; a revocation's token is deleted at Xano by
//! whichever `market serve` instance picks up the job.

use anyhow::Context as _;
use market_core::audit;
use market_core::jobs::overview;
use market_core::payments::{events_cursor, unreadable};
use market_core::purchases::{self, Purchase, PurchaseFilter};
use market_core::{
    Email, JobsConfig, Market, PurchaseId, TierId, payments, pool, queue, reconcile, sellers,
};
use market_http::wire::admin_purchases::{ActionResult, AdminPurchase, PurchaseRow};
use market_http::wire::ops::{
    InstanceBody, JobRequeued, JobRowBody, PoolLevelBody, ReportBody, StatusBody,
};
use market_http::wire::purchases::PurchaseBody;
use market_http::wire::sellers::{InvitedBody, SellerBody};
use sqlx::PgPool;
use uuid::Uuid;

use super::conventions::{connect, connect_sealed, operator, print_json};
use crate::cli::PurchasesCommand;
use crate::config::{DbArgs, XanoArgs};
use crate::settings::required_xano;

pub async fn purchases(command: PurchasesCommand) -> anyhow::Result<()> {
    match command {
        PurchasesCommand::List(args) => {
            let db = connect(&args.db).await?;
            let filter = PurchaseFilter {
                status: args.status,
                tier: args.tier.map(TierId),
                listing: None,
                email: args.email,
                seller: None,
                before: None,
                limit: args.limit,
            };
            let page = purchases::list(&db, &filter).await?;
            print_json(&page.iter().map(PurchaseRow::from).collect::<Vec<_>>())
        }
        PurchasesCommand::Show { id, db } => {
            let (db, envelope) = connect_sealed(&db).await?;
            let purchase = load(&db, id).await?;
            let receipt = purchases::receipt_of(&db, &envelope, &purchase).await?;
            let audit = audit::for_purchase(&db, purchase.purchase_id).await?;
            let payment = purchases::payment_moves(&db, &purchase).await?;
            print_json(&AdminPurchase {
                purchase: (&purchase).into(),
                receipt: PurchaseBody::of(receipt, true),
                audit: audit.into_iter().map(Into::into).collect(),
                payment: payment.map(Into::into),
            })
        }
        PurchasesCommand::Revoke { id, db } => {
            let db = connect(&db).await?;
            load(&db, id).await?;
            let outcome = payments::revoke_by_operator(&db, PurchaseId(id), &operator()).await?;
            let purchase = load(&db, id).await?;
            print_json(&ActionResult {
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
            print_json(&all.into_iter().map(InstanceBody::from).collect::<Vec<_>>())
        }
        Some(name) => match client.instance(name).await {
            Ok(instance) => print_json(&InstanceBody::from(instance)),
            Err(master_api::Error::NotFound | master_api::Error::InvalidArgument { .. }) => {
                anyhow::bail!("the Xano account has no instance named {name:?}")
            }
            Err(e) => Err(e.into()),
        },
    }
}

pub async fn status(db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let pools = pool::levels(&db).await?;
    print_json(&StatusBody {
        pools: pools.into_iter().map(PoolLevelBody::from).collect(),
        jobs: overview::read(&db).await?.into(),
    })
}

/// Replays the Stripe events kept unreadable; prints what it did.
pub async fn replay_events(db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let done = market_http::inbox::replay(&db).await?;
    print_json(&serde_json::json!({
        "applied": done.applied,
        "still_unreadable": done.still_unreadable,
    }))
}

/// The Stripe events backfill's cursor and the unreadable events waiting.
pub async fn events_status(db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let cursor = events_cursor::get(&db).await?;
    let waiting = unreadable::waiting(&db).await?.len();
    print_json(&serde_json::json!({
        "backfill": {
            "created_through": cursor.created_through,
            "last_run_at": cursor.last_run_at,
            "last_error": cursor.last_error,
            "events_applied": cursor.events_applied,
        },
        "unreadable_waiting": waiting,
    }))
}

/// Jobs, most recently changed first, in the admin API's shape.
pub async fn list_jobs(state: Option<&str>, limit: i64, db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let jobs = overview::list(&db, state, limit).await?;
    print_json(&jobs.into_iter().map(JobRowBody::from).collect::<Vec<_>>())
}

/// Puts a dead job back in the queue.
pub async fn requeue_job(id: i64, db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    queue::requeue(&db, id, &operator()).await?;
    print_json(&JobRequeued {
        job_id: id,
        state: "queued".into(),
    })
}

/// Reconciles every listing with Xano now and prints one report per listing.
pub async fn reconcile(db: &DbArgs, xano: &XanoArgs) -> anyhow::Result<()> {
    let (pool, envelope) = connect_sealed(db).await?;
    let market = Market::new(pool, required_xano(xano)?, envelope, JobsConfig::default());
    let reports = reconcile::all(&market, &operator()).await?;
    print_json(
        &reports
            .into_iter()
            .map(ReportBody::from)
            .collect::<Vec<_>>(),
    )
}

async fn load(db: &PgPool, id: Uuid) -> anyhow::Result<Purchase> {
    purchases::by_id(db, PurchaseId(id))
        .await?
        .with_context(|| format!("no purchase {id}"))
}

/// Invites a seller and prints it with its API key (the only time the key is shown).
pub async fn invite_seller(name: &str, email: &str, db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let email = Email::parse(email)?;
    let (seller, key) = sellers::invite(&db, name, &email, &operator()).await?;
    print_json(&InvitedBody {
        seller: seller.into(),
        api_key: key.expose().to_owned(),
    })
}

/// Prints every seller.
pub async fn list_sellers(db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let all = sellers::list(&db).await?;
    print_json(&all.into_iter().map(SellerBody::from).collect::<Vec<_>>())
}
