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
//! An assigned token whose limit at Xano is not ours has its purchase's `apply_upgrade` queued,
//! which writes the entitlement again: an update that reached Xano after its client gave up (a
//! limit set back by a stalled request) is not left standing.
//!
//! Two rules keep it from being fooled:
//! - a token marked `missing` that Xano lists again is given back to its buyer, or deleted at Xano
//!   when the buyer has a replacement (`actions.rs`, `reappeared`): never two live tokens;
//! - when one pass would mark more than `missing_guard` of a listing's live tokens missing (and at
//!   least [`GUARD_FLOOR`]), or every one of them however few (an empty list, say),
//!   it acts on nothing the list leaves out (marks none missing, confirms no deletion): one short
//!   or empty list from Xano during an incident must not re-issue every buyer's token, nor record
//!   as deleted a token that still opens the snippet. The listing is flagged
//!   (`listing.missing_suspected_at`, audited, logged); the next pass that sees the same acts on
//!   it, one that does not clears it.
//!
//! A second run right after the first finds nothing to do. The database snapshot is read *before*
//! asking Xano, so a token created while this runs is either in the snapshot or looks unknown, and
//! adopting it collides harmlessly with its own insert (`on conflict do nothing`). Every update is a
//! compare-and-set on the state that was read.

use std::collections::{HashMap, HashSet};

use master_api::TokenValue;
use sqlx::PgConnection;

use crate::audit::{Actor, Audit};
use crate::{ListingId, Market, PurchaseId, Result, TierId, keys, listings, usage};
use crate::{accounts, seller_xano};

mod actions;
mod report;

use actions::{adopt_or_remove, gone_at_xano, refresh};
use report::Known;
pub use report::Report;

/// The fewest live tokens that must vanish at once before a pass holds back (see the module
/// doc): a listing with a handful of tokens is re-issued at once, as a buyer whose one token was
/// deleted by hand expects — unless every live token vanished, which is held back once whatever
/// the count.
pub const GUARD_FLOOR: usize = 5;

/// Reconciles one listing and returns what it did.
pub async fn listing(market: &Market, listing_id: ListingId, actor: &Actor) -> Result<Report> {
    let listing = {
        let mut conn = market.db.acquire().await?;
        listings::by_id(&mut conn, listing_id).await?
    };
    let known = sqlx::query_as::<_, Known>(
        "select install_token_id, token_fingerprint, token, state::text as state,
                current_installs, max_installs, purchase_id
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

    let xano = accounts::for_listing(market, listing_id).await?;
    let at_xano = xano.client.tokens(&listing.canonical).await?;
    seller_xano::record_success(market, &xano).await?;

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

    let gone: Vec<&Known> = known_prints
        .iter()
        .zip(&known)
        .filter(|(p, _)| !listed.contains(p.as_slice()))
        .map(|(_, k)| k)
        .collect();
    let matched = at_xano
        .iter()
        .zip(&xano_prints)
        .filter_map(|(token, token_print)| {
            let known = by_print.get(token_print.as_slice())?;
            Some((*known, Some(token)))
        });
    let purchases: Vec<PurchaseId> = matched
        .chain(gone.iter().map(|known| (*known, None)))
        .filter(|(known, token)| known.may_be_written(*token))
        .filter_map(|(known, _)| known.purchase_id)
        .collect();

    let mut tx = market.db.begin().await?;
    // Lock order as on every path: the listing, then the purchases, then their tokens. A token
    // written first and its purchase waited for after (a trigger's foreign key, an audit row)
    // deadlocked with a job holding that purchase and waiting for the token.
    let hold_back = guard(&mut tx, market, listing_id, &known, &gone, actor).await?;
    lock_purchases(&mut tx, purchases).await?;
    for (token, token_print) in at_xano.iter().zip(&xano_prints) {
        match by_print.get(token_print.as_slice()) {
            Some(known) => {
                refresh(&mut tx, known, token, actor, &mut report).await?;
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
    for known in gone {
        // A list this short is not believed for anything it leaves out: not to mark a live token
        // missing, nor to confirm a deletion that was asked for (a `revoking` token "gone" from a
        // cut list may still open the snippet; its delete job goes on).
        if hold_back {
            report.held_back += 1;
            continue;
        }
        gone_at_xano(&mut tx, listing_id, known, actor, &mut report).await?;
    }
    tx.commit().await?;
    // Every count of the listing was just read from Xano.
    usage::mark_as_of(market, listing_id).await?;

    if report.changed() {
        tracing::info!(listing.canonical = %report.canonical, ?report, "reconciled with Xano");
    }
    Ok(report)
}

/// Whether this pass must hold back marking tokens missing: more than `missing_guard` of the
/// listing's live tokens (and at least [`GUARD_FLOOR`]) gone at once, or every one of them however
/// few; and no earlier pass saw the same. Flags the listing then; clears the flag when the pass
/// looks ordinary, or once it acts.
///
/// A list that shows none of our live tokens (an empty one, say) is held back however few they
/// are: it is the shape an incident at Xano takes most simply, and early in a listing's life (or
/// after a refill stalled) the listing may know fewer live tokens than the floor, when the ratio
/// alone would believe it. The chaos suite saw that: an empty list met a listing that knew two
/// live tokens, and both buyers were given new ones while their old tokens still worked. A listing
/// whose every token was really deleted waits one pass longer for the replacements.
async fn guard(
    conn: &mut PgConnection,
    market: &Market,
    listing: ListingId,
    known: &[Known],
    gone: &[&Known],
    actor: &Actor,
) -> Result<bool> {
    let live = |k: &&Known| matches!(k.state.as_str(), "available" | "assigned");
    let live_count = known.iter().filter(|k| live(k)).count();
    let vanishing = gone.iter().filter(|k| live(k)).count();
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^52"
    )]
    let suspicious = (vanishing > 0 && vanishing == live_count)
        || (vanishing >= GUARD_FLOOR
            && vanishing as f64 > market.jobs.missing_guard * live_count as f64);
    let flagged_before = sqlx::query_scalar::<_, bool>(
        // `no key update`: passes over one listing take turns; a token's insert (its foreign key's
        // `key share`) does not wait for them.
        "select missing_suspected_at is not null from listing where listing_id = $1
         for no key update",
    )
    .bind(listing)
    .fetch_one(&mut *conn)
    .await?;
    let hold_back = suspicious && !flagged_before;
    // Written only when the flag changes: an ordinary pass leaves the listing row (and its
    // `updated_at`, which operators read) alone.
    if hold_back != flagged_before {
        sqlx::query(
            "update listing set missing_suspected_at = case when $2 then now() end
             where listing_id = $1",
        )
        .bind(listing)
        .bind(hold_back)
        .execute(&mut *conn)
        .await?;
    }
    if hold_back {
        tracing::warn!(listing.id = %listing, vanishing, live = live_count, "Xano no longer lists a large share of the listing's tokens; held back until the next pass confirms");
        Audit::new(actor, "reconcile.mass_missing_held_back")
            .listing(listing)
            .detail(serde_json::json!({ "vanishing": vanishing, "live": live_count }))
            .write(&mut *conn)
            .await?;
    }
    Ok(hold_back)
}

/// Locks the purchases whose tokens the pass may write, in id order (any two passes, and a pass and
/// a payment path, meet them in the same order). `key share` is enough: a path that locks a
/// purchase before its tokens takes it `for update`, which waits for it.
async fn lock_purchases(conn: &mut PgConnection, purchases: Vec<PurchaseId>) -> Result<()> {
    if purchases.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "select 1 from purchase where purchase_id = any($1) order by purchase_id for key share",
    )
    .bind(purchases)
    .execute(conn)
    .await?;
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
