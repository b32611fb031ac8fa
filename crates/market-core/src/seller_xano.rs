//! Each seller's Xano (migration 23): the Metadata API access token of the seller's own account.
//!
//! A seller submits it ([`set`]); it is checked first (`GET /auth/me` with it, through a client of
//! its own: Xano's rate limits are per account), then sealed and stored, replacing the one before
//! only once the new one has worked, so a rotation never leaves the seller without a working token.
//! A replacement must be for the same Xano account while the seller has listings (they are that
//! account's snippets). The token is never returned: what anyone reads back is the account it
//! answered for and when ([`XanoAccount`]). The house has no row: its credential is the service's
//! own.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::accounts::XanoPlan;
use crate::accounts::{self, SellerCredential, XanoOf};
use crate::audit::{Actor, Audit};
use crate::{Conflict, Error, Market, Result, health, keys};

/// What is known of a seller's Xano credential, never the token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct XanoAccount {
    pub seller_id: Uuid,
    /// The Xano account the token answered for (`GET /auth/me`).
    pub account_id: String,
    /// The first 8 hex digits of the token's fingerprint: which token this is, for people.
    pub display_id: String,
    pub set_at: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    /// `healthy`, or `unauthorized` since `refused_at`: Xano refused it and the seller's work
    /// waits (`parked_jobs`) until it is replaced or works again.
    pub state: String,
    pub refused_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub parked_jobs: i64,
    /// The Xano plan the seller declared (`free` or `paid`): how fast its client calls Xano.
    pub plan: String,
}

/// Checks `token` with Xano and, when it works, stores it sealed as `seller`'s credential
/// (replacing the one before), with the seller's Xano `plan` (`None`: as declared before, else
/// `paid`). Refused: a token Xano does not accept (`invalid`), a token of another account while the
/// seller has listings, the house (whose credential is the service's own).
pub async fn set(
    market: &Market,
    seller: Uuid,
    token: SecretString,
    plan: Option<XanoPlan>,
    actor: &Actor,
) -> Result<XanoAccount> {
    let house = sqlx::query_scalar::<_, bool>("select house from seller where seller_id = $1")
        .bind(seller)
        .fetch_optional(&market.db)
        .await?
        .ok_or(Error::NotFound("seller"))?;
    if house {
        return Err(Conflict::HouseCredential.into());
    }
    let shape = || {
        Error::invalid(
            "access_token",
            "a Xano access token: 1 to 4096 visible characters",
        )
    };
    let text = token.expose_secret();
    if text.is_empty() || text.len() > 4096 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(shape());
    }
    // A value no HTTP header can carry is refused here, as a bad request.
    let pace = plan.unwrap_or(XanoPlan::Paid);
    let client = market
        .xano
        .for_account(token.clone(), pace.rate_limit(market.xano.rate_limit()))
        .map_err(|_| shape())?;
    let me = match client.me().await {
        Ok(me) => me,
        Err(master_api::Error::Unauthorized | master_api::Error::Forbidden) => {
            return Err(Error::invalid(
                "access_token",
                "Xano does not accept this token (GET /auth/me refused it)",
            ));
        }
        Err(other) => return Err(Error::Xano(other)),
    };
    let account_id = me.id.unwrap_or_default();
    let sealed = keys::seal_seller_credential(&market.envelope, seller, &token)?;

    let mut tx = market.db.begin().await?;
    let before = sqlx::query_scalar::<_, String>(
        "select account_id from seller_xano_credential where seller_id = $1 for update",
    )
    .bind(seller)
    .fetch_optional(&mut *tx)
    .await?;
    let has_listings =
        sqlx::query_scalar::<_, bool>("select exists (select 1 from listing where seller_id = $1)")
            .bind(seller)
            .fetch_one(&mut *tx)
            .await?;
    if has_listings && before.as_deref().is_some_and(|b| b != account_id) {
        return Err(Conflict::XanoAccountChanged.into());
    }
    let account = sqlx::query_as::<_, XanoAccount>(
        "insert into seller_xano_credential (seller_id, key_id, sealed, fingerprint, account_id, plan)
         values ($1, $2, $3, $4, $5, coalesce($6, 'paid'))
         on conflict (seller_id) do update
             set key_id = excluded.key_id, sealed = excluded.sealed,
                 fingerprint = excluded.fingerprint, account_id = excluded.account_id,
                 plan = coalesce($6, seller_xano_credential.plan),
                 set_at = now(), checked_at = now(), state = 'healthy', last_error = null,
                 refused_at = null
         returning seller_id, account_id, encode(substr(fingerprint, 1, 4), 'hex') as display_id,
                   set_at, checked_at, state, refused_at, last_error, 0::bigint as parked_jobs, plan",
    )
    .bind(seller)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(&account_id)
    .bind(plan.map(XanoPlan::as_str))
    .fetch_one(&mut *tx)
    .await?;
    let resumed = resume(&mut tx, seller).await?;
    Audit::new(actor, "seller.xano_credential_set")
        .detail(serde_json::json!({
            "seller_id": seller,
            "display_id": account.display_id,
            "account_id": account.account_id,
            "replaced": before.is_some(),
            "jobs_resumed": resumed,
        }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(account)
}

/// `seller`'s Xano credential as anyone may read it, if one is set.
pub async fn account(db: &PgPool, seller: Uuid) -> Result<Option<XanoAccount>> {
    Ok(sqlx::query_as::<_, XanoAccount>(
        "select seller_id, account_id, encode(substr(fingerprint, 1, 4), 'hex') as display_id,
                set_at, checked_at, state, refused_at, last_error,
                (select count(*) from job where state = 'parked' and parked_for_seller = $1) as parked_jobs,
                plan
         from seller_xano_credential where seller_id = $1",
    )
    .bind(seller)
    .fetch_optional(db)
    .await?)
}

/// Puts `seller`'s parked jobs back in the queue, due now (its credential works, or was replaced).
/// Call it in the transaction that marks the credential healthy, after locking its row.
async fn resume(conn: &mut sqlx::PgConnection, seller: Uuid) -> Result<u64> {
    Ok(sqlx::query(
        "update job set state = 'queued', due_at = now(), parked_for_seller = null
         where state = 'parked' and parked_for_seller = $1",
    )
    .bind(seller)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Records that a call through `xano` succeeded: the instance's credential (the house's), or the
/// seller's, which, if it was refused, is healthy again and its parked jobs resume.
pub async fn record_success(market: &Market, xano: &XanoOf) -> Result<()> {
    let Some(credential) = &xano.seller else {
        return health::record_success(market).await;
    };
    heal(market, credential).await
}

async fn heal(market: &Market, credential: &SellerCredential) -> Result<()> {
    let mut tx = market.db.begin().await?;
    let healed = sqlx::query(
        "update seller_xano_credential
         set state = 'healthy', last_error = null, refused_at = null, checked_at = now()
         where seller_id = $1 and fingerprint = $2 and state <> 'healthy'",
    )
    .bind(credential.seller)
    .bind(&credential.fingerprint)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if healed {
        let resumed = resume(&mut tx, credential.seller).await?;
        Audit::new(&Actor::System, "seller.xano_healthy")
            .detail(serde_json::json!({ "seller_id": credential.seller, "jobs_resumed": resumed }))
            .write(&mut tx)
            .await?;
        tracing::info!(seller.id = %credential.seller, resumed, "Xano accepts the seller's credential again; its jobs resume");
    }
    tx.commit().await?;
    Ok(())
}

/// Sellers' credentials probed at most per sweep.
const PROBES_PER_SWEEP: i64 = 5;

/// Tries each refused seller credential last tried more than `probe_interval` ago
/// (`GET /auth/me`), and heals the ones Xano accepts again. Instances share the work.
pub async fn probe_refused(market: &Market) -> Result<()> {
    let due = sqlx::query_scalar::<_, Uuid>(
        "with due as materialized (
             select seller_id from seller_xano_credential
             where state <> 'healthy'
               and coalesce(last_probe_at, '-infinity') < now() - make_interval(secs => $1)
             order by last_probe_at nulls first
             limit $2
             for update skip locked
         )
         update seller_xano_credential c set last_probe_at = now()
         from due where c.seller_id = due.seller_id
         returning c.seller_id",
    )
    .bind(market.jobs.probe_interval.as_secs_f64())
    .bind(PROBES_PER_SWEEP)
    .fetch_all(&market.db)
    .await?;
    for seller in due {
        let xano = match accounts::for_seller(market, seller).await {
            Ok(xano) => xano,
            Err(e) => {
                tracing::warn!(seller.id = %seller, error = %e, "could not open the seller's credential to probe it");
                continue;
            }
        };
        match xano.client.me().await {
            Ok(_) => record_success(market, &xano).await?,
            Err(e) => {
                tracing::debug!(seller.id = %seller, error = %e, "the seller's credential is still refused, or the probe was inconclusive");
            }
        }
    }
    Ok(())
}

/// How many sellers' credentials are in each state (`healthy`, `unauthorized`, `forbidden`; 0 when
/// none), for the gauges an operator alerts on.
pub async fn count_by_state(db: &PgPool) -> Result<Vec<(&'static str, i64)>> {
    let rows = sqlx::query_as::<_, (String, i64)>(
        "select state, count(*) from seller_xano_credential group by state",
    )
    .fetch_all(db)
    .await?;
    Ok(["healthy", "unauthorized", "forbidden"]
        .into_iter()
        .map(|state| {
            let count = rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            (state, count)
        })
        .collect())
}
