//! Reconciliation: compare a listing's tokens at Xano with ours, and make the database true again.
//!
//! It runs on a schedule (a standing job per listing), on demand (CLI, admin API), and before any
//! retry of a mint that may have created a token whose answer was lost.
//!
//! **Policy**, for each token Xano lists that we do not know:
//! - unused (`current_installs = 0`) and with the `max_installs` of an active tier of the listing:
//!   **adopted** into that tier's pool. These are our own orphans (a crash or lost answer between
//!   Xano's create and our insert), and an unused token is as good as a fresh one;
//! - unused, but matching no active tier: **removed** (recorded as `retiring`, deleted at Xano). An
//!   unused token on a token-only snippet that nobody sells is a live credential with no purpose;
//! - already used: **recorded as `foreign` and left alone**. Someone installed with it (perhaps a
//!   token the creator handed out by hand); deleting it could take away what a person relies on, so
//!   an operator decides.
//!
//! For each token we think is live but Xano no longer lists: a `revoking`/`retiring` token was
//! deleted (recorded as done); an `available` one is marked `missing`; an `assigned` one is marked
//! `missing` and its purchase is queued for a new token. Installs counts are refreshed.
//!
//! A second run right after the first finds nothing to do. The database snapshot is read *before*
//! asking Xano, so a token created while this runs is either in the snapshot or looks unknown, and
//! adopting it collides harmlessly with its own insert (`on conflict do nothing`). Every update is a
//! compare-and-set on the state that was read.

use std::collections::{HashMap, HashSet};

use master_api::TokenValue;
use sqlx::PgConnection;

use crate::audit::{Actor, Audit};
use crate::envelope::Envelope;
use crate::keys::{self, SealedToken};
use crate::queue::{self, JobKind};
use crate::{ListingId, Market, PurchaseId, Result, TierId, TokenId, health, listings};

/// What one reconciliation of one listing did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub listing_id: Option<ListingId>,
    pub canonical: String,
    /// Tokens Xano listed.
    pub at_xano: u64,
    pub adopted: u64,
    pub removed: u64,
    pub foreign: u64,
    pub missing: u64,
    /// Purchases whose token went missing, queued for a new one.
    pub reissued: u64,
    /// Deletions we had asked for and Xano has done.
    pub confirmed_deleted: u64,
    /// Tokens we had recorded as deleted that Xano still lists: deleted again.
    pub redeleted: u64,
    /// Tokens whose `current_installs` changed.
    pub refreshed: u64,
}

impl Report {
    /// Whether the run changed anything.
    pub fn changed(&self) -> bool {
        self.adopted
            + self.removed
            + self.foreign
            + self.missing
            + self.reissued
            + self.confirmed_deleted
            + self.redeleted
            + self.refreshed
            > 0
    }
}

#[derive(sqlx::FromRow)]
struct Known {
    install_token_id: TokenId,
    /// The token's fingerprint (`keys`); a row from before tokens were sealed has only `token`.
    token_fingerprint: Option<Vec<u8>>,
    token: Option<String>,
    state: String,
    current_installs: i64,
    purchase_id: Option<PurchaseId>,
}

/// Reconciles one listing and returns what it did.
pub async fn listing(market: &Market, listing_id: ListingId, actor: &Actor) -> Result<Report> {
    let listing = {
        let mut conn = market.db.acquire().await?;
        listings::by_id(&mut conn, listing_id).await?
    };
    let known = sqlx::query_as::<_, Known>(
        "select install_token_id, token_fingerprint, token, state::text as state,
                current_installs, purchase_id
         from install_token where listing_id = $1",
    )
    .bind(listing_id)
    .fetch_all(&market.db)
    .await?;
    let active_tiers: HashMap<i64, TierId> = sqlx::query_as::<_, (i64, TierId)>(
        "select distinct on (max_installs) max_installs, tier_id from tier
         where listing_id = $1 and active order by max_installs, slug",
    )
    .bind(listing_id)
    .fetch_all(&market.db)
    .await?
    .into_iter()
    .collect();

    let at_xano = market.xano.tokens(&listing.canonical).await?;
    health::record_success(&market.db).await?;

    let mut report = Report {
        listing_id: Some(listing_id),
        canonical: listing.canonical.clone(),
        at_xano: at_xano.len() as u64,
        ..Report::default()
    };
    // Tokens are compared by fingerprint: ours are sealed, Xano's are fingerprinted here.
    let print = |token: &TokenValue| keys::fingerprint(&market.envelope, token).to_vec();
    let known_prints: Vec<Vec<u8>> = known
        .iter()
        .map(|k| match (&k.token_fingerprint, &k.token) {
            (Some(fingerprint), _) => fingerprint.clone(),
            (None, Some(plain)) => print(&TokenValue::new(plain.as_str())),
            (None, None) => Vec::new(),
        })
        .collect();
    let by_print: HashMap<&[u8], &Known> =
        known_prints.iter().map(Vec::as_slice).zip(&known).collect();
    let xano_prints: Vec<Vec<u8>> = at_xano.iter().map(|t| print(&t.token)).collect();
    let listed: HashSet<&[u8]> = xano_prints.iter().map(Vec::as_slice).collect();

    let mut tx = market.db.begin().await?;
    for (token, token_print) in at_xano.iter().zip(&xano_prints) {
        match by_print.get(token_print.as_slice()) {
            Some(known) => {
                refresh(&mut tx, known, token.current_installs, actor, &mut report).await?;
            }
            None => {
                adopt_or_remove(
                    &mut tx,
                    &market.envelope,
                    listing_id,
                    &active_tiers,
                    token,
                    actor,
                    &mut report,
                )
                .await?;
            }
        }
    }
    let gone = known_prints
        .iter()
        .zip(&known)
        .filter(|(p, _)| !listed.contains(p.as_slice()));
    for (_, known) in gone {
        gone_at_xano(&mut tx, listing_id, known, actor, &mut report).await?;
    }
    tx.commit().await?;

    if report.changed() {
        tracing::info!(listing.canonical = %report.canonical, ?report, "reconciled with Xano");
    }
    Ok(report)
}

/// A token both sides know: refresh its installs count, and delete again what should be gone.
async fn refresh(
    conn: &mut PgConnection,
    known: &Known,
    current_installs: i64,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    if known.current_installs != current_installs {
        sqlx::query("update install_token set current_installs = $2, seen_at = now() where install_token_id = $1")
            .bind(known.install_token_id)
            .bind(current_installs)
            .execute(&mut *conn)
            .await?;
        report.refreshed += 1;
    }
    let again = match known.state.as_str() {
        "revoked" => "revoking",
        "retired" => "retiring",
        "missing" => {
            tracing::warn!(token.id = %known.install_token_id, "a token marked missing is listed by Xano again");
            return Ok(());
        }
        _ => return Ok(()),
    };
    let updated = sqlx::query(
        "update install_token set state = $2::token_state, released_at = null
         where install_token_id = $1 and state = $3::token_state",
    )
    .bind(known.install_token_id)
    .bind(again)
    .bind(&known.state)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1 {
        queue::enqueue(
            &mut *conn,
            JobKind::DeleteToken,
            &known.install_token_id.to_string(),
        )
        .await?;
        Audit::new(actor, "reconcile.redelete")
            .token(known.install_token_id)
            .write(&mut *conn)
            .await?;
        report.redeleted += 1;
    }
    Ok(())
}

async fn adopt_or_remove(
    conn: &mut PgConnection,
    envelope: &Envelope,
    listing: ListingId,
    active_tiers: &HashMap<i64, TierId>,
    token: &master_api::InstallToken,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let tier = active_tiers.get(&token.max_installs).copied();
    let (state, origin, action) = match (token.current_installs, tier) {
        (0, Some(_)) => ("available", "adopted", "reconcile.adopted"),
        (0, None) => ("retiring", "found", "reconcile.removed"),
        _ => ("foreign", "found", "reconcile.foreign"),
    };
    let tier = tier.filter(|_| origin == "adopted");
    let sealed = SealedToken::new(envelope, listing, &token.token)?;
    let id = sqlx::query_scalar::<_, TokenId>(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, current_installs, state, origin, seen_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8::token_state, $9, now())
         on conflict (listing_id, token_fingerprint) do nothing
         returning install_token_id",
    )
    .bind(listing)
    .bind(tier)
    .bind(token.max_installs)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(token.current_installs)
    .bind(state)
    .bind(origin)
    .fetch_optional(&mut *conn)
    .await?;
    // No row: the token's own insert (by the worker that minted it) committed meanwhile.
    let Some(id) = id else { return Ok(()) };
    let mut audit = Audit::new(actor, action)
        .listing(listing)
        .token(id)
        .detail(serde_json::json!({ "max_installs": token.max_installs, "current_installs": token.current_installs }));
    if let Some(tier) = tier {
        audit = audit.tier(tier);
    }
    audit.write(&mut *conn).await?;
    match state {
        "available" => report.adopted += 1,
        "retiring" => {
            queue::enqueue(&mut *conn, JobKind::DeleteToken, &id.to_string()).await?;
            report.removed += 1;
        }
        _ => report.foreign += 1,
    }
    Ok(())
}

async fn gone_at_xano(
    conn: &mut PgConnection,
    listing: ListingId,
    known: &Known,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let (next, action) = match known.state.as_str() {
        "revoking" => ("revoked", "reconcile.confirmed_revoked"),
        "retiring" => ("retired", "reconcile.confirmed_retired"),
        "available" | "assigned" => ("missing", "reconcile.missing"),
        _ => return Ok(()),
    };
    let updated = sqlx::query(
        "update install_token
         set state = $2::token_state,
             released_at = case when $2 in ('revoked', 'retired') then now() else released_at end
         where install_token_id = $1 and state = $3::token_state",
    )
    .bind(known.install_token_id)
    .bind(next)
    .bind(&known.state)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(()); // changed meanwhile; the next run looks again
    }
    let mut audit = Audit::new(actor, action)
        .listing(listing)
        .token(known.install_token_id);
    if let Some(purchase) = known.purchase_id {
        audit = audit.purchase(purchase);
    }
    audit.write(&mut *conn).await?;
    match (next, known.state.as_str(), known.purchase_id) {
        ("missing", "assigned", Some(purchase)) => {
            // The buyer's token vanished at Xano (deleted by hand?): they paid, so they get a new one.
            queue::enqueue(&mut *conn, JobKind::MintForPurchase, &purchase.to_string()).await?;
            report.missing += 1;
            report.reissued += 1;
        }
        ("missing", ..) => report.missing += 1,
        _ => report.confirmed_deleted += 1,
    }
    Ok(())
}

/// Reconciles every listing (the CLI's `market reconcile`, the admin API's "reconcile now").
pub async fn all(market: &Market, actor: &Actor) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for listing in listings::all(&market.db).await? {
        reports.push(self::listing(market, listing.listing_id, actor).await?);
    }
    Ok(reports)
}
