//! Xano's refusals, kept where they belong: per credential, and per snippet.
//!
//! **Per credential.** Xano refuses access tokens one at a time: during a rotation an instance left
//! running with the old token meets 401s while the others work. One global "credential health" row
//! let that one instance stop the whole fleet, and flip the row back each time another instance's
//! probe healed it. So each token has its own row in `xano_credential`, keyed by its
//! [`Credential`] fingerprint (never the token). An instance whose own credential is refused claims
//! nothing, hands back what it held (`jobs/refusal.rs`), probes (`GET /auth/me`) every
//! `probe_interval`, and reports not ready while another credential in use works, so a load
//! balancer drains it. Instances with a working credential go on. When every credential in use is
//! refused (the fleet's one token expired), draining would only take the storefront down with
//! nothing to gain: sales go on from the pools, and the jobs wait, queued, for a working token.
//!
//! **Per snippet.** A 403 for one snippet while `GET /auth/me` succeeds is about that snippet, not
//! the credential: that listing's jobs park (`xano_forbidden_listing`, recorded by `queue::finish`)
//! and every other listing's go on. The sweep probes each forbidden snippet every `probe_interval`
//! and lifts the refusal when Xano answers again, resuming the parked jobs in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::audit::{Actor, Audit};
use crate::{Error, ListingId, Market, Result, accounts, db, queue};

/// A credential counts as in use while an instance using it touched its row within this many
/// seconds (runners touch theirs at every sweep, every 5 s).
const IN_USE_SECS: f64 = 60.0;

/// Forbidden snippets one sweep probes at most: the sweep waits for Xano's answers, and the runner
/// claims nothing meanwhile.
const PROBES_PER_SWEEP: i64 = 5;

/// One credential's row, as operators see it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CredentialHealth {
    /// The first 8 hex digits of the credential's fingerprint.
    pub display_id: String,
    /// `healthy`, `unauthorized` (401: unknown, expired or revoked) or `forbidden` (403 on
    /// `GET /auth/me`: the token lacks rights).
    pub state: String,
    pub since: DateTime<Utc>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_seen_at: DateTime<Utc>,
    /// An instance used it within the last minute.
    pub in_use: bool,
}

impl CredentialHealth {
    pub fn is_healthy(&self) -> bool {
        self.state == "healthy"
    }
}

/// A listing whose snippet Xano forbids while the credential works.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ForbiddenListing {
    pub listing_id: ListingId,
    pub canonical: String,
    pub since: DateTime<Utc>,
    pub last_checked_at: DateTime<Utc>,
    pub last_error: String,
    /// The display id of the credential that last met the refusal.
    pub seen_by: String,
    /// Jobs parked until the refusal lifts.
    pub parked_jobs: i64,
}

const CREDENTIAL_COLUMNS: &str = "left(encode(credential_fingerprint, 'hex'), 8) as display_id,
     state, since, last_checked_at, last_error, last_seen_at,
     last_seen_at > now() - make_interval(secs => $1) as in_use";

/// This instance's credential. Registered (healthy) on first use, so it always has a row.
pub async fn own(market: &Market) -> Result<CredentialHealth> {
    if let Some(row) = own_row(market).await? {
        return Ok(row);
    }
    sqlx::query(
        "insert into xano_credential (credential_fingerprint) values ($1)
         on conflict (credential_fingerprint) do nothing",
    )
    .bind(market.credential().fingerprint())
    .execute(&market.db)
    .await?;
    own_row(market)
        .await?
        .ok_or(Error::NotFound("xano credential"))
}

async fn own_row(market: &Market) -> Result<Option<CredentialHealth>> {
    Ok(sqlx::query_as::<_, CredentialHealth>(&format!(
        "select {CREDENTIAL_COLUMNS} from xano_credential where credential_fingerprint = $2"
    ))
    .bind(IN_USE_SECS)
    .bind(market.credential().fingerprint())
    .fetch_optional(&market.db)
    .await?)
}

/// Whether Xano refuses this instance's credential (no row: never refused).
pub async fn refused(market: &Market) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>(
        "select state <> 'healthy' from xano_credential where credential_fingerprint = $1",
    )
    .bind(market.credential().fingerprint())
    .fetch_optional(&market.db)
    .await?
    .unwrap_or(false))
}

/// Every credential any instance recorded, in use first, then most recently seen.
pub async fn credentials(pool: &PgPool) -> Result<Vec<CredentialHealth>> {
    Ok(sqlx::query_as::<_, CredentialHealth>(&format!(
        "select {CREDENTIAL_COLUMNS} from xano_credential order by in_use desc, last_seen_at desc"
    ))
    .bind(IN_USE_SECS)
    .fetch_all(pool)
    .await?)
}

/// The credential in use that is in the worst state (refused before healthy, the longest refused
/// first), or `None` when no instance used one within the last minute.
pub fn worst_in_use(credentials: &[CredentialHealth]) -> Option<&CredentialHealth> {
    credentials
        .iter()
        .filter(|c| c.in_use)
        .min_by_key(|c| (c.is_healthy(), c.since))
}

/// Every listing whose snippet Xano forbids, with how many jobs wait for it.
pub async fn forbidden_listings(pool: &PgPool) -> Result<Vec<ForbiddenListing>> {
    Ok(sqlx::query_as::<_, ForbiddenListing>(
        "select f.listing_id, l.canonical, f.since, f.last_checked_at, f.last_error, f.seen_by,
                (select count(*) from job j
                 where j.state = 'parked' and j.parked_for_listing = f.listing_id) as parked_jobs
         from xano_forbidden_listing f join listing l using (listing_id)
         order by f.since",
    )
    .fetch_all(pool)
    .await?)
}

/// What `/readyz` needs: this instance's credential, and whether to drain the instance.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub credential: CredentialHealth,
    /// Another credential in use that Xano accepts (its display id), if any.
    pub working_elsewhere: Option<String>,
}

impl Readiness {
    /// Drain this instance: Xano refuses its credential, and another instance's works. (When none
    /// works, draining helps nobody: the storefront would go down with the jobs.)
    pub fn should_drain(&self) -> bool {
        !self.credential.is_healthy() && self.working_elsewhere.is_some()
    }
}

pub async fn readiness(market: &Market) -> Result<Readiness> {
    let credential = own(market).await?;
    let working_elsewhere = if credential.is_healthy() {
        None
    } else {
        sqlx::query_scalar::<_, String>(
            "select left(encode(credential_fingerprint, 'hex'), 8) from xano_credential
             where credential_fingerprint <> $1 and state = 'healthy'
               and last_seen_at > now() - make_interval(secs => $2)
             order by last_seen_at desc limit 1",
        )
        .bind(market.credential().fingerprint())
        .bind(IN_USE_SECS)
        .fetch_optional(&market.db)
        .await?
    };
    Ok(Readiness {
        credential,
        working_elsewhere,
    })
}

/// Records that Xano refused this instance's credential (401, or a 403 that `GET /auth/me`
/// confirmed). Only this credential's row changes: other instances go on.
pub async fn record_refusal(market: &Market, error: &master_api::Error) -> Result<()> {
    let state = match error {
        master_api::Error::Forbidden => "forbidden",
        _ => "unauthorized",
    };
    let changed = sqlx::query_scalar::<_, bool>(
        "insert into xano_credential as c (credential_fingerprint, state, last_checked_at, last_error)
         values ($1, $2, now(), $3)
         on conflict (credential_fingerprint) do update
             set since = case when c.state = excluded.state then c.since else now() end,
                 state = excluded.state, last_checked_at = now(), last_error = excluded.last_error,
                 last_seen_at = now()
         returning since = now()",
    )
    .bind(market.credential().fingerprint())
    .bind(state)
    .bind(error.to_string())
    .fetch_one(&market.db)
    .await?;
    if changed {
        tracing::warn!(
            credential = %market.credential(),
            state,
            error = %error,
            "Xano refused this instance's credential; it stops claiming jobs and leaves them to instances whose credential works"
        );
    }
    Ok(())
}

/// Records that a Xano call with this instance's credential succeeded: a refused credential is
/// healthy again. One cheap update, which changes nothing when the credential was healthy.
pub async fn record_success(market: &Market) -> Result<()> {
    let healed = sqlx::query(
        "update xano_credential
         set state = 'healthy', since = now(), last_checked_at = now(), last_error = null,
             last_seen_at = now()
         where credential_fingerprint = $1 and state <> 'healthy'",
    )
    .bind(market.credential().fingerprint())
    .execute(&market.db)
    .await?
    .rows_affected()
        == 1;
    if healed {
        tracing::info!(
            credential = %market.credential(),
            "Xano accepts this instance's credential again; it claims jobs again"
        );
    }
    Ok(())
}

/// Tries this instance's credential when it is refused and was last tried more than
/// `probe_interval` ago.
pub async fn probe_if_due(market: &Market) -> Result<()> {
    let due = sqlx::query_scalar::<_, bool>(
        "select state <> 'healthy'
                and coalesce(last_checked_at < now() - make_interval(secs => $2), true)
         from xano_credential where credential_fingerprint = $1",
    )
    .bind(market.credential().fingerprint())
    .bind(market.jobs.probe_interval.as_secs_f64())
    .fetch_optional(&market.db)
    .await?
    .unwrap_or(false);
    if !due {
        return Ok(());
    }
    match market.xano.me().await {
        Ok(_) => record_success(market).await,
        Err(e @ (master_api::Error::Unauthorized | master_api::Error::Forbidden)) => {
            record_refusal(market, &e).await
        }
        Err(e) => {
            // Xano is down or slow: says nothing about the credential. Try again next interval.
            sqlx::query(
                "update xano_credential set last_checked_at = now() where credential_fingerprint = $1",
            )
            .bind(market.credential().fingerprint())
            .execute(&market.db)
            .await?;
            tracing::debug!(error = %e, "credential probe inconclusive");
            Ok(())
        }
    }
}

/// The sweep's part: marks this instance's credential in use, and forgets credentials no instance
/// has used for `keep_finished` (history for operators until then).
pub async fn touch(market: &Market) -> Result<()> {
    sqlx::query(
        "insert into xano_credential (credential_fingerprint) values ($1)
         on conflict (credential_fingerprint) do update set last_seen_at = now()",
    )
    .bind(market.credential().fingerprint())
    .execute(&market.db)
    .await?;
    sqlx::query(
        "delete from xano_credential where last_seen_at < now() - make_interval(secs => $1)",
    )
    .bind(market.jobs.keep_finished.as_secs_f64())
    .execute(&market.db)
    .await?;
    Ok(())
}

/// Probes each forbidden snippet last tried more than `probe_interval` ago (`GET
/// /snippet/{canonical}/token`: the token rights every job needs, which `GET /snippet/{canonical}`
/// could have without) and lifts the refusals Xano no longer makes (or the snippet is gone: its jobs
/// then die of the 404, visibly). Instances share the work: each due listing is taken by one of
/// them, a few per sweep. Does nothing while this instance's own credential is refused.
pub async fn probe_forbidden_listings(market: &Market) -> Result<()> {
    if refused(market).await? {
        return Ok(());
    }
    let due = sqlx::query_as::<_, (ListingId, String)>(
        "with due as materialized (
             select listing_id from xano_forbidden_listing
             where last_checked_at < now() - make_interval(secs => $1)
             order by last_checked_at
             limit $2
             for update skip locked
         )
         update xano_forbidden_listing f set last_checked_at = now()
         from due join listing l using (listing_id)
         where f.listing_id = due.listing_id
         returning f.listing_id, l.canonical",
    )
    .bind(market.jobs.probe_interval.as_secs_f64())
    .bind(PROBES_PER_SWEEP)
    .fetch_all(&market.db)
    .await?;
    for (listing, canonical) in due {
        // A seller's snippet is asked about with the seller's own credential (`accounts`).
        let xano = accounts::for_listing(market, listing).await?;
        match xano.client.tokens(&canonical).await {
            Ok(_) => {
                if xano.seller.is_none() {
                    record_success(market).await?;
                }
                lift(&market.db, listing, &Actor::System).await?;
            }
            // Gone at Xano: no longer a refusal. The jobs run, meet the 404 and die, visibly.
            Err(master_api::Error::NotFound) => {
                lift(&market.db, listing, &Actor::System).await?;
            }
            Err(e @ master_api::Error::Unauthorized) if xano.seller.is_none() => {
                return record_refusal(market, &e).await;
            }
            Err(e) => {
                tracing::debug!(listing.id = %listing, error = %e, "the snippet is still refused, or the probe was inconclusive");
            }
        }
    }
    Ok(())
}

/// Lifts Xano's refusal of a listing's snippet and resumes its parked jobs, in one transaction
/// (the row is locked first, so a park landing meanwhile either commits before and is resumed, or
/// records the refusal afresh after, for the next probe). `false` when there was none.
pub async fn lift(pool: &PgPool, listing: ListingId, actor: &Actor) -> Result<bool> {
    let resumed = db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        let forbidden = sqlx::query_scalar::<_, ListingId>(
            "select listing_id from xano_forbidden_listing where listing_id = $1 for update",
        )
        .bind(listing)
        .fetch_optional(&mut *tx)
        .await?;
        if forbidden.is_none() {
            return Ok(None);
        }
        let resumed = queue::unpark_listing(&mut tx, listing).await?;
        sqlx::query("delete from xano_forbidden_listing where listing_id = $1")
            .bind(listing)
            .execute(&mut *tx)
            .await?;
        Audit::new(actor, "xano.snippet_allowed")
            .listing(listing)
            .detail(serde_json::json!({ "resumed_jobs": resumed }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Some(resumed))
    })
    .await?;
    let Some(resumed) = resumed else {
        return Ok(false);
    };
    tracing::info!(listing.id = %listing, resumed, "Xano allows the listing's snippet again; its parked jobs resumed");
    Ok(true)
}
